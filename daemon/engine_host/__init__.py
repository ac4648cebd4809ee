"""The speech and language engines as supervised services of the daemon.

``engine_wiring.py`` turns the ``engines`` config section into the four
engine chains (VAD, STT, LLM, TTS) from ``engines/``; ``engine_service.py``
runs each as a service that loads it (one at a time, through a shared gate),
reports its state on ``engines/<name>/state`` and hands the loaded engine to
the call and chat services; ``model_files.py`` tells ``secretary doctor``
which model files the configured chains need::

    config.engines -> engine_wiring -> EngineService (load, state) -> the engine for call/ and dialogue/
"""
