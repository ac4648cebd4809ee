"""Line codecs: PCM16 little-endian, G.711 A-law, G.711 mu-law."""

from __future__ import annotations

from enum import Enum

import numpy as np
import numpy.typing as npt

from drivers.audio import g711
from drivers.audio.pcm import Int16Array, pcm16_from_bytes, pcm16_to_bytes


class LineCodec(Enum):
    """Wire format of line audio; the value is the config spelling."""

    PCM16 = "pcm16"
    ALAW = "alaw"
    ULAW = "ulaw"

    @property
    def bytes_per_sample(self) -> int:
        """Bytes one sample takes on the wire."""
        return 2 if self is LineCodec.PCM16 else 1

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """int16 samples -> wire bytes."""
        if self is LineCodec.PCM16:
            return pcm16_to_bytes(samples)
        if self is LineCodec.ALAW:
            return g711.alaw_encode(samples).tobytes()
        return g711.ulaw_encode(samples).tobytes()

    def decode(self, data: bytes | bytearray | memoryview) -> Int16Array:
        """Wire bytes (whole samples) -> int16 samples."""
        if self is LineCodec.PCM16:
            return pcm16_from_bytes(data)
        if self is LineCodec.ALAW:
            return g711.alaw_decode(data)
        return g711.ulaw_decode(data)


class LineDecoder:
    """Streaming decoder that carries a trailing partial PCM16 sample over to the next chunk."""

    def __init__(self, codec: LineCodec | str) -> None:
        self.codec = LineCodec(codec)
        self._carry = b""

    def decode(self, data: bytes | bytearray | memoryview) -> Int16Array:
        """Decode as many whole samples as available; keep the odd byte, if any."""
        buf = self._carry + bytes(data) if self._carry else bytes(data)
        usable = len(buf) - len(buf) % self.codec.bytes_per_sample
        self._carry = buf[usable:]
        return self.codec.decode(buf[:usable])

    def reset(self) -> None:
        """Forget any carried partial sample."""
        self._carry = b""
