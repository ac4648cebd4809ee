"""Reference recordings for a cloned (XTTS v2) voice, uploaded from the web page.

XTTS clones a voice from a few clean recordings of one speaker, each about
3-30 s long. :func:`check_sample` says whether an upload is usable and, if
not, lists every problem as a sentence a person can act on. A
:class:`VoiceLibrary` keeps the accepted samples on disk as
``<root>/<voice>/<NN>.wav`` (16-bit PCM mono at the upload's own rate), with
a small ``samples.json`` sidecar holding display data (original file name,
upload time, duration, level).

Everything here is synchronous and touches the disk or crunches up to
``MAX_UPLOAD_BYTES`` of audio: async callers run it in a thread
(``await asyncio.to_thread(library.add, ...)``).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import struct
import threading
import time
import unicodedata
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.audio.pcm import float_to_int16, pcm16_to_bytes

log = logging.getLogger("secretary.web")

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MIN_DURATION_S = 3.0
MAX_DURATION_S = 30.0
MIN_SAMPLE_RATE = 16000
MAX_CHANNELS = 2
CLIP_LEVEL = 0.999  # |sample| at or above this fraction of full scale counts as clipped
MAX_CLIPPED_RATIO = 0.001
MIN_RMS_DBFS = -40.0
MAX_RMS_DBFS = -6.0
SPEECH_FRAME_S = 0.02
SPEECH_FRAME_DBFS = -45.0  # a 20 ms frame louder than this is taken as sound, not silence
MIN_SPEECH_S = 1.0
FLOOR_DBFS = -120.0  # levels of digital silence are reported as this, never -inf

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10",
    0x0050: "MPEG", 0x0055: "MP3", 0x00FF: "AAC", 0x1610: "AAC", 0x674F: "Ogg Vorbis", 0xF1AC: "FLAC",
}
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"ID3", "MP3 audio"), (b"\xff\xfb", "MP3 audio"), (b"\xff\xf3", "MP3 audio"), (b"\xff\xf2", "MP3 audio"),
    (b"\xff\xf1", "AAC audio"), (b"\xff\xf9", "AAC audio"), (b"OggS", "Ogg audio (Vorbis or Opus)"),
    (b"fLaC", "FLAC audio"), (b"\x1aE\xdf\xa3", "WebM/Matroska"), (b"FORM", "AIFF audio"),
    (b"#!AMR", "AMR audio"), (b"RF64", "an RF64 (very large WAV) file"),
)

FloatFrames = npt.NDArray[np.float32]
"""Decoded audio: shape (frames, channels), float32, full scale = 1.0."""


@dataclass(frozen=True)
class SampleCheck:
    """Whether an upload is a usable voice sample, and what was measured.

    Levels are dBFS of the raw sample values (a full-scale sine is -3 dBFS),
    floored at -120. When the file could not be read, the measurements are 0.
    """

    ok: bool
    problems: tuple[str, ...]
    duration_s: float
    sample_rate: int
    channels: int
    peak_dbfs: float
    rms_dbfs: float
    clipped_ratio: float


class SampleRejected(ValueError):
    """An upload that :func:`check_sample` refused; ``check`` says why."""

    def __init__(self, check: SampleCheck) -> None:
        super().__init__("; ".join(check.problems) or "the sample was rejected")
        self.check = check


@dataclass(frozen=True)
class SampleInfo:
    """A stored sample, for display."""

    name: str  # "01.wav"
    duration_s: float
    rms_dbfs: float
    original_name: str  # the uploaded file's name, sanitised; "" if unknown
    added_at: float  # unix time; the file's mtime if the sidecar does not know


# -- reading a WAV -------------------------------------------------------------------


class _Unreadable(Exception):
    """The upload is not a WAV file we can read; the message is the problem sentence."""


@dataclass(frozen=True)
class _Format:
    tag: int  # WAVE format code, with WAVE_FORMAT_EXTENSIBLE resolved to its subformat
    channels: int
    sample_rate: int
    bits: int


def _require_riff_wave(data: bytes) -> None:
    if not data:
        raise _Unreadable("not a WAV file: the file is empty; upload a WAV recording")
    if data.startswith(b"RIFF"):
        if len(data) < 12:
            raise _Unreadable(
                "the WAV file is damaged or cut short (its header is incomplete); export or record it again"
            )
        if data[8:12] != b"WAVE":
            kind = data[8:12].decode("latin-1").strip() or "unknown"
            raise _Unreadable(f"not a WAV file: it is a RIFF file of type {kind!r}; export the recording as WAV")
        return
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            raise _Unreadable(f"not a WAV file: it looks like {kind}; export or convert the recording to WAV")
    if data[4:8] == b"ftyp":
        raise _Unreadable("not a WAV file: it looks like MP4/M4A audio; export or convert the recording to WAV")
    raise _Unreadable("not a WAV file: it does not start with a RIFF/WAVE header; upload a .wav recording")


def _read_with_wave(data: bytes) -> tuple[_Format, bytes]:
    """Plain PCM WAV through the stdlib reader; raises wave.Error/EOFError for anything else."""
    with wave.open(io.BytesIO(data), "rb") as w:
        fmt = _Format(_WAVE_FORMAT_PCM, w.getnchannels(), w.getframerate(), 8 * w.getsampwidth())
        return fmt, w.readframes(w.getnframes())


def _read_chunks(data: bytes) -> tuple[_Format, bytes]:
    """A small RIFF chunk parser for what ``wave`` refuses (float, EXTENSIBLE, compressed)."""
    damaged = "the WAV file is damaged or cut short ({}); export or record it again"
    fmt: _Format | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise _Unreadable(damaged.format("its format header is incomplete"))
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _WAVE_FORMAT_EXTENSIBLE:
                if len(body) < 26:
                    raise _Unreadable(damaged.format("its extended format header is incomplete"))
                tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the subformat GUID
            fmt = _Format(tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise _Unreadable(damaged.format("the audio comes before its format header"))
            return fmt, body  # a short body means the file was cut; keep what is there
        pos += 8 + size + (size & 1)
    missing = "its format header is missing" if fmt is None else "it holds no audio data chunk"
    raise _Unreadable(damaged.format(missing))


def _read_wav(data: bytes) -> tuple[_Format, bytes]:
    _require_riff_wave(data)
    try:
        return _read_with_wave(data)
    except (wave.Error, EOFError, struct.error, RuntimeError):  # RuntimeError: a chunk that runs past the end
        return _read_chunks(data)


def _format_problems(fmt: _Format) -> tuple[list[str], str | None]:
    """Problems visible from the header, and the sample encoding if we can decode it."""
    problems: list[str] = []
    encoding: str | None = None
    if fmt.tag == _WAVE_FORMAT_PCM:
        if fmt.bits in (16, 24):
            encoding = f"pcm{fmt.bits}"
        else:
            problems.append(
                f"the WAV file uses {fmt.bits}-bit PCM samples; save it as 16-bit PCM, 24-bit PCM or 32-bit float"
            )
    elif fmt.tag == _WAVE_FORMAT_IEEE_FLOAT:
        if fmt.bits == 32:
            encoding = "float32"
        else:
            problems.append(
                f"the WAV file uses {fmt.bits}-bit float samples; save it as 16-bit PCM, 24-bit PCM or 32-bit float"
            )
    else:
        name = _FORMAT_NAMES.get(fmt.tag, f"format 0x{fmt.tag:04x}")
        problems.append(f"the WAV file holds compressed audio ({name}); save it as uncompressed 16-bit PCM WAV")
    if fmt.channels < 1 or fmt.sample_rate < 1:
        raise _Unreadable("the WAV file is damaged (its header gives no channels or no sample rate); export it again")
    if fmt.sample_rate < MIN_SAMPLE_RATE:
        problems.append(
            f"the sample rate is {fmt.sample_rate} Hz; record at {MIN_SAMPLE_RATE} Hz or more "
            "(phone-quality audio makes a poor voice)"
        )
    if fmt.channels > MAX_CHANNELS:
        problems.append(f"the file has {fmt.channels} channels; save it as mono (or stereo)")
    return problems, encoding


def _decode(encoding: str, channels: int, pcm: bytes) -> FloatFrames:
    width = {"pcm16": 2, "pcm24": 3, "float32": 4}[encoding]
    usable = len(pcm) - len(pcm) % (width * channels)
    raw = np.frombuffer(pcm, dtype=np.uint8, count=usable)
    if encoding == "pcm16":
        samples = raw.view("<i2").astype(np.float32) / np.float32(32768.0)
    elif encoding == "pcm24":
        b = raw.reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 -> 32 bits
        samples = ints.astype(np.float32) / np.float32(8388608.0)
    else:
        samples = raw.view("<f4").astype(np.float32)
    return samples.reshape(-1, channels)


# -- measuring -----------------------------------------------------------------------


def _dbfs(value: float) -> float:
    return max(FLOOR_DBFS, 20.0 * math.log10(value)) if value > 0 else FLOOR_DBFS


def _speech_seconds(frames: FloatFrames, sample_rate: int) -> float:
    """Seconds of 20 ms frames louder than SPEECH_FRAME_DBFS."""
    size = max(1, round(sample_rate * SPEECH_FRAME_S))
    count = frames.shape[0] // size
    if count == 0:
        return 0.0
    blocks = frames[: count * size].reshape(count, -1)
    frame_rms = np.sqrt(np.mean(np.square(blocks, dtype=np.float64), axis=1))
    threshold = 10.0 ** (SPEECH_FRAME_DBFS / 20.0)
    return float(np.count_nonzero(frame_rms > threshold)) * size / sample_rate


def _level_problems(frames: FloatFrames, sample_rate: int) -> tuple[list[str], float, float, float]:
    """(problems, peak dBFS, rms dBFS, clipped ratio) of decoded audio."""
    problems: list[str] = []
    if frames.size == 0:
        return problems, FLOOR_DBFS, FLOOR_DBFS, 0.0
    magnitude = np.abs(frames)
    peak = float(magnitude.max())
    rms = math.sqrt(float(np.mean(np.square(frames, dtype=np.float64))))
    clipped = float(np.count_nonzero(magnitude >= CLIP_LEVEL)) / frames.size
    peak_db, rms_db = _dbfs(peak), _dbfs(rms)
    if clipped > MAX_CLIPPED_RATIO:
        problems.append(
            f"{clipped * 100:.1f} % of the samples are clipped (distorted); "
            "record again with the input level turned down"
        )
    if rms_db < MIN_RMS_DBFS:
        problems.append(
            f"the recording is too quiet ({rms_db:.1f} dBFS on average); "
            "record closer to the microphone or turn the input level up"
        )
    elif rms_db > MAX_RMS_DBFS:
        problems.append(f"the recording is too loud ({rms_db:.1f} dBFS on average); turn the input level down")
    speech_s = _speech_seconds(frames, sample_rate)
    if speech_s < MIN_SPEECH_S:
        problems.append(
            f"the recording is mostly silence (only {speech_s:.1f} s is louder than {SPEECH_FRAME_DBFS:.0f} dBFS); "
            "record someone speaking for 3 to 30 seconds"
        )
    return problems, peak_db, rms_db, clipped


def _analyse(data: bytes) -> tuple[SampleCheck, FloatFrames | None]:
    """The check, and the decoded audio when the file could be decoded."""
    def refused(problem: str, rate: int = 0, channels: int = 0) -> tuple[SampleCheck, None]:
        return SampleCheck(False, (problem,), 0.0, rate, channels, 0.0, 0.0, 0.0), None

    if len(data) > MAX_UPLOAD_BYTES:
        return refused(
            f"the file is {len(data) / 1048576:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 1048576} MB "
            "(upload 3 to 30 seconds of 16-bit mono WAV)"
        )
    try:
        fmt, pcm = _read_wav(data)
        problems, encoding = _format_problems(fmt)
    except _Unreadable as exc:
        return refused(str(exc))
    if encoding is None:
        return SampleCheck(False, tuple(problems), 0.0, fmt.sample_rate, fmt.channels, 0.0, 0.0, 0.0), None
    frames = _decode(encoding, fmt.channels, pcm)
    if not np.isfinite(frames).all():
        problems.append("the file contains invalid (NaN or infinite) float samples; export it again")
        frames = np.nan_to_num(frames, nan=0.0, posinf=1.0, neginf=-1.0)
    duration = frames.shape[0] / fmt.sample_rate
    if duration < MIN_DURATION_S:
        problems.append(f"the file is {duration:.1f} s long; record 3 to 30 seconds of speech")
    elif duration > MAX_DURATION_S:
        problems.append(f"the file is {duration:.1f} s long; trim it to 3 to 30 seconds of speech")
    level_problems, peak_db, rms_db, clipped = _level_problems(frames, fmt.sample_rate)
    problems.extend(level_problems)
    check = SampleCheck(
        ok=not problems, problems=tuple(problems), duration_s=duration, sample_rate=fmt.sample_rate,
        channels=fmt.channels, peak_dbfs=peak_db, rms_dbfs=rms_db, clipped_ratio=clipped,
    )
    return check, frames


def check_sample(data: bytes) -> SampleCheck:
    """Check an upload as an XTTS reference sample; never raises on bad input."""
    return _analyse(bytes(data))[0]


def _mono_wav(frames: FloatFrames, sample_rate: int) -> bytes:
    mono = frames.mean(axis=1, dtype=np.float64)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm16_to_bytes(float_to_int16(mono)))
    return out.getvalue()


# -- the library ---------------------------------------------------------------------

_VOICE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}", re.ASCII)
_SAMPLE_NAME = re.compile(r"[0-9]{2,3}\.wav", re.ASCII)
_INDEX_NAME = "samples.json"
_MAX_SAMPLE_NUMBER = 999
_MAX_DISPLAY_NAME = 100
_DISPLAY_FORBIDDEN = set('<>:"|?*`')


def display_name(original_name: str) -> str:
    """An uploaded file name made safe to store and show: base name only, no control characters."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", original_name))[-1]
    kept = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C" and ch not in _DISPLAY_FORBIDDEN)
    return " ".join(kept.split()).strip(" .")[:_MAX_DISPLAY_NAME]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class VoiceLibrary:
    """Samples on disk under root/<voice>/<n>.wav (16-bit PCM mono, original rate kept).

    Sample names are ``01.wav``, ``02.wav`` ... (three digits past 99): a new
    sample is numbered one past the highest present, so a deleted name is not
    reused while a later sample exists. Names the caller passes in are checked
    against that pattern and resolved inside ``root``, so no path escapes it.
    Synchronous; async callers use ``asyncio.to_thread``.
    """

    MIN_SAMPLES = 3

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()  # serialises sidecar index updates within this process

    # -- names and paths
    def voice_dir(self, voice: str) -> Path:
        if not isinstance(voice, str) or not _VOICE_NAME.fullmatch(voice):
            raise ValueError(
                f"invalid voice name {voice!r}: use 1-32 lowercase letters, digits, '-' or '_', starting with a letter"
            )
        return self.root / voice

    def sample_path(self, voice: str, name: str) -> Path:
        directory = self.voice_dir(voice)
        if not isinstance(name, str) or not _SAMPLE_NAME.fullmatch(name):
            raise ValueError(f"invalid sample name {name!r}: expected a name like '01.wav'")
        path = (directory / name).resolve()
        root = self.root.resolve()
        if not path.is_relative_to(root) or path.parent != (root / voice):
            raise ValueError(f"sample {name!r} is outside the voice library")
        if not path.is_file():
            raise FileNotFoundError(f"voice {voice!r} has no sample {name!r}")
        return path

    # -- queries
    def voices(self) -> list[str]:
        """Voices that have at least one sample, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            d.name for d in self.root.iterdir()
            if d.is_dir() and _VOICE_NAME.fullmatch(d.name) and self._sample_files(d)
        )

    def samples(self, voice: str) -> list[SampleInfo]:
        directory = self.voice_dir(voice)
        index = self._read_index(directory)
        infos: list[SampleInfo] = []
        for path in self._sample_files(directory):
            entry = index.get(path.name)
            infos.append(self._info(path, entry if isinstance(entry, dict) else {}))
        return infos

    # -- changes
    def add(self, voice: str, data: bytes, original_name: str = "") -> tuple[str, SampleCheck]:
        """Check ``data``; store it as the next numbered sample or raise :class:`SampleRejected`."""
        directory = self.voice_dir(voice)
        check, frames = _analyse(bytes(data))
        if not check.ok or frames is None:
            raise SampleRejected(check)
        wav = _mono_wav(frames, check.sample_rate)
        directory.mkdir(parents=True, exist_ok=True)
        name = self._store_new(directory, wav)
        entry = {
            "original_name": display_name(original_name), "added_at": round(time.time(), 3),
            "duration_s": round(check.duration_s, 3), "rms_dbfs": round(check.rms_dbfs, 2),
        }
        with self._lock:
            index = self._read_index(directory)
            index[name] = entry
            self._write_index(directory, index)
        return name, check

    def delete(self, voice: str, name: str) -> None:
        path = self.sample_path(voice, name)
        directory = path.parent
        path.unlink()
        with self._lock:
            index = self._read_index(directory)
            if index.pop(name, None) is not None:
                self._write_index(directory, index)

    # -- internals
    @staticmethod
    def _sample_files(directory: Path) -> list[Path]:
        if not directory.is_dir():
            return []
        files = [
            p for p in directory.iterdir() if _SAMPLE_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink()
        ]
        return sorted(files, key=lambda p: int(p.name.split(".")[0]))

    def _store_new(self, directory: Path, wav: bytes) -> str:
        """Write ``wav`` under the next free number without ever overwriting a sample."""
        tmp = directory / f".upload-{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(wav)
                f.flush()
                os.fsync(f.fileno())
            existing = [int(p.name.split(".")[0]) for p in self._sample_files(directory)]
            number = max(existing, default=0) + 1
            while number <= _MAX_SAMPLE_NUMBER:
                name = f"{number:02d}.wav"
                try:
                    os.link(tmp, directory / name)  # atomic, and fails rather than replace
                except FileExistsError:
                    number += 1
                    continue
                return name
            raise ValueError(f"voice {directory.name!r} has too many samples; delete some first")
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _read_index(directory: Path) -> dict[str, Any]:
        try:
            index = json.loads((directory / _INDEX_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("unreadable voice sample index, ignoring it", extra={"path": str(directory), "error": str(exc)})
            return {}
        return index if isinstance(index, dict) else {}

    @staticmethod
    def _write_index(directory: Path, index: dict[str, Any]) -> None:
        _write_atomic(directory / _INDEX_NAME, json.dumps(index, indent=1, sort_keys=True).encode("utf-8"))

    @staticmethod
    def _info(path: Path, entry: dict[str, Any]) -> SampleInfo:
        duration, rms = entry.get("duration_s"), entry.get("rms_dbfs")
        if not isinstance(duration, (int, float)) or not isinstance(rms, (int, float)):
            check = check_sample(path.read_bytes())
            duration, rms = check.duration_s, check.rms_dbfs
        original = entry.get("original_name")
        added = entry.get("added_at")
        return SampleInfo(
            name=path.name, duration_s=float(duration), rms_dbfs=float(rms),
            original_name=original if isinstance(original, str) else "",
            added_at=float(added) if isinstance(added, (int, float)) else path.stat().st_mtime,
        )
