"""Voice activity detection: Silero (ONNX) and WebRTC backends, a speech start/end detector, and an echo gate.

They judge float32 mono audio in [-1, 1), the engines' one audio format (``engines.audio_format``).
"""
