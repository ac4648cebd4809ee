"""Can the box speak on a call right now? The one answer to that question (``SpeechReadiness``).

A call needs the engines that hear and speak (``SPEECH_ENGINES``: VAD, STT
and TTS, each loaded and not failed) and a call service that takes calls
with the active persona's greeting cached (it says so with
``phrases_ready``). Until all of that holds the box does not answer: the
modem service lets the call ring and answers once ``ready_to_speak`` turns
true, and turns it away (a missed call, reason ``not_ready``) if that takes
longer than ``call.max_answer_wait_s``. Whatever else decides about a call
(adopting a call found active at start, a reload) asks the same object.

The LLM is not in the list: without it the scripted dialogue takes the
message. The engines are looked up on every question, so a reload that
replaces an engine service is seen at once (the box cannot speak while the
new one loads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from engines.engine_status import EngineState

SPEECH_ENGINES = ("vad", "stt", "tts")  # what a call cannot go without
USABLE_STATES = (EngineState.READY, EngineState.DEGRADED)  # degraded: a fallback backend serves
GREETING = "greeting"  # the name ``missing`` gives the call service's phrases
POLL_S = 0.1  # how often ``wait_ready`` looks (engine states are not pushed here)


class EngineHolder(Protocol):
    """An engine service as seen from here: the engine while it runs (None before it loaded)."""

    @property
    def engine(self) -> Any: ...


class SpeechReadiness:
    def __init__(self, engine_service: Callable[[str], EngineHolder | None]) -> None:
        self._engine_service = engine_service  # looked up on every question: a reload may replace it
        self._phrases_ready = False
        self._changed = asyncio.Event()

    def phrases_ready(self, ready: bool) -> None:
        """The call service: it takes calls and the active persona's greeting is cached (False: not now)."""
        self._phrases_ready = ready
        self._changed.set()

    def missing(self) -> list[str]:
        """What keeps the box from speaking, e.g. ``["tts: loading", "greeting"]``; [] when it can."""
        missing: list[str] = []
        for name in SPEECH_ENGINES:
            service = self._engine_service(name)
            engine = service.engine if service is not None else None
            if engine is None:
                missing.append(f"{name}: not loaded")
            elif engine.status.state not in USABLE_STATES:
                missing.append(f"{name}: {engine.status.state.value}")
        if not self._phrases_ready:
            missing.append(GREETING)
        return missing

    def ready_to_speak(self) -> bool:
        return not self.missing()

    async def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait until the box can speak; False if ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                while not self.ready_to_speak():
                    self._changed.clear()
                    try:
                        async with asyncio.timeout(POLL_S):
                            await self._changed.wait()
                    except TimeoutError:
                        pass
        except TimeoutError:
            return self.ready_to_speak()
        return True
