"""A call's recorder on a real full disk (a small tmpfs): it never raises, says what it lost, resumes aligned."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from drivers.audio.call_recorder import CALLER_WAV, DISK_FULL, SECRETARY_WAV, CallRecorder
from drivers.audio.wav_io import StreamingWavWriter, read_wav
from tests.support.small_disk import fill, small_tmpfs

FRAME = 160  # 20 ms at 8 kHz


def caller_frame(i: int) -> np.ndarray:
    return np.full(FRAME, (i % 200) + 1, np.int16)  # never silence: a lost frame is told apart from a written one


def secretary_frame(i: int) -> np.ndarray:
    return np.full(FRAME, -((i % 200) + 1), np.int16)


def feed(recorder: CallRecorder, first: int, count: int) -> None:
    for i in range(first, first + count):
        recorder.write_caller(caller_frame(i))
        recorder.write_secretary(secretary_frame(i))


@pytest.fixture
def disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    with small_tmpfs(tmp_path / "disk", "512k") as mounted:
        yield mounted


def test_a_full_disk_mid_call_loses_audio_but_never_raises_and_resumes_aligned(disk: Path) -> None:
    changes: list[tuple[bool, str | None]] = []
    recorder = CallRecorder(disk / "call", on_change=lambda r: changes.append((r.failing, r.reason)))
    feed(recorder, 0, 50)  # 1 s recorded
    filler = fill(disk)
    feed(recorder, 50, 150)  # 3 s on a full disk: nothing raises
    assert recorder.failing
    assert recorder.reason is not None and DISK_FULL in recorder.reason
    assert changes and changes[-1][0] is True
    os.unlink(filler)  # space returns
    feed(recorder, 200, 150)  # within RETRY_EVERY_S of audio the tracks write again
    assert not recorder.failing and changes[-1] == (False, None)
    recorder.close()
    summary = recorder.summary()
    assert summary["complete"] is False and summary["reason"] is not None and DISK_FULL in summary["reason"]
    assert 2.9 <= summary["lost_s"] <= 5.0 + 0.02
    [(gap_start, gap_end)] = summary["gaps"]
    assert gap_start == pytest.approx(1.0, abs=0.1) and gap_end == pytest.approx(1.0 + summary["lost_s"], abs=0.05)

    caller, rate = read_wav(disk / "call" / CALLER_WAV)
    secretary, _ = read_wav(disk / "call" / SECRETARY_WAV)
    assert rate == 8000 and caller.size == secretary.size == 350 * FRAME  # aligned with the call's clock
    frames = caller.reshape(-1, FRAME)
    lost = [i for i in range(350) if not frames[i].any()]
    assert lost and lost == list(range(lost[0], lost[-1] + 1))  # one stretch of silence where audio was lost
    assert lost[0] * FRAME / rate == pytest.approx(gap_start, abs=0.03)
    kept = [i for i in range(350) if frames[i].any()]
    assert all(np.array_equal(frames[i], caller_frame(i)) for i in kept)  # every kept frame at its own time
    assert all(np.array_equal(secretary.reshape(-1, FRAME)[i], secretary_frame(i)) for i in kept)


def test_a_disk_full_from_the_first_frame_starts_the_tracks_when_space_returns(disk: Path) -> None:
    filler = fill(disk)
    recorder = CallRecorder(disk / "call")
    feed(recorder, 0, 25)
    assert recorder.failing
    os.unlink(filler)
    feed(recorder, 25, 150)
    assert not recorder.failing
    recorder.close()
    caller, _ = read_wav(disk / "call" / CALLER_WAV)
    assert caller.size == 175 * FRAME
    frames = caller.reshape(-1, FRAME)
    assert not frames[0].any() and np.array_equal(frames[-1], caller_frame(174))
    assert recorder.summary()["gaps"][0][0] == 0.0


def test_a_call_that_ends_while_the_disk_is_full_keeps_what_it_had(disk: Path) -> None:
    recorder = CallRecorder(disk / "call")
    feed(recorder, 0, 50)
    fill(disk)
    feed(recorder, 50, 50)
    recorder.close()  # the final header write and fsync on a full disk: noted, not raised
    summary = recorder.summary()
    assert summary["complete"] is False and summary["lost_s"] > 0.5
    caller, _ = read_wav(disk / "call" / CALLER_WAV)
    assert caller.size >= 40 * FRAME
    assert np.array_equal(caller.reshape(-1, FRAME)[10], caller_frame(10))


def test_a_complete_recording_says_so(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path / "call")
    feed(recorder, 0, 10)
    recorder.close()
    assert recorder.summary() == {"complete": True, "lost_s": 0.0, "reason": None, "gaps": []}


def test_a_failed_wav_write_leaves_the_file_as_it_was_and_the_writer_usable(disk: Path) -> None:
    path = disk / "t.wav"
    writer = StreamingWavWriter(path, 8000)
    writer.write(caller_frame(0))
    filler = fill(disk)
    size = path.stat().st_size
    with pytest.raises(OSError):
        writer.write(np.ones(64 * 1024, np.int16))  # far more than any page left
    assert path.stat().st_size == size and writer.frames_written == FRAME
    os.unlink(filler)
    writer.skip(FRAME)
    writer.write(caller_frame(2))
    writer.close()
    samples, _ = read_wav(path)
    assert samples.size == 3 * FRAME and not samples[FRAME : 2 * FRAME].any()
    assert np.array_equal(samples[2 * FRAME :], caller_frame(2))
