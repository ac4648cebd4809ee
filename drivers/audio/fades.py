"""Click-free gain ramps: raised-cosine fade-in/fade-out curves."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.audio.pcm import Float32Array


@lru_cache(maxsize=32)
def _fade_in_curve(length: int) -> Float32Array:
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    curve = (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
    curve.setflags(write=False)
    return curve


def fade_in_curve(length: int) -> Float32Array:
    """Raised-cosine gain rising from ~0 to ~1 over ``length`` samples."""
    if length < 0:
        raise ValueError("length must be >= 0")
    return _fade_in_curve(length)


def fade_out_curve(length: int) -> Float32Array:
    """Mirror of :func:`fade_in_curve`; ``fade_in + fade_out == 1`` sample by sample."""
    return fade_in_curve(length)[::-1]


def _apply(samples: npt.NDArray[Any], curve: Float32Array) -> npt.NDArray[Any]:
    x = np.asarray(samples)
    faded = x.astype(np.float32) * curve
    if np.issubdtype(x.dtype, np.integer):
        faded = np.rint(faded)
    out: npt.NDArray[Any] = faded.astype(x.dtype)
    return out


def fade_out(samples: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Return ``samples`` faded out to silence over their whole length (dtype kept)."""
    return _apply(samples, fade_out_curve(np.asarray(samples).size))


def fade_in(samples: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Return ``samples`` faded in from silence over their whole length (dtype kept)."""
    return _apply(samples, fade_in_curve(np.asarray(samples).size))
