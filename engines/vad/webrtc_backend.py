"""WebRTC VAD (the ``webrtcvad-wheels`` build of Google's GMM detector).

Decides speech or not for a 10, 20 or 30 ms frame at 8, 16, 32 or 48 kHz in
about two microseconds, so its "probability" is 0.0 or 1.0. ``mode`` 0-3 is
its aggressiveness: 3 calls the least audio speech (fewer false starts on
line noise, more clipped word onsets). It has no model file and keeps only a
little state, so every session is its own ``webrtcvad.Vad``. It reads 16-bit
PCM, so each float32 frame is converted (``to_int16``) before it is judged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.audio_format import DTYPE, SAMPLE_RATE, Samples, to_int16
from engines.backend import BackendError, BackendUnavailable
from engines.vad.interface import VadBackend, VadSession, checked_frame

FRAME_MS = (10, 20, 30)


@dataclass(frozen=True)
class WebRtcSettings:
    mode: int = 2
    frame_ms: int = 20

    def __post_init__(self) -> None:
        if self.mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtc VAD mode must be 0, 1, 2 or 3, not {self.mode}")
        if self.frame_ms not in FRAME_MS:
            raise ValueError(f"webrtc VAD frame_ms must be 10, 20 or 30, not {self.frame_ms}")


class WebRtcSession(VadSession):
    def __init__(self, module: Any, mode: int, sample_rate: int, frame_ms: int) -> None:
        self._module = module
        self._mode = mode
        self._vad = module.Vad(mode)
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000

    def probability(self, frame: Samples) -> float:
        pcm = to_int16(checked_frame(frame, self.frame_samples, "webrtc"))
        return 1.0 if self._vad.is_speech(pcm.tobytes(), self.sample_rate) else 0.0

    def reset(self) -> None:
        self._vad = self._module.Vad(self._mode)


class WebRtcBackend(VadBackend):
    name = "webrtc"
    sample_rates = (8_000, 16_000, 32_000, 48_000)

    def __init__(self, settings: WebRtcSettings) -> None:
        self.settings = settings
        self._module: Any = None

    @property
    def model(self) -> str:
        return f"mode {self.settings.mode}, {self.settings.frame_ms} ms"

    async def load(self) -> None:
        self._module = await asyncio.to_thread(_import_webrtcvad)

    async def warm_up(self) -> None:
        session = self.open(SAMPLE_RATE)
        session.probability(np.zeros(session.frame_samples, dtype=DTYPE))

    async def close(self) -> None:
        self._module = None

    def open(self, sample_rate: int) -> WebRtcSession:
        self._check_rate(sample_rate)
        if self._module is None:
            raise BackendError("webrtc VAD is not loaded")
        return WebRtcSession(self._module, self.settings.mode, sample_rate, self.settings.frame_ms)


def _import_webrtcvad() -> Any:
    try:
        import webrtcvad
    except ImportError as exc:
        raise BackendUnavailable(f"webrtc VAD needs the pip package webrtcvad-wheels ({exc})") from exc
    return webrtcvad
