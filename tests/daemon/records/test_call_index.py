"""CallIndex: the SQLite call index (schema, migrations, queries, async facade)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.records import call_index
from daemon.records.call_index import MIGRATIONS, CallIndex, CallSummaryRow, IndexVersionError, migrate, schema_version
from daemon.records.call_record import CallRecordHeader

T0 = 1_732_000_000.0


def header(call_id: str, started_at: float = T0, **overrides: Any) -> CallRecordHeader:
    values: dict[str, Any] = {
        "call_id": call_id, "caller": "+79161234567", "persona": "anna", "language": "ru", "started_at": started_at,
    }
    values.update(overrides)
    return CallRecordHeader(**values)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CallIndex]:
    idx = CallIndex(tmp_path / "data" / "secretary.db")
    yield idx
    idx.close()


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A second, plain connection (closed afterwards)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# ---------------------------------------------------------------- schema


def test_fresh_database_has_schema_wal_and_indexes(index: CallIndex) -> None:
    assert index.db_path.exists() and index.schema_version == len(MIGRATIONS) == 1
    with raw(index.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"calls_by_started", "calls_by_caller", "calls_in_progress"} <= names
        by_caller = " ".join(
            r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM calls WHERE caller = ? ORDER BY started_at DESC", ("x",)
            )
        )
        assert "calls_by_caller" in by_caller
        by_age = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM calls WHERE started_at < 5"))
        assert "calls_by_started" in by_age


def test_migration_from_an_empty_database_file(tmp_path: Path) -> None:
    db = tmp_path / "secretary.db"
    db.write_bytes(b"")  # e.g. created by a tool that crashed
    with CallIndex(db) as idx:
        idx.upsert(header("a"), tmp_path / "a")
        assert idx.schema_version == 1 and idx.count() == 1
    with CallIndex(db) as idx:  # reopening migrates nothing and keeps the data
        assert idx.get("a") is not None


def test_migrations_run_in_order_once_and_keep_rows(tmp_path: Path) -> None:
    db = tmp_path / "secretary.db"
    with CallIndex(db) as idx:
        idx.upsert(header("old"), tmp_path / "old")

    def add_rating(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE calls ADD COLUMN rating INTEGER NOT NULL DEFAULT 0")

    steps = [*MIGRATIONS, add_rating]
    with raw(db) as conn:
        assert migrate(conn, steps) == 2
        assert migrate(conn, steps) == 2  # idempotent
        assert conn.execute("SELECT call_id, rating FROM calls").fetchall() == [("old", 0)]


def test_a_failing_migration_rolls_back(tmp_path: Path) -> None:
    db = tmp_path / "secretary.db"
    CallIndex(db).close()

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE calls ADD COLUMN rating INTEGER")
        raise RuntimeError("step failed")

    with raw(db) as conn:
        with pytest.raises(RuntimeError, match="step failed"):
            migrate(conn, [*MIGRATIONS, half_done])
        assert schema_version(conn) == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(calls)")]
        assert "rating" not in columns


def test_a_database_from_a_newer_build_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "secretary.db"
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(IndexVersionError, match="7"):
        CallIndex(db)


# ---------------------------------------------------------------- rows


def test_upsert_then_update_then_get(index: CallIndex, tmp_path: Path) -> None:
    h = header("c1")
    index.upsert(h, tmp_path / "calls" / "c1")
    row = index.get("c1")
    assert row == CallSummaryRow(
        call_id="c1", caller="+79161234567", persona="anna", language="ru", started_at=T0, duration_s=None,
        outcome="in_progress", summary=None, message={}, record_dir=str(tmp_path / "calls" / "c1"),
    )
    h.outcome, h.summary, h.duration_s = "message_taken", "Перезвонить Петру", 42.5
    h.answered_at, h.ended_at, h.end_reason = T0 + 7, T0 + 50, "caller hung up"
    h.message = {"name": "Пётр", "reason": "счёт", "callback_number": None}
    index.upsert(h, tmp_path / "calls" / "c1")
    row = index.get("c1")
    assert row is not None and index.count() == 1
    assert (row.outcome, row.summary, row.duration_s) == ("message_taken", "Перезвонить Петру", 42.5)
    assert row.message == {"name": "Пётр", "reason": "счёт", "callback_number": None}
    assert (row.answered_at, row.ended_at, row.end_reason) == (T0 + 7, T0 + 50, "caller hung up")
    assert row.to_header() == h
    assert index.get("nope") is None


def test_recent_is_newest_first_with_pagination_and_caller_filter(index: CallIndex, tmp_path: Path) -> None:
    for i in range(25):
        caller = "+7001" if i % 3 == 0 else None if i % 3 == 1 else "+7002"
        index.upsert(header(f"c{i:02d}", T0 + i * 60, caller=caller), tmp_path / f"c{i:02d}")
    first = index.recent(limit=10)
    assert [r.call_id for r in first] == [f"c{i:02d}" for i in range(24, 14, -1)]
    pages = [index.recent(limit=10, offset=o) for o in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [r.call_id for p in pages for r in p] == [f"c{i:02d}" for i in range(24, -1, -1)]
    assert index.recent(limit=10, offset=30) == []
    assert [r.call_id for r in index.recent(caller="+7001")] == [f"c{i:02d}" for i in range(24, -1, -3)]
    assert [r.call_id for r in index.recent(limit=2, offset=1, caller="+7002")] == ["c20", "c17"]
    assert index.recent(caller="+0000") == [] and index.recent(limit=0) == []
    assert len(index.recent()) == 25
    with pytest.raises(ValueError):
        index.recent(limit=-1)


def test_equal_start_times_have_a_stable_order(index: CallIndex, tmp_path: Path) -> None:
    for call_id in ("b", "a", "c"):
        index.upsert(header(call_id, T0), tmp_path / call_id)
    assert [r.call_id for r in index.recent()] == ["c", "b", "a"]
    assert [r.call_id for r in index.recent(limit=1, offset=1)] == ["b"]


def test_older_than_in_progress_and_delete(index: CallIndex, tmp_path: Path) -> None:
    index.upsert(header("old", T0 - 100, outcome="declined"), tmp_path / "old")
    index.upsert(header("edge", T0, outcome="no_speech"), tmp_path / "edge")
    index.upsert(header("live", T0 + 100), tmp_path / "live")
    index.upsert(header("older-live", T0 - 200), tmp_path / "older-live")
    assert [r.call_id for r in index.older_than(T0)] == ["older-live", "old"]  # strict, oldest first
    assert [r.call_id for r in index.in_progress()] == ["older-live", "live"]
    assert index.delete(["old", "nope", "old"]) == 1
    assert index.delete([]) == 0
    assert index.get("old") is None and index.count() == 3


def test_delete_many(index: CallIndex, tmp_path: Path) -> None:
    ids = [f"c{i:04d}" for i in range(1203)]
    for i, call_id in enumerate(ids):
        index.upsert(header(call_id, T0 + i), tmp_path / call_id)
    assert index.delete(ids[:1200]) == 1200
    assert [r.call_id for r in index.recent()] == ids[1202:1199:-1]


def test_survives_reopen_and_close_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "secretary.db"
    idx = CallIndex(db)
    idx.upsert(header("kept", summary="ok"), tmp_path / "kept")
    idx.close()
    idx.close()
    with pytest.raises(RuntimeError, match="closed"):
        idx.get("kept")
    with CallIndex(db) as again:
        row = again.get("kept")
        assert row is not None and row.summary == "ok"


def test_sync_api_is_safe_from_many_threads(index: CallIndex, tmp_path: Path) -> None:
    def work(n: int) -> None:
        for i in range(30):
            index.upsert(header(f"t{n}-{i}", T0 + i), tmp_path / "x")
            index.recent(limit=5)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert index.count() == 120


def test_a_bad_message_column_reads_as_empty(index: CallIndex, tmp_path: Path) -> None:
    index.upsert(header("m"), tmp_path / "m")
    with raw(index.db_path) as conn:
        conn.execute("UPDATE calls SET message = 'not json' WHERE call_id = 'm'")
    row = index.get("m")
    assert row is not None and row.message == {}


# ---------------------------------------------------------------- async


async def test_async_facade(index: CallIndex, tmp_path: Path) -> None:
    h = header("a1")
    await index.aupsert(h, tmp_path / "a1")
    h.outcome = "message_taken"
    await index.aupsert(h, tmp_path / "a1")
    await index.aupsert(header("a2", T0 - 10), tmp_path / "a2")
    row = await index.aget("a1")
    assert row is not None and row.outcome == "message_taken"
    assert [r.call_id for r in await index.arecent(limit=5)] == ["a1", "a2"]
    assert [r.call_id for r in await index.aolder_than(T0)] == ["a2"]
    assert await index.ain_progress() == [await index.aget("a2")]
    assert await index.adelete(["a2"]) == 1
    await index.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await index.aget("a1")


async def test_async_writes_keep_their_order(index: CallIndex, tmp_path: Path) -> None:
    h = header("o")
    calls = []
    for i in range(30):
        h.summary = f"v{i}"
        calls.append(index.aupsert(h, tmp_path / "o"))  # aupsert copies the header when called
    await asyncio.gather(*calls)
    row = await index.aget("o")
    assert row is not None and row.summary == "v29"


async def test_async_runs_on_one_worker_thread(index: CallIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    real_row = call_index._row

    def spy(values: sqlite3.Row) -> CallSummaryRow:
        seen.add(threading.current_thread().name)
        return real_row(values)

    monkeypatch.setattr(call_index, "_row", spy)
    for i in range(5):
        await index.aupsert(header(f"w{i}"), Path("/x"))
    await asyncio.gather(*(index.arecent() for _ in range(5)))
    assert len(seen) == 1 and next(iter(seen)).startswith("call-index")


async def test_cancelled_async_upsert_still_lands(index: CallIndex, tmp_path: Path) -> None:
    task = asyncio.create_task(index.aupsert(header("c"), tmp_path / "c"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await index.aget("c") is not None
