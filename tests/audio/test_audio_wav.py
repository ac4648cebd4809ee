"""Streaming WAV writers: valid after every write, readable after SIGKILL, repairable."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from drivers.audio.call_recorder import CALLER_WAV, SECRETARY_WAV, CallRecorder, repair_call_dir
from drivers.audio.wav_io import StreamingWavWriter, read_wav, repair_wav

REPO = Path(__file__).resolve().parents[2]


def pattern(start: int, n: int) -> np.ndarray:
    return ((np.arange(start, start + n) * 7) % 65536 - 32768).astype(np.int16)


def test_header_is_valid_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    with StreamingWavWriter(path, 8000) as w:
        written = 0
        for n in (160, 1, 333, 0, 160):
            w.write(pattern(written, n))
            written += n
            with wave.open(str(path), "rb") as r:  # readable while still open
                assert (r.getnchannels(), r.getsampwidth(), r.getframerate()) == (1, 2, 8000)
                assert r.getnframes() == written
        assert w.frames_written == written and w.duration_s == pytest.approx(written / 8000)
    samples, rate = read_wav(path)
    assert rate == 8000 and np.array_equal(samples, pattern(0, written))


def test_accepts_float_and_bytes_and_refuses_after_close(tmp_path: Path) -> None:
    path = tmp_path / "f.wav"
    w = StreamingWavWriter(path, 16000)
    w.write(np.array([0.5, -0.5], np.float32))
    w.write(np.array([1, 2], "<i2").tobytes())
    w.close()
    w.close()
    with pytest.raises(ValueError):
        w.write(np.zeros(1, np.int16))
    samples, rate = read_wav(path)
    assert rate == 16000 and samples.tolist() == [16384, -16384, 1, 2]


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    from drivers.audio.wav_io import StreamingWavWriter
    w = StreamingWavWriter(sys.argv[1], 8000)
    n = 0
    while True:
        frame = ((np.arange(n, n + 160) * 7) % 65536 - 32768).astype(np.int16)
        w.write(frame)
        n += 160
        if n % 1600 == 0:
            print(n, flush=True)
    """
)


def test_killed_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        reported = 0
        deadline = time.monotonic() + 30
        while reported < 16000 and time.monotonic() < deadline:  # at least 2 s of audio written
            line = proc.stdout.readline()
            assert line, "writer died on its own"
            reported = int(line)
        os.kill(proc.pid, signal.SIGKILL)  # mid-write: no close(), no atexit, no flush
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with wave.open(str(path), "rb") as r:
        n = r.getnframes()
        data = np.frombuffer(r.readframes(n), "<i2")
    assert n >= reported
    assert np.array_equal(data, pattern(0, n))  # every sample the header counts is there and right
    assert path.stat().st_size - 44 - 2 * n <= 2 * 160  # header lags at most the last write


def test_repair_fixes_stale_header(tmp_path: Path) -> None:
    path = tmp_path / "stale.wav"
    with StreamingWavWriter(path, 8000) as w:
        w.write(pattern(0, 800))
    with open(path, "ab") as f:  # data appended behind the header's back, plus half a sample
        f.write(pattern(800, 400).tobytes() + b"\x01")
    assert repair_wav(path) is True
    samples, _ = read_wav(path)
    assert np.array_equal(samples, pattern(0, 1200))
    assert repair_wav(path) is False


def test_repair_zero_size_header(tmp_path: Path) -> None:
    """A writer killed before its first size update (header says 0 bytes)."""
    path = tmp_path / "zero.wav"
    StreamingWavWriter(path, 8000).close()  # header only, sizes 0
    with open(path, "ab") as f:
        f.write(pattern(0, 100).tobytes())
    with wave.open(str(path), "rb") as r:
        assert r.getnframes() == 0
    repair_wav(path)
    assert read_wav(path)[0].size == 100


def test_repair_rejects_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav file at all, but long enough to have a header....")
    with pytest.raises(ValueError):
        repair_wav(path)


async def test_call_recorder_writes_aligned_tracks(tmp_path: Path) -> None:
    call_dir = tmp_path / "calls" / "c1"
    rec = CallRecorder(call_dir)
    for i in range(10):
        rec.write_caller(pattern(i * 160, 160))
        rec.write_secretary(np.zeros(160, np.int16))
    await rec.aclose()
    caller, rate = read_wav(call_dir / CALLER_WAV)
    secretary, _ = read_wav(call_dir / SECRETARY_WAV)
    assert rate == 8000 and caller.size == secretary.size == 1600
    assert np.array_equal(caller, pattern(0, 1600))
    assert repair_call_dir(call_dir) == []
    with open(call_dir / CALLER_WAV, "ab") as f:
        f.write(pattern(0, 10).tobytes())
    assert repair_call_dir(call_dir) == [call_dir / CALLER_WAV]


def test_header_layout_is_canonical(tmp_path: Path) -> None:
    path = tmp_path / "h.wav"
    with StreamingWavWriter(path, 8000) as w:
        w.write(pattern(0, 10))
    head = path.read_bytes()[:44]
    assert head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt " and head[36:40] == b"data"
    assert struct.unpack("<IHHIIHH", head[16:36]) == (16, 1, 1, 8000, 16000, 2, 16)
    assert struct.unpack("<I", head[4:8])[0] == 36 + 20 and struct.unpack("<I", head[40:44])[0] == 20
