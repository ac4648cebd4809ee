"""Exact fixed-size frames (20 ms = 160 samples at 8 kHz) from chunks of any size."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FRAME_MS = 20
LINE_RATE = 8000
# Caller audio as the speech engines (VAD, STT) take it: float32 mono in [-1, 1) at this rate.
ENGINE_RATE = 16_000


def frame_samples(sample_rate: int = LINE_RATE, frame_ms: int = FRAME_MS) -> int:
    """Samples per frame; the frame must be a whole number of samples."""
    n, rem = divmod(sample_rate * frame_ms, 1000)
    if rem or n <= 0:
        raise ValueError(f"{frame_ms} ms at {sample_rate} Hz is not a whole number of samples")
    return n


class Framer:
    """Cuts a sample stream into frames of exactly ``frame_size`` samples.

    Samples that do not fill a frame are carried over to the next ``push``.
    """

    def __init__(self, frame_size: int = 160, dtype: npt.DTypeLike = np.int16) -> None:
        if frame_size <= 0:
            raise ValueError("frame_size must be positive")
        self.frame_size = frame_size
        self.dtype = np.dtype(dtype)
        self._rest = np.zeros(0, dtype=self.dtype)

    @property
    def pending(self) -> int:
        """Samples carried over, waiting for a full frame."""
        return int(self._rest.size)

    def push(self, chunk: npt.ArrayLike) -> list[npt.NDArray[np.generic]]:
        """Add samples; return every complete frame now available (maybe none)."""
        data = np.asarray(chunk, dtype=self.dtype).reshape(-1)
        if self._rest.size:
            data = np.concatenate((self._rest, data))
        n_frames = data.size // self.frame_size
        cut = n_frames * self.frame_size
        self._rest = data[cut:].copy()
        if n_frames == 0:
            return []
        return list(data[:cut].reshape(n_frames, self.frame_size).copy())

    def flush(self, pad: bool = True) -> npt.NDArray[np.generic] | None:
        """Return the carried-over remainder as a last frame (zero-padded if ``pad``), or None."""
        if self._rest.size == 0:
            return None
        rest, self._rest = self._rest, np.zeros(0, dtype=self.dtype)
        if not pad:
            return rest
        frame = np.zeros(self.frame_size, dtype=self.dtype)
        frame[: rest.size] = rest
        return frame

    def reset(self) -> None:
        """Drop the carried-over remainder."""
        self._rest = np.zeros(0, dtype=self.dtype)
