"""Call record upkeep: recover records left by a crash, re-index lost rows, delete old records.

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
from dataclasses import dataclass
from pathlib import Path

from daemon.records.call_index import CallIndex
from daemon.records.call_record import (
    IN_PROGRESS,
    INTERRUPTED,
    TRANSCRIPT_JSON,
    CallRecord,
    CorruptRecordError,
    is_valid_call_id,
)
from drivers.audio.call_recorder import CALLER_WAV, SECRETARY_WAV, repair_call_dir

log = logging.getLogger("secretary.calls")

DAY_S = 86400.0
CRASH_END_REASON = "daemon stopped mid-call"


@dataclass(frozen=True)
class SweepResult:
    deleted: list[str]  # call ids whose directory and index row were removed
    bytes_freed: int
    recovered: list[str]  # call ids marked interrupted and/or re-indexed
    errors: list[str]  # one human-readable line each; nothing here stops the sweep


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


def _recover_dir(call_dir: Path, index: CallIndex, now: float, errors: list[str]) -> bool:
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
        changed = True
    if changed:
        index.upsert(record.header, call_dir)
    return changed


def _close_orphan_rows(index: CallIndex, live: Collection[str], errors: list[str]) -> None:
    """Index rows still in progress whose record could not be recovered: mark them interrupted."""
    for row in index.in_progress():
        if row.call_id in live:
            continue
        header = row.to_header()
        header.outcome = INTERRUPTED
        header.end_reason = header.end_reason or CRASH_END_REASON
        index.upsert(header, Path(row.record_dir))
        errors.append(f"{row.call_id}: record missing or unreadable; index row marked {INTERRUPTED}")


def _recover(calls_dir: Path, index: CallIndex, now: float, live: Collection[str]) -> tuple[list[str], list[str]]:
    recovered: list[str] = []
    errors: list[str] = []
    for call_id, call_dir in _record_dirs(calls_dir):
        if call_id in live:
            continue
        try:
            if _recover_dir(call_dir, index, now, errors):
                recovered.append(call_id)
        except (OSError, CorruptRecordError) as e:
            errors.append(f"{call_id}: {e}")
    _close_orphan_rows(index, live, errors)
    return recovered, errors


def recover_interrupted(
    calls_dir: Path, index: CallIndex, now: float, live_call_ids: Collection[str] = ()
) -> list[str]:
    """Close records a crash left ``in_progress`` and re-index directories without a row.

    For each non-live record in progress: repair its WAV headers, set outcome
    ``interrupted`` with ``ended_at``/``duration_s`` from the audio length or
    the last utterance, rewrite its transcript files and upsert its row.
    Returns the call ids changed; problems are logged (``sweep`` returns them).
    """
    recovered, errors = _recover(Path(calls_dir), index, now, frozenset(live_call_ids))
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
    recovered, errors = _recover(calls_dir, index, now, live)
    deleted: list[str] = []
    freed = 0
    if retention_days > 0:
        deleted, freed = _delete_old(calls_dir, index, now - retention_days * DAY_S, live, errors)
    return SweepResult(deleted=deleted, bytes_freed=freed, recovered=recovered, errors=errors)


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
) -> None:
    """Forever: recover + sweep now and then every ``interval_s``; errors are logged and survived."""
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    while True:
        try:
            live = frozenset(live_call_ids())
            _log_result(await _sweep_in_thread(Path(calls_dir), index, retention_days, live))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call retention sweep failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
