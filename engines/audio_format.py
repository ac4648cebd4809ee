"""Caller audio as the VAD and STT engines take it: float32 mono at 16 kHz, samples in [-1, 1).

This is the one audio format at the engine boundary. The call's line hands
its 16 kHz float32 to VAD and STT as it is, and Silero VAD and faster-whisper
read it without converting. Backends whose library wants 16-bit PCM (WebRTC
VAD, Vosk) convert with ``to_int16`` once, inside the backend; audio recorded
as int16 (a WAV voice note, test clips) comes in through ``from_int16``. The
pair maps int16 sample ``s`` to ``s / 32768`` and back, exactly.

``checked`` is the one test of the format: dtype and shape, not the value
range (that would cost a pass over every frame).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
"""The rate of the caller audio VAD and STT take (a VAD session may also run at 8 kHz)."""

DTYPE = np.float32

PCM16_SCALE = 32768.0
"""Float full scale: int16 sample ``s`` is ``s / 32768``."""

Samples: TypeAlias = npt.NDArray[np.float32]
Pcm16: TypeAlias = npt.NDArray[np.int16]


def checked(audio: object, taker: str, error: type[Exception] = ValueError) -> Samples:
    """``audio`` itself if it is 1-D float32, else ``error`` saying what ``taker`` takes and what it got."""
    if isinstance(audio, np.ndarray) and audio.dtype == DTYPE and audio.ndim == 1:
        return audio
    takes = f"{taker} takes 1-D float32 audio (mono, samples in [-1, 1))"
    if not isinstance(audio, np.ndarray):
        raise error(f"{takes}, got {type(audio).__name__}")
    hint = "; convert int16 PCM with engines.audio_format.from_int16 (s / 32768)" if audio.dtype == np.int16 else ""
    raise error(f"{takes}, got {audio.dtype} {audio.shape}{hint}")


def from_int16(pcm: Pcm16) -> Samples:
    """int16 samples as the engines take them: float32 ``s / 32768``."""
    return np.asarray(pcm, dtype=DTYPE) * DTYPE(1.0 / PCM16_SCALE)


def to_int16(samples: Samples) -> Pcm16:
    """Engine samples as int16 PCM: rounded to nearest, clipped to the int16 range (``from_int16``'s inverse)."""
    scaled = np.rint(np.asarray(samples, dtype=DTYPE) * DTYPE(PCM16_SCALE))
    return np.clip(scaled, -32768, 32767).astype(np.int16)
