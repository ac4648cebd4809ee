"""Numbers the owner blocked at run time (a Telegram button, a bus command), kept in SQLite.

They live in ``data_dir/secretary.db`` beside the call index, in their own
table, and add to ``modem.blocked_numbers`` from the config. Numbers are
stored as given after removing spaces, dashes and brackets; matching a caller
is the driver's job (it knows ``8 916…`` and ``+7 916…`` are one number).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_number(number: str) -> str:
    """``+7 (916) 123-45-67`` -> ``+79161234567``; ValueError with a reason for anything else."""
    cleaned = _SEPARATORS.sub("", number.strip())
    if not _NUMBER.match(cleaned):
        raise ValueError(f"{number!r} is not a phone number (digits, optional leading +, 3 to 20 digits)")
    return cleaned


class BlockedNumbers:
    """A small table; every statement is one short write or read (safe to call from the loop)."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(db_path, check_same_thread=False, timeout=5.0)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS blocked_numbers ("
                " number TEXT PRIMARY KEY, added_at REAL NOT NULL, note TEXT)"
            )

    def add(self, number: str, note: str | None = None) -> tuple[str, bool]:
        """Block ``number``; returns the stored form and whether it was new."""
        stored = normalize_number(number)
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO blocked_numbers (number, added_at, note) VALUES (?, ?, ?)",
                (stored, time.time(), note),
            )
        return stored, cursor.rowcount == 1

    def remove(self, number: str) -> bool:
        stored = normalize_number(number)
        with self._lock, self._conn:
            cursor = self._conn.execute("DELETE FROM blocked_numbers WHERE number = ?", (stored,))
        return cursor.rowcount == 1

    def numbers(self) -> tuple[str, ...]:
        with self._lock:
            rows = self._conn.execute("SELECT number FROM blocked_numbers ORDER BY added_at").fetchall()
        return tuple(row[0] for row in rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
