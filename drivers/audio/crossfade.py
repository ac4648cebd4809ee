"""Crossfade between consecutive synthesized segments (sentences) at the source rate."""

from __future__ import annotations

import numpy as np

from drivers.audio.fades import fade_in_curve, fade_out_curve
from drivers.audio.pcm import AudioLike, Float32Array, as_float32

DEFAULT_CROSSFADE_SAMPLES = 256

_EMPTY = np.zeros(0, dtype=np.float32)


class SegmentCrossfader:
    """Overlaps the last ``length`` samples of a segment with the first of the next.

    The last ``length`` samples of the current segment are held back until it is
    known whether another segment follows (``new_segment``) or the stream ends
    (``flush``). Each join shortens the stream by the overlap. The fades sum to
    one, so the mix never exceeds the louder input. Output does not depend on
    how the input is chunked. ``length=0`` passes audio through untouched.
    """

    def __init__(self, length: int = DEFAULT_CROSSFADE_SAMPLES) -> None:
        if length < 0:
            raise ValueError("length must be >= 0")
        self.length = length
        self._hold = _EMPTY  # tail of the current segment, not yet released
        self._tail: Float32Array | None = None  # previous segment's tail awaiting overlap
        self._head = _EMPTY  # start of the new segment, collected for the overlap

    def new_segment(self) -> None:
        """Mark that the next samples start a new segment."""
        if self.length == 0:
            return
        pending = self._resolve_pending()
        if pending.size:
            self._hold = np.concatenate((self._hold, pending))
        if self._hold.size:
            self._tail, self._hold = self._hold, _EMPTY
            self._head = _EMPTY

    def process(self, chunk: AudioLike) -> Float32Array:
        """Feed samples of the current segment; returns the samples ready to play."""
        x = as_float32(chunk)
        if self.length == 0:
            return x.copy()
        if self._tail is not None:
            self._head = np.concatenate((self._head, x))
            if self._head.size < min(self._tail.size, self.length):
                return _EMPTY.copy()
            x = self._resolve_pending()
        return self._release(x)

    def flush(self) -> Float32Array:
        """End of stream: return everything held back and reset."""
        if self.length == 0:
            return _EMPTY.copy()
        out = np.concatenate((self._hold, self._resolve_pending()))
        self.reset()
        return out.astype(np.float32, copy=False)

    def reset(self) -> None:
        """Drop held audio (e.g. on barge-in)."""
        self._hold = _EMPTY
        self._tail = None
        self._head = _EMPTY

    def _release(self, x: Float32Array) -> Float32Array:
        buf = np.concatenate((self._hold, x)) if self._hold.size else x
        keep = min(self.length, buf.size)
        self._hold = buf[buf.size - keep :].copy()
        return buf[: buf.size - keep].copy()

    def _resolve_pending(self) -> Float32Array:
        """Mix the held tail with the collected head (over as much head as there is)."""
        if self._tail is None:
            return _EMPTY
        tail, head = self._tail, self._head
        self._tail, self._head = None, _EMPTY
        n = min(tail.size, head.size, self.length)
        if n == 0:
            return tail
        mixed = tail[tail.size - n :] * fade_out_curve(n) + head[:n] * fade_in_curve(n)
        return np.concatenate((tail[: tail.size - n], mixed, head[n:])).astype(np.float32)
