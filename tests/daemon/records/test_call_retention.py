"""Call record upkeep: crash recovery, re-indexing, retention sweep and its background task."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import wave
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon.records import retention as call_retention
from daemon.records.call_index import CallIndex
from daemon.records.call_record import TRANSCRIPT_JSON, TRANSCRIPT_TXT, CallRecord, CallRecordHeader, Utterance
from daemon.records.retention import SweepResult, recover_interrupted, run_retention, sweep
from drivers.audio import CallRecorder

REPO = Path(__file__).resolve().parents[3]
DAY = 86400.0
NOW = 1_732_000_000.0


@pytest.fixture
def calls_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "calls"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CallIndex]:
    idx = CallIndex(tmp_path / "data" / "secretary.db")
    yield idx
    idx.close()


def new_record(
    calls_dir: Path, call_id: str, started_at: float, index: CallIndex | None = None, **updates: Any
) -> CallRecord:
    record = CallRecord(calls_dir / call_id, CallRecordHeader(call_id, "+7999", "anna", "ru", started_at))
    if updates:
        record.update(**updates)
    if index is not None:
        index.upsert(record.header, record.call_dir)
    return record


def finished(calls_dir: Path, call_id: str, started_at: float, index: CallIndex) -> CallRecord:
    return new_record(calls_dir, call_id, started_at, index, outcome="message_taken", duration_s=30.0)


def tone(seconds: float, start: int = 0) -> np.ndarray:
    n = int(seconds * 8000)
    return ((np.arange(start, start + n) * 37) % 20000 - 10000).astype(np.int16)


def wav_info(path: Path) -> tuple[int, int, int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes(), w.readframes(w.getnframes())


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- recovery


def test_recover_in_progress_record_with_audio_from_call_recorder(calls_dir: Path, index: CallIndex) -> None:
    call_id = "20241119T071320Z-abc123"
    call_dir = calls_dir / call_id
    recorder = CallRecorder(call_dir)  # never closed: the daemon "crashed"
    try:
        record = new_record(calls_dir, call_id, NOW - 60, index, answered_at=NOW - 55)
        record.add_utterance(Utterance("secretary", "Здравствуйте!", 0.0, 1.2, source="greeting"))
        record.add_utterance(Utterance("caller", "Это Пётр", 1.5, 2.8))
        recorder.write_caller(tone(3.0))
        recorder.write_secretary(tone(1.5))
        # the last write reached the file but its header update did not (killed in between)
        with open(call_dir / "caller.wav", "ab") as f:
            f.write(tone(0.5, 24000).tobytes())
        with open(call_dir / "secretary.wav", "ab") as f:
            f.write(b"\x01\x02\x03")  # and a torn sample
        assert wav_info(call_dir / "caller.wav")[3] == 24000  # stale header

        assert recover_interrupted(calls_dir, index, now=NOW) == [call_id]

        assert wav_info(call_dir / "caller.wav") == (1, 2, 8000, 28000, tone(3.5).tobytes())
        assert wav_info(call_dir / "secretary.wav") == (1, 2, 8000, 12001, tone(1.5).tobytes() + b"\x01\x02")
        h = CallRecord.load(call_dir).header
        assert (h.outcome, h.end_reason) == ("interrupted", "daemon_stopped")
        assert h.duration_s == pytest.approx(3.5)  # the longest track beats the last utterance (2.8 s)
        assert h.ended_at == pytest.approx(NOW - 55 + 3.5)
        txt = (call_dir / TRANSCRIPT_TXT).read_text("utf-8")
        assert "Outcome:  interrupted (daemon_stopped)" in txt and "Caller: Это Пётр" in txt
        row = index.get(call_id)
        assert row is not None and row.outcome == "interrupted" and row.duration_s == pytest.approx(3.5)
        assert index.in_progress() == []
        assert recover_interrupted(calls_dir, index, now=NOW) == []  # idempotent
    finally:
        recorder.close()  # test teardown only: release the file descriptors


CRASHING_CALL = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from pathlib import Path
    from daemon.records.call_index import CallIndex
    from daemon.records.call_record import CallRecord, CallRecordHeader, Utterance
    from drivers.audio import CallRecorder
    calls, call_id = Path(sys.argv[1]), sys.argv[2]
    index = CallIndex(Path(sys.argv[3]))
    recorder = CallRecorder(calls / call_id)
    record = CallRecord(calls / call_id, CallRecordHeader(call_id, None, "anna", "en", 1700000000.0))
    record.update(answered_at=1700000003.0)
    index.upsert(record.header, record.call_dir)
    for i in range(100):  # 2 s of 20 ms frames both ways
        recorder.write_caller(np.full(160, i, np.int16))
        recorder.write_secretary(np.full(160, -i, np.int16))
    record.add_utterance(Utterance("caller", "hello?", 0.5, 1.0))
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_recover_after_sigkill_of_a_whole_call(calls_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "data" / "secretary.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_CALL, str(calls_dir), "crashed-1", str(db)],
        env=env, capture_output=True, timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    with CallIndex(db) as index:
        result = sweep(calls_dir, index, retention_days=30, now=1700000100.0)
        assert result == SweepResult(deleted=[], bytes_freed=0, recovered=["crashed-1"], errors=[])
        row = index.get("crashed-1")
        assert row is not None and row.outcome == "interrupted" and row.duration_s == pytest.approx(2.0)
    for name, sign in (("caller.wav", 1), ("secretary.wav", -1)):
        channels, width, rate, frames, data = wav_info(calls_dir / "crashed-1" / name)
        assert (channels, width, rate, frames) == (1, 2, 8000, 16000)
        assert np.array_equal(np.frombuffer(data, "<i2"), sign * np.repeat(np.arange(100), 160))


def test_recover_without_audio_uses_the_last_utterance_or_dtmf(calls_dir: Path, index: CallIndex) -> None:
    record = new_record(calls_dir, "quiet", NOW - 100, index)
    record.add_utterance(Utterance("caller", "hello", 1.0, 4.5))
    record.add_dtmf("3", 6.0)
    never_answered = new_record(calls_dir, "ringing", NOW - 50, index)
    assert recover_interrupted(calls_dir, index, now=NOW) == ["quiet", "ringing"]
    h = CallRecord.load(record.call_dir).header
    assert (h.outcome, h.duration_s, h.ended_at) == ("interrupted", 6.0, NOW - 100 + 6.0)
    h = CallRecord.load(never_answered.call_dir).header
    assert (h.outcome, h.duration_s, h.ended_at) == ("interrupted", 0.0, NOW - 50)


def test_recover_keeps_end_fields_written_before_the_crash(calls_dir: Path, index: CallIndex) -> None:
    new_record(calls_dir, "ending", NOW - 100, index, ended_at=NOW - 20, duration_s=77.0, end_reason="remote hangup")
    assert recover_interrupted(calls_dir, index, now=NOW) == ["ending"]
    h = CallRecord.load(calls_dir / "ending").header
    assert (h.outcome, h.ended_at, h.duration_s, h.end_reason) == ("interrupted", NOW - 20, 77.0, "remote hangup")


def test_live_call_is_never_recovered(calls_dir: Path, index: CallIndex) -> None:
    live = new_record(calls_dir, "live", NOW - 10, index)
    before = files_under(live.call_dir)
    assert recover_interrupted(calls_dir, index, now=NOW, live_call_ids={"live"}) == []
    assert files_under(live.call_dir) == before
    row = index.get("live")
    assert row is not None and row.outcome == "in_progress"


def test_directories_without_a_row_are_reindexed(calls_dir: Path, index: CallIndex) -> None:
    done = finished(calls_dir, "done", NOW - 300, index)
    done.update(summary="Звонил Пётр", message={"name": "Пётр", "reason": None, "callback_number": None})
    new_record(calls_dir, "crashed", NOW - 200)  # no row: index lost, and in progress
    index.delete(["done"])  # index lost
    result = sweep(calls_dir, index, retention_days=0, now=NOW)
    assert result.recovered == ["crashed", "done"] and result.errors == []
    row = index.get("done")
    assert row is not None and row.to_header() == CallRecord.load(done.call_dir).header
    assert row.summary == "Звонил Пётр" and row.record_dir == str(done.call_dir)
    crashed = index.get("crashed")
    assert crashed is not None and crashed.outcome == "interrupted"


def test_row_left_in_progress_by_a_crash_after_the_final_write(calls_dir: Path, index: CallIndex) -> None:
    record = new_record(calls_dir, "c", NOW - 100, index)
    record.update(outcome="caller_hung_up", duration_s=12.0)  # the crash came before the index upsert
    assert recover_interrupted(calls_dir, index, now=NOW) == ["c"]
    row = index.get("c")
    assert row is not None and (row.outcome, row.duration_s) == ("caller_hung_up", 12.0)
    assert CallRecord.load(record.call_dir).header.outcome == "caller_hung_up"


def test_directory_without_transcript_is_left_alone_and_reported(calls_dir: Path, index: CallIndex) -> None:
    stray = calls_dir / "20241119T071320Z-ffffff"
    stray.mkdir()
    (stray / "caller.wav").write_bytes(b"RIFF....")
    result = sweep(calls_dir, index, retention_days=1, now=NOW)
    assert result.recovered == [] and result.deleted == []
    assert result.errors == ["20241119T071320Z-ffffff: no transcript.json; directory left alone"]
    assert files_under(stray) == {"caller.wav": b"RIFF...."}


def test_corrupt_transcript_is_reported_and_untouched(calls_dir: Path, index: CallIndex) -> None:
    record = new_record(calls_dir, "bad", NOW - 100, index)
    (record.call_dir / TRANSCRIPT_JSON).write_bytes(b'{"version": 1, "call')
    result = sweep(calls_dir, index, retention_days=0, now=NOW)
    assert (record.call_dir / TRANSCRIPT_JSON).read_bytes() == b'{"version": 1, "call'
    assert result.recovered == [] and len(result.errors) == 2
    assert "bad: " in result.errors[0] and "corrupt call record" in result.errors[0]
    assert result.errors[1] == "bad: record missing or unreadable; index row marked interrupted"
    row = index.get("bad")
    assert row is not None and row.outcome == "interrupted"
    assert sweep(calls_dir, index, retention_days=0, now=NOW).errors == []  # the row no longer asks for recovery


def test_in_progress_row_without_a_record_is_closed(calls_dir: Path, index: CallIndex) -> None:
    index.upsert(CallRecordHeader("gone", "+7", "anna", "ru", NOW - 100), calls_dir / "gone")
    index.upsert(CallRecordHeader("live", "+7", "anna", "ru", NOW - 5), calls_dir / "live")
    result = sweep(calls_dir, index, retention_days=0, now=NOW, live_call_ids=["live"])
    assert result.errors == ["gone: record missing or unreadable; index row marked interrupted"]
    assert [r.call_id for r in index.in_progress()] == ["live"]


def test_recovery_never_follows_a_symlink(calls_dir: Path, index: CallIndex, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    new_record(outside, "elsewhere", NOW - 100)
    before = files_under(outside)
    (calls_dir / "elsewhere").symlink_to(outside / "elsewhere", target_is_directory=True)
    assert recover_interrupted(calls_dir, index, now=NOW) == []
    assert files_under(outside) == before and index.get("elsewhere") is None


def test_recover_with_no_calls_dir(tmp_path: Path, index: CallIndex) -> None:
    assert recover_interrupted(tmp_path / "missing", index, now=NOW) == []
    assert sweep(tmp_path / "missing", index, retention_days=30, now=NOW) == SweepResult([], 0, [], [])


# ---------------------------------------------------------------- retention


def test_sweep_deletes_old_keeps_new_and_live(calls_dir: Path, index: CallIndex) -> None:
    old = finished(calls_dir, "old", NOW - 31 * DAY, index)
    (old.call_dir / "caller.wav").write_bytes(b"\0" * 1000)
    (old.call_dir / "sub").mkdir()
    (old.call_dir / "sub" / "x").write_bytes(b"\0" * 10)
    size = sum(len(b) for b in files_under(old.call_dir).values())
    finished(calls_dir, "new", NOW - 29 * DAY, index)
    old_live = new_record(calls_dir, "old-live", NOW - 40 * DAY, index)  # a very long call
    result = sweep(calls_dir, index, retention_days=30, now=NOW, live_call_ids={"old-live"})
    assert result == SweepResult(deleted=["old"], bytes_freed=size, recovered=[], errors=[])
    assert not old.call_dir.exists() and index.get("old") is None
    assert (calls_dir / "new").is_dir() and index.get("new") is not None
    assert (old_live.call_dir / TRANSCRIPT_JSON).exists() and index.get("old-live") is not None


def test_sweep_recovers_then_deletes_an_old_interrupted_record(calls_dir: Path, index: CallIndex) -> None:
    new_record(calls_dir, "ancient", NOW - 400 * DAY, index)
    result = sweep(calls_dir, index, retention_days=365, now=NOW)
    assert (result.recovered, result.deleted, result.errors) == (["ancient"], ["ancient"], [])
    assert not (calls_dir / "ancient").exists() and index.count() == 0


def test_zero_retention_keeps_everything(calls_dir: Path, index: CallIndex) -> None:
    finished(calls_dir, "ancient", NOW - 5000 * DAY, index)
    assert sweep(calls_dir, index, retention_days=0, now=NOW).deleted == []
    assert (calls_dir / "ancient").exists()
    with pytest.raises(ValueError):
        sweep(calls_dir, index, retention_days=-1, now=NOW)
    with pytest.raises(ValueError):
        sweep(calls_dir, index, retention_days=float("nan"), now=NOW)


def test_fractional_retention_days(calls_dir: Path, index: CallIndex) -> None:
    finished(calls_dir, "a", NOW - 13 * 3600, index)
    finished(calls_dir, "b", NOW - 11 * 3600, index)
    assert sweep(calls_dir, index, retention_days=0.5, now=NOW).deleted == ["a"]


def test_symlinked_record_dir_is_unlinked_not_followed(calls_dir: Path, index: CallIndex, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("do not delete")
    (calls_dir / "linked").symlink_to(outside, target_is_directory=True)
    stale = CallRecordHeader("linked", None, "anna", "en", NOW - 90 * DAY, outcome="declined")
    index.upsert(stale, calls_dir / "linked")
    result = sweep(calls_dir, index, retention_days=30, now=NOW)
    assert result.deleted == ["linked"] and result.bytes_freed == 0
    assert not os.path.lexists(calls_dir / "linked")
    assert (outside / "keep.txt").read_text() == "do not delete"


def test_symlinks_inside_a_record_are_removed_as_links(calls_dir: Path, index: CallIndex, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("do not delete")
    old = finished(calls_dir, "old", NOW - 90 * DAY, index)
    (old.call_dir / "to-dir").symlink_to(outside, target_is_directory=True)
    (old.call_dir / "to-file").symlink_to(outside / "keep.txt")
    assert sweep(calls_dir, index, retention_days=30, now=NOW).deleted == ["old"]
    assert not old.call_dir.exists() and files_under(outside) == {"keep.txt": b"do not delete"}


def test_rows_with_unsafe_ids_never_touch_the_disk(calls_dir: Path, index: CallIndex, tmp_path: Path) -> None:
    victim = calls_dir.parent / "evil"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    (calls_dir / "fake-file").write_text("a file, not a record dir")
    for call_id in ("../evil", "..", "fake-file"):
        stale = CallRecordHeader(call_id, None, "anna", "en", NOW - 90 * DAY, outcome="declined")
        index.upsert(stale, calls_dir / call_id)
    result = sweep(calls_dir, index, retention_days=30, now=NOW)
    assert sorted(result.deleted) == ["..", "../evil"]
    assert (victim / "keep.txt").read_text() == "x" and calls_dir.is_dir()
    assert (calls_dir / "fake-file").read_text() == "a file, not a record dir"
    assert any("fake-file" in e and "not a directory" in e for e in result.errors)
    assert index.get("fake-file") is not None  # kept for a human to look at


def test_a_failed_delete_keeps_the_row_for_next_time(
    calls_dir: Path, index: CallIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished(calls_dir, "stuck", NOW - 90 * DAY, index)
    finished(calls_dir, "fine", NOW - 91 * DAY, index)
    real_rmtree = shutil.rmtree

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).name == "stuck":
            raise PermissionError("read-only")
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    result = sweep(calls_dir, index, retention_days=30, now=NOW)
    assert result.deleted == ["fine"] and len(result.errors) == 1 and "stuck" in result.errors[0]
    assert index.get("stuck") is not None


# ---------------------------------------------------------------- run_retention


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_run_retention_sweeps_at_once_then_periodically(
    calls_dir: Path, index: CallIndex, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="secretary.calls")
    finished(calls_dir, "old", time.time() - 40 * DAY, index)
    new_record(calls_dir, "live-old", time.time() - 40 * DAY, index)
    task = asyncio.create_task(run_retention(calls_dir, index, 30, 3600, lambda: {"live-old"}))
    try:
        await eventually(lambda: not (calls_dir / "old").exists())  # first run: immediately
        assert (calls_dir / "live-old").exists()
        await eventually(lambda: any("deleted 1 old call record" in r.getMessage() for r in caplog.records))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def test_run_retention_survives_errors(
    calls_dir: Path, index: CallIndex, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def live() -> Collection[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("call flow not ready")
        return ()

    finished(calls_dir, "old", time.time() - 40 * DAY, index)
    task = asyncio.create_task(run_retention(calls_dir, index, 30, 0.05, live))
    try:
        await eventually(lambda: not (calls_dir / "old").exists())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failures = [r for r in caplog.records if r.name == "secretary.calls" and r.levelno == logging.ERROR]
    assert failures and failures[0].exc_info is not None and "call flow not ready" in str(failures[0].exc_info[1])


async def test_run_retention_cancel_waits_for_a_running_sweep(
    calls_dir: Path, index: CallIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    finished_sweeps: list[bool] = []

    def slow_sweep(*args: Any) -> SweepResult:
        started.set()
        release.wait(5)
        finished_sweeps.append(True)
        return SweepResult([], 0, [], [])

    monkeypatch.setattr(call_retention, "sweep", slow_sweep)
    task = asyncio.create_task(run_retention(calls_dir, index, 30, 3600, lambda: ()))
    await eventually(started.is_set)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the sweep to stop touching files
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert finished_sweeps == [True] and task.cancelled()


async def test_run_retention_refuses_a_bad_interval(calls_dir: Path, index: CallIndex) -> None:
    with pytest.raises(ValueError):
        await run_retention(calls_dir, index, 30, 0, lambda: ())



async def test_run_retention_tells_of_each_call_it_closed_as_interrupted_once(calls_dir: Path, index: CallIndex) -> None:
    # a crash left "crashed" in progress (record and row) and "orphan" only as a row: both were never announced
    new_record(calls_dir, "crashed", time.time() - 120, index, answered_at=time.time() - 115)
    finished(calls_dir, "done", time.time() - 300, index)
    orphan = CallRecordHeader("orphan", "+15550100", "anna", "en", time.time() - 200)
    index.upsert(orphan, calls_dir / "orphan")
    told: list[tuple[CallRecordHeader, ...]] = []
    task = asyncio.create_task(run_retention(calls_dir, index, 30, 0.05, lambda: (), on_interrupted=told.append))
    try:
        await eventually(lambda: len(told) >= 1)
        await asyncio.sleep(0.3)  # later sweeps find nothing new to tell
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [closed] = told
    assert sorted((h.call_id, h.outcome, h.end_reason) for h in closed) == [
        ("crashed", "interrupted", "daemon_stopped"), ("orphan", "interrupted", "daemon_stopped"),
    ]
    crashed = next(h for h in closed if h.call_id == "crashed")
    assert crashed == CallRecord.load(calls_dir / "crashed").header  # what is announced is what is recorded
