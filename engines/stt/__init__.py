"""Speech to text: one interface (``interface``), faster-whisper and Vosk backends, a failover facade.

They hear float32 mono audio at 16 kHz in [-1, 1), the engines' one audio format (``engines.audio_format``).
"""
