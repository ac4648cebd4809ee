"""Audio on the rig's side of a call: the box's voice on a timeline, the caller's lines, level checks.

Everything is 8 kHz mono int16, the modem's format. ``BoxRecording`` holds
what the box said as the rig heard it; its timeline starts with the first
frame that arrived and advances 20 ms per frame (the box sends a frame every
20 ms, silence included), and it maps positions to ``time.monotonic()`` so
they can be compared with bus events. Levels are judged per 20 ms frame: a
frame is audible when its RMS is at least ``AUDIBLE_RMS`` (about -40 dBFS;
the line's silence is digital zero on the simulator and comfort noise well
below that on a GSM call).
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_BYTES = 2 * FRAME_SAMPLES
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
AUDIBLE_RMS = 300.0

Samples = npt.NDArray[np.int16]


def read_line_wav(path: Path) -> Samples:
    """The samples of an 8 kHz mono PCM16 WAV (a caller line); ValueError for any other format."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: caller lines must be 8000 Hz mono 16-bit PCM")
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.int16)


def frame_levels(samples: Samples) -> npt.NDArray[np.float64]:
    """RMS of each whole 20 ms frame."""
    whole = len(samples) - len(samples) % FRAME_SAMPLES
    frames = samples[:whole].astype(np.float64).reshape(-1, FRAME_SAMPLES)
    return np.sqrt(np.mean(frames**2, axis=1)) if len(frames) else np.zeros(0)


def _frame_span(start_s: float, end_s: float | None, frames: int) -> tuple[int, int]:
    first = max(0, int(round(start_s / FRAME_S)))
    last = frames if end_s is None else min(frames, int(round(end_s / FRAME_S)))
    return first, max(first, last)


def first_audible_s(samples: Samples, start_s: float = 0.0, end_s: float | None = None) -> float | None:
    """Start of the first audible frame in [start_s, end_s), in seconds; None if all is quiet."""
    loud = frame_levels(samples) >= AUDIBLE_RMS
    first, last = _frame_span(start_s, end_s, len(loud))
    hits = np.flatnonzero(loud[first:last])
    return None if len(hits) == 0 else (first + int(hits[0])) * FRAME_S


def last_audible_end_s(samples: Samples, start_s: float = 0.0, end_s: float | None = None) -> float | None:
    """End of the last audible frame in [start_s, end_s), in seconds; None if all is quiet."""
    loud = frame_levels(samples) >= AUDIBLE_RMS
    first, last = _frame_span(start_s, end_s, len(loud))
    hits = np.flatnonzero(loud[first:last])
    return None if len(hits) == 0 else (first + int(hits[-1]) + 1) * FRAME_S


def audible_fraction(samples: Samples, start_s: float = 0.0, end_s: float | None = None) -> float:
    """Share of the frames in [start_s, end_s) that are audible (0 for an empty span)."""
    loud = frame_levels(samples) >= AUDIBLE_RMS
    first, last = _frame_span(start_s, end_s, len(loud))
    return float(np.mean(loud[first:last])) if last > first else 0.0


def speech_span_s(samples: Samples) -> tuple[float, float]:
    """(start, end) of the voice in a caller line, in seconds from its first sample."""
    start, end = first_audible_s(samples), last_audible_end_s(samples)
    if start is None or end is None:
        raise ValueError("the line is silent")
    return start, end


def slice_s(samples: Samples, start_s: float = 0.0, end_s: float | None = None) -> Samples:
    first = max(0, int(round(start_s * SAMPLE_RATE)))
    last = len(samples) if end_s is None else max(first, int(round(end_s * SAMPLE_RATE)))
    return samples[first:last]


class BoxRecording:
    """What the box said, as the rig heard it, with the monotonic time of its first sample."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pcm = bytearray()
        self.started_at: float | None = None
        self._grew = asyncio.Event()

    def extend(self, pcm: bytes, at: float | None = None) -> None:
        """Append audio received at ``at`` (now if None); every arrival tightens the start estimate."""
        if not pcm:
            return
        self._pcm += pcm[: len(pcm) - len(pcm) % 2]
        now = self._clock() if at is None else at
        # The samples so far cannot have started later than now minus their duration;
        # the tightest such bound (the earliest arrival) is the start.
        candidate = now - self.seconds
        self.started_at = candidate if self.started_at is None else min(self.started_at, candidate)
        self._grew.set()

    @property
    def seconds(self) -> float:
        return len(self._pcm) / (2 * SAMPLE_RATE)

    def samples(self, start_s: float = 0.0, end_s: float | None = None) -> Samples:
        first = 2 * max(0, int(round(start_s * SAMPLE_RATE)))
        last = len(self._pcm) if end_s is None else max(first, 2 * int(round(end_s * SAMPLE_RATE)))
        return np.frombuffer(bytes(self._pcm[first:last]), "<i2").astype(np.int16)

    def time_of(self, position_s: float) -> float:
        """The monotonic time at which the sample at ``position_s`` arrived."""
        if self.started_at is None:
            raise ValueError("nothing recorded yet")
        return self.started_at + position_s

    async def wait_grown(self, timeout: float) -> bool:
        """Wait for more audio; False on timeout."""
        self._grew.clear()
        try:
            await asyncio.wait_for(self._grew.wait(), timeout)
        except TimeoutError:
            return False
        return True


class CallerQueue:
    """The caller's audio waiting to go out, one 20 ms frame at a time (silence when there is none)."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, samples: Samples) -> None:
        self._pending += samples.astype("<i2").tobytes()

    def next_frame(self) -> bytes:
        frame = bytes(self._pending[:FRAME_BYTES])
        del self._pending[:FRAME_BYTES]
        return frame + bytes(FRAME_BYTES - len(frame))
