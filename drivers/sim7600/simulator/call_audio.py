"""Caller audio for the simulator: WAV in (what the caller says), WAV out (what the box sent)."""

from __future__ import annotations

import wave
from pathlib import Path

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
CHANNELS = 1
FRAME_BYTES = 320


def read_pcm_wav(path: Path | str) -> bytes:
    """PCM16 bytes of an 8 kHz mono 16-bit WAV (the modem's own format)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH):
            raise ValueError(
                f"{path}: need 8000 Hz mono 16-bit PCM, got {wav.getframerate()} Hz, "
                f"{wav.getnchannels()} channel(s), {8 * wav.getsampwidth()}-bit"
            )
        return wav.readframes(wav.getnframes())


def write_pcm_wav(path: Path | str, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(CHANNELS)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])


class UplinkRecorder:
    """Appends what the host writes to a WAV file; the header stays valid after every write."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")
        self._wav.setnchannels(CHANNELS)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(SAMPLE_RATE)
        self._remainder = b""
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        if self._wav is None:
            return
        data = self._remainder + data
        whole = len(data) - len(data) % SAMPLE_WIDTH
        self._remainder = data[whole:]
        if whole:
            self._wav.writeframes(data[:whole])
            self.bytes_written += whole

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class SpeechQueue:
    """PCM the caller is going to say, handed out one 20 ms frame at a time."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, pcm: bytes) -> None:
        self._pending += pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]

    def clear(self) -> None:
        self._pending.clear()

    def next_frame(self, silence: bool) -> bytes | None:
        if not self._pending:
            return bytes(FRAME_BYTES) if silence else None
        frame = bytes(self._pending[:FRAME_BYTES])
        del self._pending[:FRAME_BYTES]
        if len(frame) < FRAME_BYTES:
            frame += bytes(FRAME_BYTES - len(frame))
        return frame
