"""The echo gate: caller audio the box's own voice explains never reaches the speech detector.

A GSM call sends the box's speech back on the caller channel, delayed and
attenuated (the network's echo). A VAD hears a voice, and the secretary
would stop itself mid-reply. The box knows what it sends, so ``EchoGate``
predicts the echo from that and lets a caller frame through only when it is
louder than the predicted echo by ``margin_db`` (double talk, Geigel-style,
on 20 ms frame energies rather than samples, so the echo path's filtering
and codecs do not matter):

- ``sent(frame)``: every frame the line sends (one per 20 ms tick, silence
  included) adds its energy to a ring of the recent ticks;
- ``clean(chunk)``: every caller chunk (one per 20 ms tick) returns the chunk,
  or, where the predicted echo explains it, the chunk turned down to the
  background noise's level (zeros between frames, or frames of another
  noise, sound like speech to the VAD); it is what the detector is fed (the
  STT keeps the real audio);
- the echo path -- delay in ticks and gain -- is estimated every
  ``UPDATE_TICKS`` from the last ``WINDOW_TICKS``: the lag whose sent-energy
  envelope correlates best with the caller's (normalised cross-correlation)
  and the ``GAIN_PERCENTILE``th percentile of caller/sent energy over the
  sent frames that carried voice. A clear estimate (correlation >=
  ``MIN_NCC``) is kept until another clear one (the caller talking over the
  box blurs the correlation); a weaker one (>= ``NO_ECHO_NCC``) stands until
  the next; when the first look finds less, no echo is assumed. Until the
  first estimate (the first second of the first reply) the echo is assumed
  as loud as ``PRIOR_ERL_DB`` below the loudest sent frame at any lag.

Ticks are counted, not timed: the line sends a frame and hears one every
20 ms, so a constant offset between the two counts is part of the lag
(-``MAX_LEAD_TICKS`` .. +``MAX_LAG_TICKS``). The caller's noise floor (a
fast-down, slow-up tracker) is taken off the caller's energy first. Cheap:
one mean-square per frame, a correlation of 100 x 66 values every 5th.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engines.audio_format import Samples

RING_TICKS = 256  # 5.1 s of ticks kept; must exceed WINDOW_TICKS + MAX_LAG_TICKS + MAX_LEAD_TICKS
WINDOW_TICKS = 100  # 2 s of ticks the echo path is estimated over
UPDATE_TICKS = 5
MAX_LAG_TICKS = 40  # the echo arrives up to 800 ms after it was sent ...
MAX_LEAD_TICKS = 25  # ... or the caller's count runs up to 500 ms behind the sent count
MIN_WINDOW_TICKS = 50  # an estimate looks at 1 s at least
MIN_VOICED_TICKS = 25  # sent frames with voice in the window before an estimate is made
MIN_NCC = 0.6
NO_ECHO_NCC = 0.35
GAIN_PERCENTILE = 75
PRIOR_ERL_DB = 10.0  # until estimated, the echo is assumed this far below what was sent (the loudest expected)
NOISE_RISE_PER_TICK = 10 ** (3.0 / 10 / 50)  # the noise floor may rise 3 dB a second
VOICED_BELOW_PEAK = 1e-2  # a sent frame within 20 dB of the window's loudest carries voice
_TINY = 1e-12


class EchoGate:
    """Gates caller audio against the echo of what the line sent; one per call."""

    def __init__(self, *, margin_db: float = 6.0) -> None:
        if not 0.0 <= margin_db <= 40.0:
            raise ValueError(f"the echo gate's margin must be 0..40 dB, not {margin_db}")
        self.margin = 10 ** (margin_db / 10)
        self._sent = np.zeros(RING_TICKS)  # energies by sent tick (mod RING_TICKS)
        self._heard = np.zeros(RING_TICKS)  # caller energies (noise floor taken off) by caller tick
        self._sent_count = 0
        self._heard_count = 0
        self._noise = -1.0  # unknown until the first caller frame
        self.lag: int | None = None  # estimated echo lag in ticks (caller count - sent count); None: not yet
        self.gain = 10 ** (-PRIOR_ERL_DB / 10)  # echo energy / sent energy
        self.ncc = 0.0  # the last estimate's correlation
        self.gated = 0  # caller frames replaced as echo
        self._clear = False  # the estimate came from a clear correlation (>= MIN_NCC)

    def sent(self, frame: np.ndarray) -> None:
        """One frame the line sent (int16 or float32 in [-1, 1), any rate)."""
        x = frame.astype(np.float64)
        if frame.dtype == np.int16:
            x /= 32768.0
        self._sent[self._sent_count % RING_TICKS] = float(np.mean(x * x)) if x.size else 0.0
        self._sent_count += 1

    def clean(self, chunk: Samples) -> Samples:
        """The caller chunk as the detector should hear it: itself, or turned down to the noise where it is echo."""
        energy = float(np.mean(chunk.astype(np.float64) ** 2)) if chunk.size else 0.0
        if self._noise < 0 or energy < self._noise:
            self._noise = energy
        else:
            self._noise *= NOISE_RISE_PER_TICK
        above_noise = max(0.0, energy - self._noise)
        tick = self._heard_count
        self._heard[tick % RING_TICKS] = above_noise
        self._heard_count += 1
        if self._heard_count % UPDATE_TICKS == 0:
            self._estimate()
        echo = self._predicted(tick)
        if echo > 0.0 and 0.0 < above_noise <= self.margin * echo:  # at or below the noise floor: nothing to hide
            self.gated += 1
            # down to the background's level, not to zero (nor to other noise): a pattern of gaps, or of frames
            # of another sound, sounds like speech to the VAD
            return (chunk * np.float32(np.sqrt(self._noise / energy))).astype(chunk.dtype, copy=False)
        return chunk

    def _sent_at(self, ticks: np.ndarray) -> np.ndarray:
        """Sent energies at these sent ticks (0 for ticks not sent yet or gone from the ring)."""
        valid = (ticks >= 0) & (ticks < self._sent_count) & (ticks >= self._sent_count - RING_TICKS)
        return np.where(valid, self._sent[ticks % RING_TICKS], 0.0)

    def _predicted(self, tick: int) -> float:
        """The echo energy expected in caller tick ``tick``."""
        if self.lag is None:  # not estimated yet: the loudest sent frame any lag could bring
            return self.gain * float(self._sent_at(np.arange(tick - MAX_LAG_TICKS, tick + MAX_LEAD_TICKS + 1)).max())
        loudest = 0.0  # the lag's tick and its neighbours: the echo straddles frames, the estimate may be a tick off
        for source in (tick - self.lag - 1, tick - self.lag, tick - self.lag + 1):
            if 0 <= source < self._sent_count and source >= self._sent_count - RING_TICKS:
                loudest = max(loudest, float(self._sent[source % RING_TICKS]))
        return self.gain * loudest

    def _estimate(self) -> None:
        n = self._heard_count
        if n < MIN_WINDOW_TICKS:
            return
        first = max(0, n - WINDOW_TICKS)
        # the sent energies every lag could bring into the window, as one row: row[o + i] is sent tick
        # first + i - MAX_LAG_TICKS + o, so window o of it is the window at lag MAX_LAG_TICKS - o
        row = self._sent_at(np.arange(first - MAX_LAG_TICKS, n + MAX_LEAD_TICKS))
        width = n - first
        if row.max() <= _TINY or int(np.count_nonzero(row > row.max() * VOICED_BELOW_PEAK)) < MIN_VOICED_TICKS:
            return  # the box has not said enough lately: keep what is known
        heard = self._heard[np.arange(first, n) % RING_TICKS]
        h = np.sqrt(heard)
        h -= h.mean()
        windows = sliding_window_view(np.sqrt(row), width)  # (lags, window), a view
        sums = windows @ np.ones(width)
        cross = windows @ h  # h has zero mean: the windows' means drop out
        squares = sliding_window_view(row, width) @ np.ones(width) - sums * sums / width
        ncc = cross / (np.sqrt(np.maximum(squares, 0.0) * float(h @ h)) + _TINY)
        best = int(np.argmax(ncc))
        self.ncc = float(ncc[best])
        if self._clear and self.ncc < MIN_NCC:
            return  # the caller talks over it: keep the last clear estimate
        if self.ncc < NO_ECHO_NCC:
            if self.lag is None:
                self.lag, self.gain = 0, 0.0  # the box talked and nothing (above the noise) came back: no echo
            return  # a weak echo found before stands
        around = np.maximum(np.maximum(windows[best - 1] if best > 0 else 0.0, windows[best]),
                            windows[best + 1] if best + 1 < len(windows) else 0.0) ** 2
        strong = around > around.max() * VOICED_BELOW_PEAK
        if np.count_nonzero(strong) < MIN_VOICED_TICKS // 2:
            return
        self.lag, self._clear = MAX_LAG_TICKS - best, self.ncc >= MIN_NCC
        self.gain = float(np.percentile(heard[strong] / around[strong], GAIN_PERCENTILE))
