"""Fan-out of driver events to any number of subscribers, each with a bounded queue.

A slow subscriber never blocks the driver: when its queue is full the oldest
event is dropped and counted.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Generic, TypeVar

from drivers.sim7600.drop_oldest_queue import DropOldestQueue

log = logging.getLogger(__name__)

T = TypeVar("T")


class EventSubscription(Generic[T]):
    def __init__(self, hub: EventHub[T], max_queued: int) -> None:
        self._hub = hub
        self._queue: DropOldestQueue[T] = DropOldestQueue(max_queued)
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._queue.closed

    def pending(self) -> list[T]:
        """Events queued right now (without consuming them)."""
        return self._queue.snapshot()

    async def get(self, timeout: float | None = None) -> T | None:
        """Next event; None when closed and drained, or on timeout."""
        return await self._queue.get(timeout)

    def __aiter__(self) -> EventSubscription[T]:
        return self

    async def __anext__(self) -> T:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        if not self._queue.closed:
            self._queue.close()
            self._hub._remove(self)

    async def __aenter__(self) -> EventSubscription[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _push(self, event: T) -> None:
        if self._queue.push(event):
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("event subscriber is not keeping up: %d events dropped", self.dropped)


class EventHub(Generic[T]):
    def __init__(self) -> None:
        self._subscriptions: list[EventSubscription[T]] = []

    def subscribe(self, max_queued: int = 1000) -> EventSubscription[T]:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        subscription = EventSubscription(self, max_queued)
        self._subscriptions.append(subscription)
        return subscription

    def publish(self, event: T) -> None:
        for subscription in list(self._subscriptions):
            subscription._push(event)

    def close_all(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()

    def _remove(self, subscription: EventSubscription[T]) -> None:
        try:
            self._subscriptions.remove(subscription)
        except ValueError:
            pass


__all__ = ["EventHub", "EventSubscription"]
