"""Visitor sessions: one per widget and visitor session id, with the conversation the visitor sees.

The page keeps its session id in the browser (localStorage); the server
keeps the conversation, so a reload, a new tab or cleared session storage
shows it again. A session keeps its last ``KEPT_TURNS`` exchanges (what the
visitor sees); the model is given only the widget's ``history_turns`` of
them. A session untouched for ``idle_s`` (a day) is gone, and there are at
most ``max_sessions`` (the longest idle go first), so memory stays bounded.
Sessions live in memory: a restart of the box starts fresh conversations.

Session ids are the server's: 24 random URL-safe characters (144 bits) made
by ``create``. The page only hands back the id it was given; an id the server
does not hold (made up, expired, or another widget's) never becomes a
session: ``find`` says None and the visitor gets a fresh id, so nobody can
pick an id for someone else to land in. Ids are scoped to their widget.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

IDLE_EXPIRY_S = 24 * 3600.0
MAX_SESSIONS = 1000
KEPT_TURNS = 20
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def valid_session_id(value: object) -> bool:
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


@dataclass
class VisitorSession:
    widget: str
    session_id: str
    created: float
    last_seen: float
    history: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=2 * KEPT_TURNS))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one answer at a time, across the visitor's tabs

    def context(self, turns: int) -> list[dict[str, str]]:
        """The last ``turns`` exchanges, oldest first: what the model is told."""
        if turns <= 0:
            return []
        return list(self.history)[-2 * turns:]

    def transcript(self) -> list[dict[str, str]]:
        return list(self.history)

    def add_exchange(self, user_text: str, answer: str) -> None:
        self.history.append({"role": "user", "text": user_text})
        self.history.append({"role": "assistant", "text": answer})


class VisitorSessions:
    def __init__(self, *, idle_s: float = IDLE_EXPIRY_S, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if idle_s <= 0 or max_sessions < 1:
            raise ValueError("idle_s must be positive and max_sessions at least 1")
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[tuple[str, str], VisitorSession] = OrderedDict()  # least recently seen first

    def find(self, widget: str, session_id: str | None) -> VisitorSession | None:
        """The live session the server issued as ``session_id`` on ``widget`` (now touched); None for any other id."""
        self._expire(self._clock())
        if session_id is None or not valid_session_id(session_id):
            return None
        session = self._sessions.get((widget, session_id))
        if session is not None:
            self.touch(session)
        return session

    def create(self, widget: str) -> VisitorSession:
        """A new session with a fresh, unguessable id of the server's."""
        now = self._clock()
        self._expire(now)
        session_id = new_session_id()
        while (widget, session_id) in self._sessions:  # 144 random bits: never, but never is cheap to make sure
            session_id = new_session_id()
        session = VisitorSession(widget, session_id, created=now, last_seen=now)
        self._sessions[(widget, session_id)] = session
        self._trim()
        return session

    def open(self, widget: str, session_id: str | None) -> VisitorSession:
        """The visitor's live session if the server issued ``session_id``, else a new one with a fresh id."""
        return self.find(widget, session_id) or self.create(widget)

    def touch(self, session: VisitorSession) -> None:
        """The visitor is active: keep the session (again, if it was pushed out while they chatted)."""
        session.last_seen = self._clock()
        key = (session.widget, session.session_id)
        current = self._sessions.setdefault(key, session)
        if current is session:
            self._sessions.move_to_end(key)
            self._trim()

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._sessions)

    def _trim(self) -> None:
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.last_seen > now - self.idle_s:
                return
            self._sessions.popitem(last=False)
