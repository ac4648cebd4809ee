"""Piper in the daemon's process: ONNX on the CPU, streamed one sentence at a time.

Loading and every synthesis step run in worker threads (onnxruntime releases
the GIL while it computes), so the event loop keeps its 20 ms audio clock.
Closing a stream stops the worker thread after the sentence it is computing.
Piper needs a voice per language (``PiperSettings.voices``); a request in a
language without a voice is not this backend's to serve (the synthesizer
routes it elsewhere).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from engines.thread_stream import iterate_in_thread
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend, warmup_text
from engines.tts.piper_voices import PiperVoices
from engines.tts.settings import PiperSettings


class PiperBackend(TtsBackend):
    name = "piper"

    def __init__(self, settings: PiperSettings, models_dir: Path) -> None:
        self._settings = settings.resolved(models_dir)
        self._voices = PiperVoices(self._settings)

    @property
    def languages(self) -> frozenset[str]:
        return self._voices.languages

    @property
    def model(self) -> str:
        return self._voices.describe() or ", ".join(f"{k}={v}" for k, v in sorted(self._settings.voices.items()))

    async def load(self) -> None:
        await asyncio.to_thread(self._voices.load)

    async def warm_up(self) -> None:
        for language in sorted(self.languages):
            async for _ in self.synthesize(SynthesisRequest(warmup_text(language), language)):
                pass

    def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        def produce(stop: threading.Event) -> Iterator[AudioChunk]:
            return self._voices.stream(request, stop)

        return iterate_in_thread(produce, name="piper-tts", max_ahead=4)

    async def close(self) -> None:
        self._voices.close()
