"""Line level: slow loudness normalisation (AGC) followed by a lookahead peak limiter."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from drivers.audio.pcm import AudioLike, Float32Array, as_float32


def db_to_gain(db: float) -> float:
    """Decibels -> linear amplitude factor."""
    return float(10.0 ** (db / 20.0))


class PeakLimiter:
    """Brick-wall lookahead limiter: output peaks never exceed ``ceiling`` (linear).

    The gain is a moving average (``lookahead`` samples) of the forward minimum
    of the required gain, so it ramps down before a peak and is at or below the
    required gain on every sample. Output is delayed by ``lookahead - 1`` samples;
    ``flush`` releases the delayed tail.
    """

    def __init__(self, ceiling: float = db_to_gain(-1.0), lookahead: int = 32) -> None:
        if not 0.0 < ceiling <= 1.0:
            raise ValueError("ceiling must be in (0, 1]")
        if lookahead < 1:
            raise ValueError("lookahead must be >= 1")
        self.ceiling = ceiling
        self.lookahead = lookahead
        self.reset()

    @property
    def delay(self) -> int:
        """Latency in samples."""
        return self.lookahead - 1

    def reset(self) -> None:
        """Forget history; the next sample starts a new stream."""
        n = self.lookahead - 1
        self._x = np.zeros(n, dtype=np.float64)  # input not yet output
        self._hold = np.ones(n, dtype=np.float64)  # previous forward-min gains, for the average

    def process(self, chunk: AudioLike) -> Float32Array:
        """Limit a chunk; returns as many samples as were fed (delayed)."""
        x_new = as_float32(chunk).astype(np.float64)
        if x_new.size == 0:
            return np.zeros(0, dtype=np.float32)
        L = self.lookahead
        x = np.concatenate((self._x, x_new))
        peak = np.abs(x)
        required = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))
        # forward minimum over [j, j + L - 1], for every j with a full window
        hold_new = sliding_window_view(required, L).min(axis=1) if L > 1 else required
        hold = np.concatenate((self._hold, hold_new))
        csum = np.concatenate(([0.0], np.cumsum(hold)))
        gain = (csum[L:] - csum[:-L]) / L
        n_out = x_new.size
        y = x[:n_out] * gain[:n_out]
        np.clip(y, -self.ceiling, self.ceiling, out=y)  # rounding guard; the gain already fits
        self._x = x[n_out:]
        self._hold = hold[hold.size - (L - 1) :] if L > 1 else hold[:0]
        return y.astype(np.float32)

    def flush(self) -> Float32Array:
        """Release the delayed tail and reset."""
        tail = self.process(np.zeros(self.lookahead - 1, dtype=np.float32))
        self.reset()
        return tail


class LineLeveler:
    """Brings speech to ``target_dbfs`` RMS with a smoothed gain, then limits peaks.

    Gain follows chunk RMS (chunks under ``gate_dbfs`` leave it unchanged, so
    pauses are not pumped up), moves with ``attack_s`` when it must fall and
    ``release_s`` when it may rise, stays within ``[min_gain_db, max_gain_db]``
    and is ramped linearly across each chunk. The limiter guarantees no sample
    exceeds ``ceiling_dbfs``, so conversion to int16 never clips.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        target_dbfs: float = -18.0,
        max_gain_db: float = 12.0,
        min_gain_db: float = -12.0,
        gate_dbfs: float = -45.0,
        attack_s: float = 0.05,
        release_s: float = 0.6,
        ceiling_dbfs: float = -1.0,
        lookahead_ms: float = 4.0,
        normalise: bool = True,
    ) -> None:
        self.sample_rate = sample_rate
        self.target_dbfs = target_dbfs
        self.max_gain_db = max_gain_db
        self.min_gain_db = min_gain_db
        self.gate_dbfs = gate_dbfs
        self.attack_s = attack_s
        self.release_s = release_s
        self.normalise = normalise
        self.limiter = PeakLimiter(
            ceiling=db_to_gain(ceiling_dbfs),
            lookahead=max(1, round(lookahead_ms * sample_rate / 1000)),
        )
        self._gain_db = 0.0

    @property
    def gain_db(self) -> float:
        """Current normalisation gain."""
        return self._gain_db

    @property
    def delay(self) -> int:
        """Latency in samples (the limiter's lookahead)."""
        return self.limiter.delay

    def reset(self) -> None:
        """Back to unity gain with an empty limiter."""
        self._gain_db = 0.0
        self.limiter.reset()

    def process(self, chunk: AudioLike) -> Float32Array:
        """Level a chunk; same number of samples out (delayed by ``delay``)."""
        x = as_float32(chunk)
        if x.size == 0:
            return np.zeros(0, dtype=np.float32)
        if self.normalise:
            x = self._normalise(x)
        return self.limiter.process(x)

    def flush(self) -> Float32Array:
        """Release the limiter's delayed tail (keeps the learned gain)."""
        return self.limiter.flush()

    def _normalise(self, x: Float32Array) -> Float32Array:
        start = self._gain_db
        rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
        level_db = 20.0 * math.log10(rms) if rms > 0 else -math.inf
        if level_db > self.gate_dbfs:
            wanted = min(self.max_gain_db, max(self.min_gain_db, self.target_dbfs - level_db))
            tau = self.attack_s if wanted < start else self.release_s
            alpha = 1.0 - math.exp(-x.size / (tau * self.sample_rate))
            self._gain_db = start + alpha * (wanted - start)
        g0, g1 = db_to_gain(start), db_to_gain(self._gain_db)
        if g0 == g1:
            return (x * np.float32(g0)).astype(np.float32)
        ramp = np.linspace(g0, g1, x.size, endpoint=False, dtype=np.float64) + (g1 - g0) / x.size
        return (x * ramp).astype(np.float32)
