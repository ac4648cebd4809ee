"""ITU-T G.711 A-law and mu-law companding with vectorised numpy lookup tables.

Encoding follows the ITU-T G.191 reference quantiser on 16-bit linear input
(A-law uses the top 13 bits, mu-law the top 14; negative samples are taken as
their one's complement, so e.g. mu-law encodes -1 as negative zero 0x7F).
Decoding returns the ITU reconstruction values scaled to 16 bits
(A-law +-8 .. +-32256, mu-law 0 .. +-32124).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from drivers.audio.pcm import Int16Array

Uint8Array = npt.NDArray[np.uint8]

_ALAW_SEGMENT_TOPS = np.array([15, 31, 63, 127, 255, 511, 1023, 2047])
_ULAW_BIAS = 33  # in 14-bit units (0x84 in 16-bit units)
_ULAW_MAX = 0x1FFF


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the LUT index)."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _one_complement_magnitude(x: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    return np.where(x >= 0, x, ~x)


def _build_alaw_encode() -> Uint8Array:
    x = _all_int16()
    mag = _one_complement_magnitude(x) >> 4  # 0 .. 2047
    seg = np.searchsorted(_ALAW_SEGMENT_TOPS, mag, side="left")
    mant = np.where(seg == 0, mag, mag >> np.maximum(seg - 1, 0)) & 0x0F
    code = (seg << 4) | mant | np.where(x >= 0, 0x80, 0x00)
    return (code ^ 0x55).astype(np.uint8)


def _build_ulaw_encode() -> Uint8Array:
    x = _all_int16()
    mag = np.minimum((_one_complement_magnitude(x) >> 2) + _ULAW_BIAS, _ULAW_MAX)  # 33 .. 8191
    seg = np.frexp(mag)[1].astype(np.int32) - 6  # bit length 6 .. 13 -> segment 0 .. 7
    mant = (mag >> (seg + 1)) & 0x0F
    code = (seg << 4) | mant | np.where(x < 0, 0x80, 0x00)
    table: Uint8Array = (~code & 0xFF).astype(np.uint8)
    return table


def _build_alaw_decode() -> Int16Array:
    v = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (v >> 4) & 0x07
    mant = v & 0x0F
    mag = np.where(seg == 0, (mant << 4) + 8, (((mant + 16) << 4) + 8) << np.maximum(seg - 1, 0))
    return np.where(v & 0x80, mag, -mag).astype(np.int16)


def _build_ulaw_decode() -> Int16Array:
    v = ~np.arange(256, dtype=np.int32) & 0xFF
    seg = (v >> 4) & 0x07
    mant = v & 0x0F
    mag = (((mant << 3) + 0x84) << seg) - 0x84
    return np.where(v & 0x80, -mag, mag).astype(np.int16)


ALAW_ENCODE_TABLE: Uint8Array = _build_alaw_encode()
"""A-law code for every int16 sample, indexed by the sample's uint16 bit pattern."""
ULAW_ENCODE_TABLE: Uint8Array = _build_ulaw_encode()
"""mu-law code for every int16 sample, indexed by the sample's uint16 bit pattern."""
ALAW_DECODE_TABLE: Int16Array = _build_alaw_decode()
"""16-bit linear value of each of the 256 A-law codes."""
ULAW_DECODE_TABLE: Int16Array = _build_ulaw_decode()
"""16-bit linear value of each of the 256 mu-law codes."""

for _table in (ALAW_ENCODE_TABLE, ULAW_ENCODE_TABLE, ALAW_DECODE_TABLE, ULAW_DECODE_TABLE):
    _table.setflags(write=False)


def _index(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint16]:
    return np.asarray(samples, dtype=np.int16).view(np.uint16)


def _codes(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Uint8Array:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def alaw_encode(samples: npt.NDArray[np.int16]) -> Uint8Array:
    """int16 samples -> A-law codes."""
    return ALAW_ENCODE_TABLE[_index(samples)]


def ulaw_encode(samples: npt.NDArray[np.int16]) -> Uint8Array:
    """int16 samples -> mu-law codes."""
    return ULAW_ENCODE_TABLE[_index(samples)]


def alaw_decode(codes: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Int16Array:
    """A-law codes (bytes or uint8 array) -> int16 samples."""
    return ALAW_DECODE_TABLE[_codes(codes)]


def ulaw_decode(codes: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Int16Array:
    """mu-law codes (bytes or uint8 array) -> int16 samples."""
    return ULAW_DECODE_TABLE[_codes(codes)]
