"""Per-bot, per-user chat state: a bounded history, the chosen persona, a pending SMS reply.

Each (bot, user) pair has its own session; nothing is shared between users or
bots. History keeps the last ``turns`` exchanges (a user message and the
answer); older ones fall off. State lives in memory: a restart starts fresh
conversations, which is what a chat user expects of a bot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChatSession:
    turns: int
    persona: str | None = None
    sms_to: str | None = None  # the number the next text message is sent to by SMS
    history: deque[dict[str, str]] = field(default_factory=deque)

    def messages(self) -> list[dict[str, Any]]:
        return list(self.history)

    def add_exchange(self, user_text: str, answer: str) -> None:
        if self.turns <= 0:
            return
        self.history.append({"role": "user", "text": user_text})
        self.history.append({"role": "assistant", "text": answer})
        while len(self.history) > 2 * self.turns:
            self.history.popleft()

    def clear(self) -> None:
        self.history.clear()


class ChatSessions:
    def __init__(self, turns: int) -> None:
        self.turns = turns
        self._sessions: dict[int, ChatSession] = {}

    def of(self, user_id: int) -> ChatSession:
        session = self._sessions.get(user_id)
        if session is None:
            session = self._sessions[user_id] = ChatSession(self.turns)
        return session

    def __len__(self) -> int:
        return len(self._sessions)
