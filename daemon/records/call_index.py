"""The call index: one SQLite table at ``data_dir/secretary.db`` listing every call record.

The record directories are the truth; this index makes history pages,
per-caller lookups and retention cheap, and can be rebuilt from the
directories (``call_retention.recover_interrupted`` re-indexes any directory
without a row).

One connection, WAL mode. The sync methods are safe from any thread (one
lock). The async methods run them on one dedicated worker thread, so the event
loop never blocks and operations run in the order they were awaited; an
operation still completes when the awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from daemon.records.call_record import IN_PROGRESS, CallRecordHeader

T = TypeVar("T")
MAX_SQLITE_INT = 2**63 - 1  # the largest INTEGER SQLite stores

_DELETE_CHUNK: Final = 500
_COLUMNS: Final = (
    "call_id, caller, persona, language, started_at, answered_at, ended_at, duration_s,"
    " outcome, end_reason, summary, message, record_dir"
)


class IndexVersionError(RuntimeError):
    """The database was written by a newer build (its schema version is unknown here)."""


@dataclass(frozen=True)
class CallSummaryRow:
    call_id: str
    caller: str | None
    persona: str
    language: str
    started_at: float  # unix seconds
    duration_s: float | None
    outcome: str
    summary: str | None
    message: dict[str, str | None]
    record_dir: str
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None

    def to_header(self) -> CallRecordHeader:
        """The header this row was made from (without DTMF, which the index does not keep)."""
        return CallRecordHeader(
            call_id=self.call_id, caller=self.caller, persona=self.persona, language=self.language,
            started_at=self.started_at, answered_at=self.answered_at, ended_at=self.ended_at,
            duration_s=self.duration_s, outcome=self.outcome, end_reason=self.end_reason,
            message=dict(self.message), summary=self.summary,
        )


# ---------------------------------------------------------------- schema and migrations


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE calls (
            call_id     TEXT PRIMARY KEY,
            caller      TEXT,
            persona     TEXT NOT NULL,
            language    TEXT NOT NULL,
            started_at  REAL NOT NULL,
            answered_at REAL,
            ended_at    REAL,
            duration_s  REAL,
            outcome     TEXT NOT NULL,
            end_reason  TEXT,
            summary     TEXT,
            message     TEXT NOT NULL DEFAULT '{}',
            record_dir  TEXT NOT NULL,
            updated_at  REAL NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX calls_by_started ON calls (started_at)")
    conn.execute("CREATE INDEX calls_by_caller ON calls (caller, started_at)")
    conn.execute("CREATE INDEX calls_in_progress ON calls (outcome) WHERE outcome = 'in_progress'")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_1]
"""``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``; append, never edit."""


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Callable[[sqlite3.Connection], None]] | None = None) -> int:
    """Bring the schema up to date, one transaction per step; returns the new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    steps = MIGRATIONS if migrations is None else migrations
    version = schema_version(conn)
    if version > len(steps):
        raise IndexVersionError(f"call index schema version {version} is newer than this build's {len(steps)}")
    for target in range(version + 1, len(steps) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            steps[target - 1](conn)
            conn.execute(f"PRAGMA user_version = {target:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return schema_version(conn)


# ---------------------------------------------------------------- rows


def _row(values: sqlite3.Row) -> CallSummaryRow:
    try:
        message = json.loads(values["message"] or "{}")
    except json.JSONDecodeError:
        message = {}
    return CallSummaryRow(
        call_id=values["call_id"], caller=values["caller"], persona=values["persona"],
        language=values["language"], started_at=values["started_at"], duration_s=values["duration_s"],
        outcome=values["outcome"], summary=values["summary"],
        message=message if isinstance(message, dict) else {}, record_dir=values["record_dir"],
        answered_at=values["answered_at"], ended_at=values["ended_at"], end_reason=values["end_reason"],
    )


def _upsert_params(header: CallRecordHeader, record_dir: Path) -> dict[str, Any]:
    return {
        "call_id": header.call_id, "caller": header.caller, "persona": header.persona,
        "language": header.language, "started_at": header.started_at, "answered_at": header.answered_at,
        "ended_at": header.ended_at, "duration_s": header.duration_s, "outcome": header.outcome,
        "end_reason": header.end_reason, "summary": header.summary,
        "message": json.dumps(header.message, ensure_ascii=False), "record_dir": str(record_dir),
        "updated_at": time.time(),
    }


_UPSERT: Final = f"""
    INSERT INTO calls ({_COLUMNS}, updated_at)
    VALUES (:call_id, :caller, :persona, :language, :started_at, :answered_at, :ended_at, :duration_s,
            :outcome, :end_reason, :summary, :message, :record_dir, :updated_at)
    ON CONFLICT (call_id) DO UPDATE SET
        caller = excluded.caller, persona = excluded.persona, language = excluded.language,
        started_at = excluded.started_at, answered_at = excluded.answered_at, ended_at = excluded.ended_at,
        duration_s = excluded.duration_s, outcome = excluded.outcome, end_reason = excluded.end_reason,
        summary = excluded.summary, message = excluded.message, record_dir = excluded.record_dir,
        updated_at = excluded.updated_at
"""


# ---------------------------------------------------------------- the index


@dataclass
class _Worker:
    executor: ThreadPoolExecutor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    def get(self) -> ThreadPoolExecutor:
        with self.lock:
            if self.closed:
                raise RuntimeError("the call index is closed")
            if self.executor is None:
                self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-index")
            return self.executor

    def shutdown(self) -> None:
        with self.lock:
            executor, self.executor, self.closed = self.executor, None, True
        if executor is not None:
            executor.shutdown(wait=True)


class CallIndex:
    """The SQLite call index (see module doc)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._worker = _Worker()
        self._conn: sqlite3.Connection | None = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Finish queued async operations and close the connection (idempotent)."""
        self._worker.shutdown()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> CallIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._with_conn(schema_version)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the call index is closed")
            return fn(self._conn)

    # ------------------------------------------------------------ sync API

    def upsert(self, header: CallRecordHeader, record_dir: Path) -> None:
        """Insert the call or replace its row with the header's current values."""
        params = _upsert_params(header, record_dir)
        self._with_conn(lambda c: c.execute(_UPSERT, params))

    def get(self, call_id: str) -> CallSummaryRow | None:
        rows = self._select("WHERE call_id = ?", (call_id,))
        return rows[0] if rows else None

    def recent(self, limit: int = 50, offset: int = 0, caller: str | None = None) -> list[CallSummaryRow]:
        """Newest first; ``caller`` filters by the exact (normalized) number."""
        _check_window(limit, offset)
        where = "" if caller is None else "WHERE caller = ?"
        args: tuple[object, ...] = () if caller is None else (caller,)
        return self._select(f"{where} ORDER BY started_at DESC, call_id DESC LIMIT ? OFFSET ?", (*args, limit, offset))

    def search(
        self, number: str | None = None, since: float | None = None, until: float | None = None,
        limit: int = 50, offset: int = 0,
    ) -> tuple[list[CallSummaryRow], int]:
        """Newest first, filtered by part of the caller's number and a start-time range; also the total match count."""
        _check_window(limit, offset)
        clauses: list[str] = []
        args: list[object] = []
        if number:
            escaped = number.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("caller LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        if since is not None:
            clauses.append("started_at >= ?")
            args.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            args.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        def run(conn: sqlite3.Connection) -> tuple[list[CallSummaryRow], int]:
            total = int(conn.execute(f"SELECT count(*) FROM calls {where}", args).fetchone()[0])
            sql = f"SELECT {_COLUMNS} FROM calls {where} ORDER BY started_at DESC, call_id DESC LIMIT ? OFFSET ?"
            return [_row(r) for r in conn.execute(sql, [*args, limit, offset]).fetchall()], total

        return self._with_conn(run)

    def older_than(self, cutoff_ts: float) -> list[CallSummaryRow]:
        """Calls that started before ``cutoff_ts``, oldest first."""
        return self._select("WHERE started_at < ? ORDER BY started_at, call_id", (cutoff_ts,))

    def in_progress(self) -> list[CallSummaryRow]:
        return self._select("WHERE outcome = ? ORDER BY started_at, call_id", (IN_PROGRESS,))

    def delete(self, call_ids: Sequence[str]) -> int:
        """Delete these rows (unknown ids are ignored); returns how many were deleted."""
        ids = list(dict.fromkeys(call_ids))
        return self._with_conn(lambda c: _delete_ids(c, ids))

    def count(self) -> int:
        return int(self._with_conn(lambda c: c.execute("SELECT count(*) FROM calls").fetchone()[0]))

    def _select(self, tail: str, args: tuple[object, ...]) -> list[CallSummaryRow]:
        sql = f"SELECT {_COLUMNS} FROM calls {tail}"
        return self._with_conn(lambda c: [_row(r) for r in c.execute(sql, args).fetchall()])

    # ------------------------------------------------------------ async API

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._worker.get(), functools.partial(fn, *args))
        return await asyncio.shield(future)

    async def aupsert(self, header: CallRecordHeader, record_dir: Path) -> None:
        await self._run(self.upsert, header.copy(), record_dir)

    async def aget(self, call_id: str) -> CallSummaryRow | None:
        return await self._run(self.get, call_id)

    async def arecent(self, limit: int = 50, offset: int = 0, caller: str | None = None) -> list[CallSummaryRow]:
        return await self._run(self.recent, limit, offset, caller)

    async def asearch(
        self, number: str | None = None, since: float | None = None, until: float | None = None,
        limit: int = 50, offset: int = 0,
    ) -> tuple[list[CallSummaryRow], int]:
        return await self._run(self.search, number, since, until, limit, offset)

    async def aolder_than(self, cutoff_ts: float) -> list[CallSummaryRow]:
        return await self._run(self.older_than, cutoff_ts)

    async def ain_progress(self) -> list[CallSummaryRow]:
        return await self._run(self.in_progress)

    async def adelete(self, call_ids: Sequence[str]) -> int:
        return await self._run(self.delete, list(call_ids))


def _check_window(limit: int, offset: int) -> None:
    """ValueError for a LIMIT/OFFSET SQLite cannot take (it would raise OverflowError past 2**63 - 1)."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    if limit > MAX_SQLITE_INT or offset > MAX_SQLITE_INT:
        raise ValueError(f"limit and offset must be at most {MAX_SQLITE_INT}")


def _delete_ids(conn: sqlite3.Connection, ids: list[str]) -> int:
    deleted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start : start + _DELETE_CHUNK]
            marks = ",".join("?" * len(chunk))
            deleted += conn.execute(f"DELETE FROM calls WHERE call_id IN ({marks})", chunk).rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return deleted
