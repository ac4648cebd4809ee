"""Turn end: has the caller finished their turn, or only paused mid-sentence? (Smart Turn v3, ONNX).

A ``TurnEndModel`` (``interface``) judges the utterance so far, pause
included, and returns the probability that the turn is complete; the call's
ears ask it at a short pause and end the turn early when it is sure, else wait
for the longer silence window. The Smart Turn v3 backend (``smart_turn_backend``)
runs the open ONNX model with onnxruntime on Whisper log-mel features
(``whisper_features``); ``TurnEndLoader`` loads it beside the VAD engine and
says in that engine's state whether it runs, or why not. It hears float32 mono
audio at 16 kHz in [-1, 1), the engines' one audio format (``engines.audio_format``).
"""
