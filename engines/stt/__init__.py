"""Speech to text: one interface (``interface``), faster-whisper and Vosk backends, a failover facade."""
