"""Crash-safe streaming WAV writer (PCM16), header repair and a small reader."""

from __future__ import annotations

import contextlib
import os
import struct
import wave
from pathlib import Path

import numpy as np

from drivers.audio.pcm import AudioLike, Int16Array, as_int16, pcm16_to_bytes

_HEADER_SIZE = 44
_RIFF_SIZE_OFFSET = 4
_DATA_SIZE_OFFSET = 40
_MAX_DATA = 0xFFFFFFFF - (_HEADER_SIZE - 8)


def _header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", _HEADER_SIZE - 8 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class StreamingWavWriter:
    """Appends PCM16 samples to a WAV file whose header is valid after every write.

    Data goes to the kernel with ``os.write`` (no user-space buffer) and the
    RIFF/data sizes are rewritten after each write, so a process killed at any
    point leaves a readable file holding everything written so far (at worst
    the header lags by the last write). ``fsync_every_s`` also forces data to
    storage periodically (power loss); 0 disables it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int = 8000,
        channels: int = 1,
        *,
        fsync_every_s: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self._fsync_bytes = int(fsync_every_s * sample_rate * channels * 2)
        self._since_sync = 0
        self._data_bytes = 0
        self._gap_bytes = 0  # silence owed before the next write (audio that could not be stored)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _pwrite_all(fd, _header(sample_rate, channels, 0), 0)
        except OSError:
            os.close(fd)
            raise
        self._fd: int | None = fd

    @property
    def frames_written(self) -> int:
        """Sample frames written so far."""
        return self._data_bytes // (2 * self.channels)

    @property
    def duration_s(self) -> float:
        """Seconds of audio written so far."""
        return self.frames_written / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._fd is None

    def skip(self, frames: int) -> None:
        """``frames`` sample frames of silence in place of audio that was lost, made by the next successful write.

        The silence is a hole in the file (no disk blocks where the file system
        supports sparse files), so the track stays aligned with the call's
        clock without needing the space the lost audio would have taken.
        """
        if frames < 0:
            raise ValueError(f"frames must be >= 0, got {frames}")
        self._gap_bytes += frames * 2 * self.channels

    def write(self, samples: AudioLike) -> None:
        """Append samples (int16/float arrays or PCM16 bytes) and update the header.

        A failed write (``OSError``, e.g. disk full) leaves the file as it was
        before it (a partly written tail is cut off again) and is raised; the
        writer stays usable. A header update that fails after the data went
        out is not raised: the header lags and is rewritten by the next write
        or ``close`` (``repair_wav`` fixes it after a crash).
        """
        if self._fd is None:
            raise ValueError("write to a closed WAV writer")
        data = pcm16_to_bytes(as_int16(samples))
        if not data:
            return
        start = self._data_bytes + self._gap_bytes
        if start + len(data) > _MAX_DATA:
            raise OverflowError("WAV file would exceed 4 GiB")
        try:
            _pwrite_all(self._fd, data, _HEADER_SIZE + start)  # past the end: the gap becomes a hole of silence
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, _HEADER_SIZE + self._data_bytes)
            raise
        self._data_bytes = start + len(data)
        self._gap_bytes = 0
        with contextlib.suppress(OSError):  # the header lags: the next write or close rewrites it
            self._write_sizes()
        if self._fsync_bytes:
            self._since_sync += len(data)
            if self._since_sync >= self._fsync_bytes:
                os.fsync(self._fd)
                self._since_sync = 0

    def close(self) -> None:
        """Finalise and close (idempotent); silence still owed (``skip``) is added as a hole if the file system can."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._gap_bytes:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, _HEADER_SIZE + self._data_bytes + self._gap_bytes)
                    self._data_bytes += self._gap_bytes
                    self._gap_bytes = 0
            self._write_sizes(fd)
            os.fsync(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> StreamingWavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_sizes(self, fd: int | None = None) -> None:
        fd = self._fd if fd is None else fd
        assert fd is not None
        # one syscall rewrites both size fields (and the unchanged bytes between them)
        header = _header(self.sample_rate, self.channels, self._data_bytes)
        os.pwrite(fd, header[_RIFF_SIZE_OFFSET:], _RIFF_SIZE_OFFSET)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def repair_wav(path: str | os.PathLike[str]) -> bool:
    """Make a 44-byte-header PCM WAV's sizes match the file length; True if it changed.

    For files left by a writer that died between appending data and updating
    the header. A trailing partial sample frame is cut off.
    """
    p = Path(path)
    with open(p, "r+b") as f:
        head = f.read(_HEADER_SIZE)
        if len(head) < _HEADER_SIZE or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt " or head[36:40] != b"data":
            raise ValueError(f"{p} is not a WAV file with a canonical 44-byte header")
        block_align = struct.unpack_from("<H", head, 32)[0] or 1
        size = f.seek(0, os.SEEK_END)
        data_bytes = min(size - _HEADER_SIZE, _MAX_DATA)
        data_bytes -= data_bytes % block_align
        riff_now, data_now = struct.unpack_from("<I", head, 4)[0], struct.unpack_from("<I", head, 40)[0]
        if data_now == data_bytes and riff_now == _HEADER_SIZE - 8 + data_bytes and size == _HEADER_SIZE + data_bytes:
            return False
        f.truncate(_HEADER_SIZE + data_bytes)
        f.seek(_RIFF_SIZE_OFFSET)
        f.write(struct.pack("<I", _HEADER_SIZE - 8 + data_bytes))
        f.seek(_DATA_SIZE_OFFSET)
        f.write(struct.pack("<I", data_bytes))
        return True


def read_wav(path: str | os.PathLike[str]) -> tuple[Int16Array, int]:
    """Read a mono PCM16 WAV with the stdlib ``wave`` module: (samples, sample_rate).

    A file that is not such a WAV raises ValueError (OSError if it cannot be
    read), whatever is wrong with it: ``wave`` itself raises ``wave.Error``,
    ``EOFError`` or, for a chunk whose size runs past the end, ``RuntimeError``.
    """
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path}: only 16-bit PCM is supported")
            if w.getnchannels() != 1:
                raise ValueError(f"{path}: only mono is supported")
            frames = w.readframes(w.getnframes())
            rate = w.getframerate()
    except (wave.Error, EOFError, RuntimeError, struct.error) as exc:
        raise ValueError(f"{path}: not a WAV file we can read ({exc or type(exc).__name__})") from None
    usable = len(frames) - len(frames) % 2
    return np.frombuffer(frames[:usable], dtype="<i2").astype(np.int16), rate
