"""A durable outbox for owner notifications: nothing is lost, nothing is sent twice.

``NotificationOutbox`` is one SQLite table (stdlib ``sqlite3``, WAL,
``synchronous=FULL`` so an enqueued notification survives a power cut).
Every item belongs to a bot (the configured bot's name) and a chat, and
carries a ``dedup_key``: ``UNIQUE(bot, dedup_key)`` makes ``enqueue``
idempotent, so an event that arrives again after a restart (the bus
redelivers retained or replayed events) adds nothing. Payloads are stored as
JSON: they must be JSON-serialisable and come back as JSON values (tuples
become lists). An item is ``pending`` until it is ``sent`` or ``failed``
(permanently; kept for inspection, never retried).

``OutboxSender`` delivers one bot's pending items through an async ``send``
callback, strictly in order within each chat; chats do not wait for each
other, except on Telegram's flood control (``RetryAfter``), which pauses
the whole bot for exactly the time Telegram asks for. Failures are
classified by ``python-telegram-bot``'s exception types:

* ``RetryAfter``: wait ``retry_after`` seconds, then the same item again;
* ``TimedOut``, ``NetworkError`` (not ``BadRequest``), any other
  ``TelegramError`` (e.g. ``InvalidToken`` while the owner fixes the token)
  and ``OSError``: exponential backoff with jitter, capped at
  ``backoff_max_s``, the same item again, forever;
* ``BadRequest``, ``Forbidden``, ``ChatMigrated``, ``PermanentSendError``
  and any other exception (a bug in ``send`` would otherwise block the chat
  forever): the item is marked failed with the message (a warning is
  logged) and the chat's next item goes.

Threads and blocking: every outbox method is one or two tiny indexed
statements on a local file, so the sender calls them *directly* on the event
loop (a few milliseconds for the fsync of a write). That also means the only
points where ``run()`` can be cancelled are ``await send(...)`` and the
waits: an item whose send was cancelled simply stays pending, and nothing is
ever half-recorded. The outbox is also safe to use from other threads (one
lock around the connection), e.g. via ``asyncio.to_thread``.

Duplicates: an item is marked sent right after ``send`` returns, with no
await in between. The one remaining window is a crash (process killed, power
cut) after Telegram accepted the message and before that commit, or a
cancellation while Telegram's reply is in flight: the item is still pending
and is sent once more on the next run. So the guarantee is at-least-once
delivery with at most one duplicate per such interruption.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import logging
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger("secretary.telegram.outbox")

PENDING: Final = "pending"
SENT: Final = "sent"
FAILED: Final = "failed"

_COLUMNS: Final = "id, bot, chat_id, kind, payload, dedup_key, attempts, created_at"
_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        bot TEXT NOT NULL,
        chat_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (bot, dedup_key)
    )
    """,
    "CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (bot, state, chat_id, id)",
    "CREATE INDEX IF NOT EXISTS outbox_by_age ON outbox (state, updated_at)",
)


class PermanentSendError(Exception):
    """Raised by a ``send`` callback for an item that can never be delivered (e.g. its audio file is gone)."""


@dataclass(frozen=True)
class OutboxItem:
    id: int
    bot: str
    chat_id: int
    kind: str  # "text" | "voice"
    payload: dict[str, Any]
    dedup_key: str
    attempts: int
    created_at: float  # unix seconds


def _item(row: tuple[Any, ...]) -> OutboxItem:
    item_id, bot, chat_id, kind, payload, dedup_key, attempts, created_at = row
    return OutboxItem(int(item_id), str(bot), int(chat_id), str(kind), json.loads(payload), str(dedup_key),
                      int(attempts), float(created_at))


class NotificationOutbox:
    """The SQLite outbox (see module doc).

    ``clock`` gives the wall-clock unix seconds stored as timestamps.
    ``Path(":memory:")`` gives a throwaway in-memory outbox (tests).
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            for statement in _SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> NotificationOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the notification outbox is closed")
            return self._conn.execute(sql, params)

    def _select(self, where: str, params: tuple[Any, ...]) -> list[OutboxItem]:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the notification outbox is closed")
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox {where}", params).fetchall()
        return [_item(row) for row in rows]

    # ------------------------------------------------------------ writes

    def enqueue(self, bot: str, chat_id: int, kind: str, payload: dict[str, Any], dedup_key: str) -> bool:
        """Add a pending item; False (and nothing changes) when ``(bot, dedup_key)`` is already known.

        Raises ``TypeError`` when the payload is not JSON-serialisable.
        """
        encoded = json.dumps(payload, ensure_ascii=False)
        now = self._clock()
        cursor = self._execute(
            "INSERT OR IGNORE INTO outbox (bot, chat_id, kind, payload, dedup_key, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (bot, int(chat_id), kind, encoded, dedup_key, now, now),
        )
        return cursor.rowcount == 1

    def mark_sent(self, item_id: int, message_id: int | None) -> bool:
        """Record a delivery (``message_id`` is Telegram's); False when the item was not pending."""
        cursor = self._execute(
            "UPDATE outbox SET state = 'sent', message_id = ?, attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND state = 'pending'",
            (message_id, self._clock(), item_id),
        )
        return cursor.rowcount == 1

    def mark_failed(self, item_id: int, error: str) -> bool:
        """Give up on an item for good (kept with its error for inspection); False when it was not pending."""
        cursor = self._execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND state = 'pending'",
            (error, self._clock(), item_id),
        )
        return cursor.rowcount == 1

    def note_attempt(self, item_id: int, error: str) -> None:
        """Count a failed attempt that will be retried; the item stays pending."""
        self._execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            (error, self._clock(), item_id),
        )

    def prune_sent(self, older_than_s: float) -> int:
        """Delete sent items delivered more than ``older_than_s`` ago; returns how many.

        Their dedup keys go with them: an event re-received after its row was
        pruned would be sent again, so keep ``older_than_s`` well beyond any
        redelivery horizon (days, not minutes). Failed items are kept.
        """
        cursor = self._execute(
            "DELETE FROM outbox WHERE state = 'sent' AND updated_at < ?", (self._clock() - older_than_s,)
        )
        return cursor.rowcount

    # ------------------------------------------------------------ reads

    def pending(self, bot: str) -> list[OutboxItem]:
        """The bot's pending items, oldest first (id order)."""
        return self._select("WHERE bot = ? AND state = 'pending' ORDER BY id", (bot,))

    def head(self, bot: str, chat_id: int) -> OutboxItem | None:
        """The oldest pending item for one chat: the only one that may be sent next."""
        items = self._select("WHERE bot = ? AND chat_id = ? AND state = 'pending' ORDER BY id LIMIT 1", (bot, chat_id))
        return items[0] if items else None

    def heads(self, bot: str) -> list[OutboxItem]:
        """The head of every chat with pending items, oldest head first."""
        return self._select(
            "WHERE id IN (SELECT MIN(id) FROM outbox WHERE bot = ? AND state = 'pending' GROUP BY chat_id) ORDER BY id",
            (bot,),
        )

    def failed(self, bot: str) -> list[tuple[OutboxItem, str | None]]:
        """Permanently failed items with their last error, oldest first."""
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the notification outbox is closed")
            rows = self._conn.execute(
                f"SELECT {_COLUMNS}, last_error FROM outbox WHERE bot = ? AND state = 'failed' ORDER BY id", (bot,)
            ).fetchall()
        return [(_item(row[:-1]), row[-1]) for row in rows]

    def counts(self, bot: str) -> dict[str, int]:
        """``{"pending": n, "sent": n, "failed": n}`` for one bot."""
        rows = self._execute("SELECT state, COUNT(*) FROM outbox WHERE bot = ? GROUP BY state", (bot,)).fetchall()
        counts = {PENDING: 0, SENT: 0, FAILED: 0}
        counts.update({str(state): int(n) for state, n in rows})
        return counts


# ---------------------------------------------------------------- sender


def retry_after_seconds(error: RetryAfter) -> float:
    """``error.retry_after`` in seconds, whether PTB gives an int or a ``timedelta`` (``PTB_TIMEDELTA``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: object = error.retry_after
    if isinstance(value, dtm.timedelta):
        return max(0.0, value.total_seconds())
    if isinstance(value, int | float):
        return max(0.0, float(value))
    raise TypeError(f"unexpected retry_after {value!r}")


@dataclass
class _ChatBackoff:
    failures: int = 0
    ready_at: float = 0.0  # clock() time the chat's head may be tried again


class OutboxSender:
    """Delivers one bot's pending items, in order per chat, until cancelled (see module doc).

    ``send`` delivers one item and returns Telegram's message id (or None).
    ``clock``/``sleep`` are injectable so tests can run hours of outage in
    milliseconds; ``rng`` drives the backoff jitter. Status for pages and
    logs: ``delivered``, ``failed``, ``retries``, ``last_error``.
    """

    def __init__(
        self,
        outbox: NotificationOutbox,
        bot: str,
        send: Callable[[OutboxItem], Awaitable[int | None]],
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.outbox = outbox
        self.bot = bot
        self._send = send
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._chats: dict[int, _ChatBackoff] = {}
        self._paused_until = 0.0  # flood control: no sends for this bot before this clock() time
        self.delivered = 0
        self.failed = 0
        self.retries = 0
        self.last_error: str | None = None

    def notify(self) -> None:
        """Tell the sender new items were enqueued (call after ``enqueue``)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver forever: drain pending items, then wait for ``notify()``. Cancel to stop."""
        while True:
            self._wake.clear()
            await self.deliver_pending()
            await self._wake.wait()

    async def deliver_pending(self) -> None:
        """Deliver until the bot has no pending items, waiting out retries (``notify()`` cuts a wait short)."""
        while True:
            heads = self.outbox.heads(self.bot)
            if not heads:
                return
            now = self._clock()
            due = [item for item in heads if self._ready_at(item.chat_id) <= now]
            if now < self._paused_until or not due:
                wake_at = max(self._paused_until, min(self._ready_at(item.chat_id) for item in heads))
                await self._wait(wake_at - now)
                continue
            for item in due:  # one item per due chat per pass: chats take turns
                await self._attempt(item)
                if self._clock() < self._paused_until:
                    break

    def _ready_at(self, chat_id: int) -> float:
        state = self._chats.get(chat_id)
        return state.ready_at if state else 0.0

    async def _wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds of ``clock`` or until ``notify()``, whichever comes first."""
        if delay > 0 and not self._wake.is_set():
            sleeper = asyncio.ensure_future(self._sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)
        self._wake.clear()

    async def _attempt(self, item: OutboxItem) -> None:
        """Send one item and record the outcome; only ``await self._send`` can be interrupted."""
        try:
            message_id = await self._send(item)
        except RetryAfter as error:
            wait_s = retry_after_seconds(error)
            self._paused_until = self._clock() + wait_s
            self._transient(item, f"flood control: retry after {wait_s:g} s")
        except (BadRequest, Forbidden, ChatMigrated, PermanentSendError) as error:
            self._permanent(item, f"{type(error).__name__}: {error}")
        except (TelegramError, OSError) as error:  # TimedOut, NetworkError, InvalidToken, ...
            self._back_off(item.chat_id)
            self._transient(item, f"{type(error).__name__}: {error}")
        except Exception as error:
            log.exception("telegram %s: sending item %d raised unexpectedly", self.bot, item.id)
            self._permanent(item, f"{type(error).__name__}: {error}")
        else:
            self.outbox.mark_sent(item.id, message_id)
            self.delivered += 1
            if self._chats.pop(item.chat_id, None) is not None:
                log.info("telegram %s: chat %d reachable again", self.bot, item.chat_id)

    def _back_off(self, chat_id: int) -> None:
        state = self._chats.setdefault(chat_id, _ChatBackoff())
        state.failures += 1
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(state.failures - 1, 60))
        state.ready_at = self._clock() + ceiling * self._rng.uniform(0.5, 1.0)

    def _transient(self, item: OutboxItem, error: str) -> None:
        self.outbox.note_attempt(item.id, error)
        self.retries += 1
        self.last_error = error
        state = self._chats.get(item.chat_id)
        if state is None or state.failures <= 1:
            log.warning("telegram %s: item %d for chat %d not sent, will retry: %s", self.bot, item.id, item.chat_id, error)
        else:
            log.debug("telegram %s: item %d still not sent (%d failures): %s", self.bot, item.id, state.failures, error)

    def _permanent(self, item: OutboxItem, error: str) -> None:
        self.outbox.mark_failed(item.id, error)
        self.failed += 1
        self.last_error = error
        self._chats.pop(item.chat_id, None)
        log.warning("telegram %s: item %d (%s) for chat %d dropped: %s", self.bot, item.id, item.kind, item.chat_id, error)
