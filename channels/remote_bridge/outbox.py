"""What waits for the remote broker: retained state (newest per topic) and events (in order, bounded).

One ordered queue keeps the order things happened in. A retained message
replaces the one waiting for its topic and moves to the back (only the newest
state matters); events keep their place, and when more than ``max_events``
wait, the oldest is dropped and counted. A message leaves the queue only once
the remote broker has it (``done``), so one in flight when the connection
drops is sent again on the next connection.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass

Key = tuple[str, str | int]


@dataclass(frozen=True)
class Outgoing:
    topic: str  # the full remote topic
    payload: bytes
    retain: bool


class RemoteOutbox:
    def __init__(self, max_events: int) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.max_events = max_events
        self.dropped = 0  # events dropped because the queue was full
        self._queue: OrderedDict[Key, Outgoing] = OrderedDict()
        self._events: deque[Key] = deque()  # the event keys, oldest first
        self._seq = 0
        self._waiting = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def events_waiting(self) -> int:
        return len(self._events)

    def put(self, message: Outgoing) -> None:
        if message.retain:
            key: Key = ("state", message.topic)
            self._queue.pop(key, None)
        else:
            self._seq += 1
            key = ("event", self._seq)
            self._events.append(key)
            if len(self._events) > self.max_events:
                del self._queue[self._events.popleft()]
                self.dropped += 1
        self._queue[key] = message
        self._waiting.set()

    def drop_retained(self) -> None:
        """Forget waiting state (the caller republishes its whole snapshot instead); events stay."""
        for key in [k for k in self._queue if k[0] == "state"]:
            del self._queue[key]

    async def next(self) -> tuple[Key, Outgoing]:
        """The oldest waiting message (it stays queued until ``done``)."""
        while not self._queue:
            self._waiting.clear()
            await self._waiting.wait()
        return next(iter(self._queue.items()))

    def done(self, key: Key, message: Outgoing) -> None:
        """``message`` reached the broker: drop it unless it was replaced or dropped meanwhile."""
        if self._queue.get(key) is not message:
            return
        del self._queue[key]
        if key[0] == "event":
            self._events.remove(key)  # the oldest event (events leave in order): O(1) in practice
