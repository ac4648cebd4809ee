"""Messages waiting for the broker.

Everything the daemon publishes goes through the outbox, so nothing is lost
while the broker is unreachable: a retained state message supersedes the
pending one for the same topic (only the newest state matters), events and
replies are kept in order up to a bound (past it the oldest event is dropped
and counted). The outbox also remembers the current value of every retained
topic so a broker that restarted without persistence gets them all again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

log = logging.getLogger("secretary.bus")


@dataclass(frozen=True)
class OutboundMessage:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    correlation_data: bytes | None = None  # MQTT v5 request/response replies
    seq: int = field(default=0, compare=False)


class Outbox:
    def __init__(self, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self.dropped_events = 0
        self._seq = itertools.count(1)
        # key: ("state", topic) for retained state, ("event", seq) otherwise
        self._pending: OrderedDict[tuple[str, object], OutboundMessage] = OrderedDict()
        self._events = 0
        self._current: dict[str, OutboundMessage] = {}
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    def put_state(self, topic: str, payload: bytes) -> None:
        message = OutboundMessage(topic, payload, retain=True, seq=next(self._seq))
        key = ("state", topic)
        self._pending.pop(key, None)
        self._pending[key] = message
        self._current[topic] = message
        self._wakeup.set()

    def current(self, topic: str) -> OutboundMessage | None:
        """The newest retained state put for ``topic`` (delivered or not)."""
        return self._current.get(topic)

    def put_event(self, message: OutboundMessage) -> None:
        """Queue a non-retained message (event or command reply)."""
        message = dataclasses.replace(message, retain=False, seq=next(self._seq))
        self._pending[("event", message.seq)] = message
        self._events += 1
        while self._events > self.max_events:
            oldest = next(key for key in self._pending if key[0] == "event")
            dropped = self._pending.pop(oldest)
            self._events -= 1
            self.dropped_events += 1
            log.warning("outbox full, oldest event dropped", extra={"topic": dropped.topic, "dropped_total": self.dropped_events})
        self._wakeup.set()

    def peek(self) -> OutboundMessage | None:
        for message in self._pending.values():
            return message
        return None

    def ack(self, message: OutboundMessage) -> None:
        """The broker has this message: drop it unless a newer one replaced it."""
        key: tuple[str, object] = ("state", message.topic) if message.retain else ("event", message.seq)
        pending = self._pending.get(key)
        if pending is not None and pending.seq == message.seq:
            del self._pending[key]
            if key[0] == "event":
                self._events -= 1

    def requeue_retained(self) -> None:
        """After a (re)connect: make sure the broker holds every current state.

        States not already pending are put in front of the queue in their
        original order (they are older than anything pending).
        """
        missing = [m for topic, m in self._current.items() if ("state", topic) not in self._pending]
        for message in sorted(missing, key=lambda m: m.seq, reverse=True):
            key = ("state", message.topic)
            self._pending[key] = message
            self._pending.move_to_end(key, last=False)
        if self._pending:
            self._wakeup.set()

    async def wait(self) -> None:
        """Return when there is something to send."""
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
