"""Voice activity detection: Silero (ONNX) and WebRTC backends, and a speech start/end detector."""
