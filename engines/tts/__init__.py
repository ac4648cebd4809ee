"""Text-to-speech engine: one interface, backends (Piper, RHVoice, espeak-ng, XTTS v2 in a worker), a facade.

This package's ``__init__`` stays empty on purpose: ``python -m engines.tts.worker``
runs under other interpreters (the XTTS venv) and must import nothing heavy.
"""
