"""Voice activity detection: Silero (ONNX) and WebRTC backends, and a speech start/end detector.

They judge float32 mono audio in [-1, 1), the engines' one audio format (``engines.audio_format``).
"""
