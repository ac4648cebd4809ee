"""PCM16 little-endian <-> numpy, and int16 <-> float32 sample conversion."""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt

PCM16_SCALE = 32768.0
"""Float full scale: int16 sample ``s`` maps to ``s / 32768``."""

_PCM16_LE = np.dtype("<i2")

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
AudioLike = bytes | bytearray | memoryview | npt.NDArray[np.generic]
"""Accepted sample input: PCM16 LE bytes, an int16 array or a float array in [-1, 1]."""


def pcm16_from_bytes(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode PCM16 little-endian bytes (even length) to native int16 samples."""
    if len(data) % 2:
        raise ValueError(f"PCM16 data must have an even byte count, got {len(data)}")
    return np.frombuffer(data, dtype=_PCM16_LE).astype(np.int16)


def pcm16_to_bytes(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode int16 samples as PCM16 little-endian bytes."""
    return np.asarray(samples, dtype=np.int16).astype(_PCM16_LE, copy=False).tobytes()


def int16_to_float(samples: npt.NDArray[np.integer]) -> Float32Array:
    """int16 samples -> float32 in [-1, 1)."""
    return np.asarray(samples, dtype=np.float32) * np.float32(1.0 / PCM16_SCALE)


def float_to_int16(samples: npt.NDArray[np.floating]) -> Int16Array:
    """float samples -> int16, rounded to nearest and clipped to the int16 range."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * PCM16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def as_float32(audio: AudioLike) -> Float32Array:
    """Any accepted sample input as a 1-D float32 array (int16/bytes are scaled)."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return int16_to_float(pcm16_from_bytes(audio))
    arr = np.asarray(audio)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype == np.int16:
        return int16_to_float(cast(Int16Array, arr))
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"unsupported sample dtype {arr.dtype}; use int16 or float")


def as_int16(audio: AudioLike) -> Int16Array:
    """Any accepted sample input as a 1-D int16 array (floats are rounded and clipped)."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return pcm16_from_bytes(audio)
    arr = np.asarray(audio)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype == np.int16:
        return cast(Int16Array, arr)
    if np.issubdtype(arr.dtype, np.floating):
        return float_to_int16(cast(npt.NDArray[np.floating], arr))
    raise TypeError(f"unsupported sample dtype {arr.dtype}; use int16 or float")
