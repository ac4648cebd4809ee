"""Stateful streaming sample-rate conversion with libsamplerate (``samplerate``)."""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import samplerate  # type: ignore[import-not-found,import-untyped,unused-ignore]

from drivers.audio.pcm import AudioLike, Float32Array, as_float32


class ResampleQuality(StrEnum):
    """libsamplerate converter; the value is the config spelling."""

    BEST = "sinc_best"
    MEDIUM = "sinc_medium"
    FASTEST = "sinc_fastest"
    LINEAR = "linear"
    ZERO_ORDER_HOLD = "zero_order_hold"


_EMPTY = np.zeros(0, dtype=np.float32)


class StreamResampler:
    """Mono streaming resampler: feed chunks of any size, get output as it becomes ready.

    The concatenated output of ``process`` calls plus ``flush`` equals the
    one-shot conversion of the whole signal (libsamplerate keeps filter state
    across chunks), ``round(n_in * out_rate / in_rate)`` samples long.
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        quality: ResampleQuality | str = ResampleQuality.MEDIUM,
    ) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = ResampleQuality(quality)
        self.ratio = out_rate / in_rate
        self._converter = (
            None if in_rate == out_rate else samplerate.Resampler(self.quality.value, channels=1)
        )
        self._in_count = 0
        self._out_count = 0

    @property
    def passthrough(self) -> bool:
        """True when input and output rates are equal (no conversion)."""
        return self._converter is None

    def process(self, chunk: AudioLike) -> Float32Array:
        """Convert one chunk (PCM16 bytes, int16 or float array); returns float32 at ``out_rate``."""
        x = as_float32(chunk)
        self._in_count += x.size
        if self._converter is None:
            self._out_count += x.size
            return x.copy()
        if x.size == 0:
            return _EMPTY.copy()
        y: Float32Array = np.asarray(
            self._converter.process(np.ascontiguousarray(x), self.ratio, False), dtype=np.float32
        ).reshape(-1)
        self._out_count += y.size
        return y

    def flush(self) -> Float32Array:
        """Release the filter's held-back tail and reset for a new stream."""
        expected = round(self._in_count * self.ratio)
        parts: list[Float32Array] = []
        if self._converter is not None:
            # The binding caps output at ceil(len(input) * ratio), so an empty
            # end-of-input call cannot drain the filter: feed silence instead
            # (what libsamplerate itself pads with) and cut at the exact length.
            produced = self._out_count
            for _ in range(64):
                missing = expected - produced
                if missing <= 0:
                    break
                pad = np.zeros(math.ceil(missing / self.ratio) + 16, dtype=np.float32)
                y = np.asarray(self._converter.process(pad, self.ratio, False), dtype=np.float32).reshape(-1)
                parts.append(y)
                produced += y.size
        tail = np.concatenate(parts) if parts else _EMPTY.copy()
        tail = tail[: max(0, expected - self._out_count)]
        self.reset()
        return tail.astype(np.float32, copy=False)

    def reset(self) -> None:
        """Drop all state (e.g. on barge-in) and start a new stream."""
        if self._converter is not None:
            self._converter.reset()
        self._in_count = 0
        self._out_count = 0

    def output_length(self, n_in: int) -> int:
        """Samples a stream of ``n_in`` input samples yields in total."""
        return n_in if self._converter is None else round(n_in * self.ratio)
