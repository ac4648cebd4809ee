"""Parse a PCM16 WAV held in memory, including the "streaming" WAVs espeak-ng writes to stdout.

``espeak-ng --stdout`` cannot seek back to fill in sizes, so its RIFF and data
chunk sizes are placeholders (0x7FFFF000-ish or 0xFFFFFFFF). The data chunk is
therefore read up to the declared size or the end of the bytes, whichever
comes first. Multi-channel audio is mixed down to mono.
"""

from __future__ import annotations

import struct

import numpy as np


class WavError(ValueError):
    """The bytes are not a PCM16 WAV."""


def parse_wav_pcm16(data: bytes) -> tuple[np.ndarray, int]:
    """(mono int16 samples, sample rate) of a RIFF/WAVE PCM 16-bit file's bytes."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"not a RIFF/WAVE file (starts with {data[:12]!r})")
    offset = 12
    channels = rate = bits = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError("truncated fmt chunk")
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if audio_format not in (1, 0xFFFE):
                raise WavError(f"WAV format {audio_format} is not PCM")
            if bits != 16:
                raise WavError(f"WAV has {bits}-bit samples, need 16")
            if channels < 1 or rate < 1:
                raise WavError(f"WAV fmt has {channels} channels at {rate} Hz")
        elif chunk_id == b"data":
            if channels is None or rate is None:
                raise WavError("WAV data chunk before its fmt chunk")
            end = min(len(data), body + size)
            usable = (end - body) // (2 * channels) * (2 * channels)
            samples = np.frombuffer(data, dtype="<i2", count=usable // 2, offset=body).astype(np.int16)
            if channels > 1:
                samples = samples.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
            return samples, int(rate)
        offset = body + size + (size & 1)
    raise WavError("WAV has no data chunk")
