"""Recording as a side job: records and writes on a real full disk, the recorder's state, space freed by policy."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.records.call_index import CallIndex
from daemon.records.call_record import IN_PROGRESS, TRANSCRIPT_JSON, CallRecord, CallRecordHeader, Utterance
from daemon.records.recorder_service import RecorderService, RecordingWatch
from daemon.records.retention import free_audio
from daemon.runtime.service import ServiceReport, ServiceState, ServiceStatus
from drivers.audio.call_recorder import CALLER_WAV, SECRETARY_WAV, CallRecorder
from tests.support.small_disk import fill, free_bytes, small_tmpfs

MB = 2**20


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "calls", "1m") as mounted:
        yield mounted


def header(call_id: str, started_at: float = 1_732_000_000.0) -> CallRecordHeader:
    return CallRecordHeader(call_id, "+79161234567", "anna", "en", started_at)


class States:
    """A ServiceStatus whose changes are kept, as the supervisor would publish them."""

    def __init__(self) -> None:
        self.report = ServiceReport("recorder", ServiceState.STARTING)
        self.seen: list[tuple[ServiceState, str]] = []
        self.status = ServiceStatus(self.report, lambda r: self.seen.append((r.state, r.detail)))

    async def until(self, state: ServiceState, timeout: float = 10.0) -> str:
        async with asyncio.timeout(timeout):
            while self.report.state is not state:
                await asyncio.sleep(0.02)
        return self.report.detail


# ---------------------------------------------------------------- the record on a full disk


def test_a_record_started_on_a_full_disk_is_kept_in_memory_and_written_when_space_returns(disk: Path) -> None:
    filler = fill(disk)
    record = CallRecord(disk / "20261207T010000Z-aaaaaa", header("20261207T010000Z-aaaaaa"), write_later=True)
    assert isinstance(record.unwritten, OSError)
    with pytest.raises(OSError):
        record.add_utterance(Utterance("secretary", "Hello, you've reached Anna.", 0.0, 1.5))
    assert not list(disk.rglob("*.tmp")), "a failed write left its temp file"
    os.unlink(filler)
    record.update(outcome="message_taken")
    assert record.unwritten is None
    saved = json.loads((record.call_dir / TRANSCRIPT_JSON).read_text())
    assert saved["outcome"] == "message_taken" and saved["utterances"][0]["text"] == "Hello, you've reached Anna."


def test_a_record_without_write_later_still_raises(disk: Path) -> None:
    fill(disk)
    with pytest.raises(OSError):
        CallRecord(disk / "20261207T010000Z-bbbbbb", header("20261207T010000Z-bbbbbb"))


def test_the_recording_summary_round_trips_and_is_checked(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / "c1", header("c1"))
    summary = {"complete": False, "lost_s": 4.2, "reason": "disk full writing caller.wav", "gaps": [[1.0, 5.2]]}
    record.update(recording=summary)
    assert CallRecord.load(tmp_path / "c1").header.recording == summary
    assert "Audio:    incomplete (disk full writing caller.wav, 4.2 s lost)" in record.txt_path.read_text()
    with pytest.raises(TypeError, match="unknown keys"):
        record.update(recording={"complete": True, "whatever": 1})


# ---------------------------------------------------------------- the recorder service


async def test_the_recorder_is_degraded_while_a_call_cannot_record_and_ok_when_space_returns(disk: Path) -> None:
    watch = RecordingWatch()
    service = RecorderService(watch, disk, min_free_mb=0, check_every_s=0.1)
    states = States()
    running = asyncio.create_task(service.run(states.status))
    try:
        assert "MB free in" in await states.until(ServiceState.RUNNING)
        recorder = watch.recorder("20261207T010000Z-cccccc", disk / "20261207T010000Z-cccccc")
        filler = fill(disk)
        for _ in range(100):
            recorder.write_caller(np.ones(160, np.int16))
            recorder.write_secretary(np.ones(160, np.int16))
        detail = await states.until(ServiceState.DEGRADED)
        assert "recording stopped on 1 live call(s): disk full writing" in detail and "calls go on" in detail
        os.unlink(filler)
        for _ in range(150):
            recorder.write_caller(np.ones(160, np.int16))
            recorder.write_secretary(np.ones(160, np.int16))
        await states.until(ServiceState.RUNNING)
        await recorder.aclose()
        assert watch.live_call_ids() == set()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_record_writes_the_disk_refused_are_retried_until_they_succeed(disk: Path, tmp_path: Path) -> None:
    watch = RecordingWatch()
    index = CallIndex(tmp_path / "secretary.db")
    call_id = "20261207T010000Z-dddddd"
    record = CallRecord(disk / call_id, header(call_id), write_later=True)
    index.upsert(record.header, record.call_dir)
    filler = fill(disk)
    service = RecorderService(watch, disk, min_free_mb=0, check_every_s=0.1)
    states = States()
    running = asyncio.create_task(service.run(states.status))
    try:
        record.note(outcome="message_taken", end_reason="caller_hung_up", recording={"complete": False})
        assert not await watch.keep(call_id, "record", record.aflush)
        assert await watch.keep(call_id, "index", lambda: index.aupsert(record.header, record.call_dir))
        assert "1 call record write(s) waiting for disk space" in await states.until(ServiceState.DEGRADED)
        assert json.loads((disk / call_id / TRANSCRIPT_JSON).read_text())["outcome"] == IN_PROGRESS
        os.unlink(filler)
        await states.until(ServiceState.RUNNING)
        saved = json.loads((disk / call_id / TRANSCRIPT_JSON).read_text())
        assert saved["outcome"] == "message_taken" and saved["recording"] == {"complete": False}
        assert index.get(call_id).outcome == "message_taken"  # type: ignore[union-attr]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        index.close()


# ---------------------------------------------------------------- freeing space by policy


def finished_call(calls: Path, call_id: str, seconds: float, outcome: str = "message_taken") -> Path:
    record = CallRecord(calls / call_id, header(call_id))
    with CallRecorder(calls / call_id) as recorder:
        recorder.write_caller(np.full(int(seconds * 8000), 1000, np.int16))
        recorder.write_secretary(np.full(int(seconds * 8000), -1000, np.int16))
    record.update(outcome=outcome, recording={"complete": True, "lost_s": 0.0, "reason": None, "gaps": []})
    return calls / call_id


def test_free_audio_deletes_the_oldest_calls_audio_first_and_keeps_every_transcript(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "calls", "2m") as calls:
        oldest = finished_call(calls, "20261201T080000Z-aaaaaa", 8.0)  # 2 x 128 KB
        middle = finished_call(calls, "20261202T080000Z-bbbbbb", 8.0)
        newest = finished_call(calls, "20261203T080000Z-cccccc", 8.0)
        live = finished_call(calls, "20261130T080000Z-dddddd", 8.0)  # the oldest id, but live
        crashed = finished_call(calls, "20261129T080000Z-eeeeee", 8.0, outcome=IN_PROGRESS)
        want = free_bytes(calls) + 300 * 1024  # about one call's audio more than now
        result = free_audio(calls, want, live_call_ids={live.name})
        assert result.calls == [oldest.name, middle.name]
        assert result.free_bytes >= want and result.bytes_freed >= 2 * 256 * 1024
        for gone in (oldest, middle):
            assert not (gone / CALLER_WAV).exists() and not (gone / SECRETARY_WAV).exists()
            saved = json.loads((gone / TRANSCRIPT_JSON).read_text())
            assert saved["outcome"] == "message_taken" and "call.min_free_mb" in saved["recording"]["audio_deleted"]
            assert "Audio:    deleted" in (gone / "transcript.txt").read_text()
        for kept in (newest, live, crashed):
            assert (kept / CALLER_WAV).exists() and (kept / SECRETARY_WAV).exists()


async def test_the_recorder_frees_space_by_policy_and_reports_low_space_it_cannot_free(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "calls", "2m") as calls:
        old = finished_call(calls, "20261201T080000Z-aaaaaa", 8.0)
        fill(calls, "keep-out")  # not a call record: never touched
        service = RecorderService(RecordingWatch(), calls, min_free_mb=0.2, check_every_s=0.1)
        states = States()
        running = asyncio.create_task(service.run(states.status))
        try:
            await states.until(ServiceState.RUNNING)
            assert not (old / CALLER_WAV).exists() and (old / TRANSCRIPT_JSON).exists()
            assert free_bytes(calls) >= 0.2 * MB
            fill(calls, "more")
            detail = await states.until(ServiceState.DEGRADED)
            assert "low disk space" in detail and "call.min_free_mb 0.2 MB" in detail
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
