"""whisper-base as the box runs it (the STT engine, packaged model, default settings) and one utterance through it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from drivers.audio.framing import ENGINE_RATE, frame_samples
from engines.fallback_chain import BackendSlot, FallbackChain
from engines.stt.backend_factory import build_stt_backend
from engines.stt.faster_whisper_backend import FasterWhisperSettings
from engines.stt.interface import SttBackend, SttFinal
from engines.stt.stt_engine import SttEngine

FRAME = frame_samples(ENGINE_RATE)  # 20 ms, as the call's listener hands audio over


def whisper_base_engine(models_dir: Path, settings: FasterWhisperSettings | None = None) -> SttEngine:
    """An STT engine with one backend: faster-whisper on the packaged whisper-base (not started yet)."""
    chosen = settings or FasterWhisperSettings()
    slot: BackendSlot[SttBackend] = BackendSlot(
        "faster-whisper", lambda: build_stt_backend("faster-whisper", chosen, models_dir)
    )
    return SttEngine(FallbackChain("stt", [slot]))


async def _frames(audio: np.ndarray, handed_over: list[float]) -> AsyncIterator[np.ndarray]:
    for at in range(0, len(audio), FRAME):
        yield audio[at : at + FRAME]
    handed_over.append(time.monotonic())


async def hear(stt: SttEngine, audio: np.ndarray, language: str) -> tuple[SttFinal, float]:
    """The final transcript of ``audio`` (float32 at ENGINE_RATE) and the seconds from its last frame to the final."""
    handed_over: list[float] = []
    final: SttFinal | None = None
    async for event in stt.transcribe(_frames(audio, handed_over), language):
        if isinstance(event, SttFinal):
            final = event
    if final is None or not handed_over:
        raise RuntimeError("the STT engine ended the utterance without a final transcript")
    return final, time.monotonic() - handed_over[0]
