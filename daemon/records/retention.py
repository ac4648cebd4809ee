"""Call record upkeep: recover records left by a crash, re-index lost rows, delete old records.

``free_audio`` is the disk-space policy (``call.min_free_mb``): when the data
partition runs low, the oldest finished calls lose their audio first, their
transcripts stay and say so.

Safety rules: a live call (``live_call_ids``) is never touched; only direct
children of ``calls_dir`` whose name is a valid call id are ever read or
deleted; a symlink there is removed as a link and its target is never
followed; a directory without ``transcript.json`` is left alone and reported.
Callers must count a call as live from before its record is created until
its record is final, or recovery may mark it interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import stat
import time
import wave
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from daemon.records.call_index import CallIndex
from daemon.records.call_record import (
    IN_PROGRESS,
    INTERRUPTED,
    TRANSCRIPT_JSON,
    CallRecord,
    CallRecordHeader,
    CorruptRecordError,
    is_valid_call_id,
)
from drivers.audio.call_recorder import CALLER_WAV, SECRETARY_WAV, repair_call_dir

log = logging.getLogger("secretary.calls")

DAY_S = 86400.0
CRASH_END_REASON = "daemon_stopped"  # the end reason of a call the daemon died in (record, index and ``ended``)


@dataclass(frozen=True)
class SweepResult:
    deleted: list[str]  # call ids whose directory and index row were removed
    bytes_freed: int
    recovered: list[str]  # call ids marked interrupted and/or re-indexed
    errors: list[str]  # one human-readable line each; nothing here stops the sweep
    # the calls this sweep closed as interrupted, as now recorded: nobody announced their end yet
    interrupted: tuple[CallRecordHeader, ...] = field(default=(), compare=False)


# ---------------------------------------------------------------- directories


def _record_dirs(calls_dir: Path) -> Iterator[tuple[str, Path]]:
    """Real (non-symlink) directories directly under ``calls_dir`` named like a call id, sorted."""
    try:
        entries = sorted(os.scandir(calls_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if is_valid_call_id(entry.name) and entry.is_dir(follow_symlinks=False):
            yield entry.name, Path(entry.path)


def _tree_size(path: Path) -> int:
    total = 0
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                total += _tree_size(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_size
    return total


def _remove_record_dir(path: Path) -> int:
    """Remove one record directory (a symlink: only the link); returns the bytes freed."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(mode):
        os.unlink(path)
        return 0
    if not stat.S_ISDIR(mode):
        raise OSError(f"{path} is not a directory; left alone")
    size = _tree_size(path)
    shutil.rmtree(path)  # fd-based on Linux: never follows symlinks inside
    return size


# ---------------------------------------------------------------- recovery


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return 0.0


def _mark_interrupted(record: CallRecord, now: float, errors: list[str]) -> None:
    """Repair the WAV headers and close the record as ``interrupted``."""
    call_dir = record.call_dir
    try:
        repair_call_dir(call_dir)
    except (OSError, ValueError) as e:
        errors.append(f"{call_dir.name}: could not repair audio: {e}")
    h = record.header
    audio_s = max(_wav_seconds(call_dir / CALLER_WAV), _wav_seconds(call_dir / SECRETARY_WAV))
    speech_s = max([u.end_s for u in record.utterances] + [float(d["at_s"]) for d in h.dtmf], default=0.0)
    duration = h.duration_s if h.duration_s is not None else max(audio_s, speech_s, 0.0)
    base = h.answered_at if h.answered_at is not None else h.started_at
    ended = h.ended_at if h.ended_at is not None else max(h.started_at, min(base + duration, now))
    record.update(outcome=INTERRUPTED, duration_s=duration, ended_at=ended, end_reason=h.end_reason or CRASH_END_REASON)


def _recover_dir(
    call_dir: Path, index: CallIndex, now: float, errors: list[str], closed: list[CallRecordHeader]
) -> bool:
    """Bring one record and its index row up to date; True if anything changed."""
    row = index.get(call_dir.name)
    if row is not None and row.outcome != IN_PROGRESS:
        return False
    if not (call_dir / TRANSCRIPT_JSON).exists():
        errors.append(f"{call_dir.name}: no {TRANSCRIPT_JSON}; directory left alone")
        return False
    record = CallRecord.load(call_dir)
    changed = row is None or row.outcome != record.header.outcome
    if record.header.outcome == IN_PROGRESS:
        _mark_interrupted(record, now, errors)
        closed.append(record.header.copy())
        changed = True
    if changed:
        index.upsert(record.header, call_dir)
    return changed


def _close_orphan_rows(
    index: CallIndex, live: Collection[str], errors: list[str], closed: list[CallRecordHeader]
) -> None:
    """Index rows still in progress whose record could not be recovered: mark them interrupted."""
    for row in index.in_progress():
        if row.call_id in live:
            continue
        header = row.to_header()
        header.outcome = INTERRUPTED
        header.end_reason = header.end_reason or CRASH_END_REASON
        index.upsert(header, Path(row.record_dir))
        closed.append(header)
        errors.append(f"{row.call_id}: record missing or unreadable; index row marked {INTERRUPTED}")


def _recover(
    calls_dir: Path, index: CallIndex, now: float, live: Collection[str]
) -> tuple[list[str], list[str], tuple[CallRecordHeader, ...]]:
    recovered: list[str] = []
    errors: list[str] = []
    closed: list[CallRecordHeader] = []
    for call_id, call_dir in _record_dirs(calls_dir):
        if call_id in live:
            continue
        try:
            if _recover_dir(call_dir, index, now, errors, closed):
                recovered.append(call_id)
        except (OSError, CorruptRecordError) as e:
            errors.append(f"{call_id}: {e}")
    _close_orphan_rows(index, live, errors, closed)
    return recovered, errors, tuple(closed)


def recover_interrupted(
    calls_dir: Path, index: CallIndex, now: float, live_call_ids: Collection[str] = ()
) -> list[str]:
    """Close records a crash left ``in_progress`` and re-index directories without a row.

    For each non-live record in progress: repair its WAV headers, set outcome
    ``interrupted`` with ``ended_at``/``duration_s`` from the audio length or
    the last utterance, rewrite its transcript files and upsert its row.
    Returns the call ids changed; problems are logged (``sweep`` returns them).
    """
    recovered, errors, _ = _recover(Path(calls_dir), index, now, frozenset(live_call_ids))
    for error in errors:
        log.warning("call record: %s", error)
    return recovered


# ---------------------------------------------------------------- retention


def _delete_old(
    calls_dir: Path, index: CallIndex, cutoff: float, live: Collection[str], errors: list[str]
) -> tuple[list[str], int]:
    deleted: list[str] = []
    freed = 0
    for row in index.older_than(cutoff):
        if row.call_id in live:
            continue
        if not is_valid_call_id(row.call_id):
            errors.append(f"{row.call_id!r}: not a valid call id; index row dropped, nothing on disk touched")
        else:
            try:
                freed += _remove_record_dir(calls_dir / row.call_id)
            except OSError as e:
                errors.append(f"{row.call_id}: could not delete: {e}")
                continue
        deleted.append(row.call_id)
    index.delete(deleted)
    return deleted, freed


def sweep(
    calls_dir: Path,
    index: CallIndex,
    retention_days: float,
    now: float,
    live_call_ids: Collection[str] = (),
) -> SweepResult:
    """Recover interrupted records, then delete records that started before ``now - retention_days``.

    ``retention_days`` 0 keeps everything. Live calls are never touched.
    Blocking: run it in a worker thread.
    """
    if not math.isfinite(retention_days) or retention_days < 0:
        raise ValueError(f"retention_days must be >= 0, got {retention_days!r}")
    calls_dir = Path(calls_dir)
    live = frozenset(live_call_ids)
    recovered, errors, closed = _recover(calls_dir, index, now, live)
    deleted: list[str] = []
    freed = 0
    if retention_days > 0:
        deleted, freed = _delete_old(calls_dir, index, now - retention_days * DAY_S, live, errors)
    return SweepResult(deleted=deleted, bytes_freed=freed, recovered=recovered, errors=errors, interrupted=closed)


# ---------------------------------------------------------------- free space by policy


@dataclass(frozen=True)
class AudioFreed:
    calls: list[str]  # call ids whose audio tracks were deleted (their transcripts kept)
    bytes_freed: int
    free_bytes: int  # free space on the calls' file system afterwards
    errors: list[str]


def free_bytes(path: Path) -> int:
    """Free space for an unprivileged writer on ``path``'s file system (its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _delete_audio(call_dir: Path, reason: str) -> int:
    """Delete one finished record's WAV tracks and say so in its ``recording``; returns the bytes freed."""
    record = CallRecord.load(call_dir)
    if record.header.outcome == IN_PROGRESS:
        return 0  # a crash's leftover: recovery closes it first
    freed = 0
    for name in (CALLER_WAV, SECRETARY_WAV):
        path = call_dir / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            freed += st.st_blocks * 512  # what the file takes on disk (holes take nothing)
        os.unlink(path)  # a symlink goes as a link, never followed
    recording = dict(record.header.recording or {"complete": True, "lost_s": 0.0, "reason": None, "gaps": []})
    recording["audio_deleted"] = reason
    record.update(recording=recording)
    return freed


def free_audio(calls_dir: Path, min_free_bytes: int, live_call_ids: Collection[str] = ()) -> AudioFreed:
    """While less than ``min_free_bytes`` is free, delete the oldest finished calls' audio; transcripts stay.

    Oldest first by call id (ids start with their UTC start time); a live call
    and a record still ``in_progress`` are never touched. Each record whose
    audio went says so (``recording.audio_deleted``). Blocking: run it in a
    worker thread.
    """
    calls_dir = Path(calls_dir)
    live = frozenset(live_call_ids)
    deleted: list[str] = []
    freed = 0
    errors: list[str] = []
    free = free_bytes(calls_dir)
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    reason = f"deleted on {when} UTC to keep {min_free_bytes / 2**20:g} MB free (call.min_free_mb)"
    for call_id, call_dir in _record_dirs(calls_dir):
        if free >= min_free_bytes:
            break
        if call_id in live or not ((call_dir / CALLER_WAV).exists() or (call_dir / SECRETARY_WAV).exists()):
            continue
        if not (call_dir / TRANSCRIPT_JSON).exists():
            errors.append(f"{call_id}: no {TRANSCRIPT_JSON}; audio left alone")
            continue
        try:
            got = _delete_audio(call_dir, reason)
        except (OSError, CorruptRecordError) as e:
            errors.append(f"{call_id}: could not delete its audio: {e}")
            continue
        if got or not (call_dir / CALLER_WAV).exists():
            deleted.append(call_id)
            freed += got
        free = free_bytes(calls_dir)
    return AudioFreed(calls=deleted, bytes_freed=freed, free_bytes=free, errors=errors)


def _log_result(result: SweepResult) -> None:
    if result.recovered:
        log.info("call records recovered or re-indexed: %s", ", ".join(result.recovered))
    if result.deleted:
        log.info("deleted %d old call record(s), %d bytes freed", len(result.deleted), result.bytes_freed)
    for error in result.errors:
        log.warning("call record: %s", error)
    if not (result.recovered or result.deleted or result.errors):
        log.debug("call retention: nothing to do")


async def _sweep_in_thread(
    calls_dir: Path, index: CallIndex, retention_days: float, live: frozenset[str]
) -> SweepResult:
    """Run :func:`sweep` off the loop; on cancellation wait for it to stop touching files, then re-raise."""
    task = asyncio.ensure_future(asyncio.to_thread(sweep, calls_dir, index, retention_days, time.time(), live))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the loop must not warn about it
        raise


async def run_retention(
    calls_dir: Path,
    index: CallIndex,
    retention_days: float,
    interval_s: float,
    live_call_ids: Callable[[], Collection[str]],
    on_interrupted: Callable[[tuple[CallRecordHeader, ...]], None] | None = None,
) -> None:
    """Forever: recover + sweep now and then every ``interval_s``; errors are logged and survived.

    ``on_interrupted`` hears, on the loop, of every call a sweep closed as interrupted (to announce its end).
    """
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    while True:
        try:
            live = frozenset(live_call_ids())
            result = await _sweep_in_thread(Path(calls_dir), index, retention_days, live)
            _log_result(result)
            if on_interrupted is not None and result.interrupted:
                on_interrupted(result.interrupted)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call retention sweep failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
