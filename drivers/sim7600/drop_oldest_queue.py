"""A bounded queue between a producer that must never block and one async reader.

When it is full the oldest item goes (a stale ring or audio frame is worth
less than the newest); ``close`` wakes the reader, which drains what is left
and then gets None.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._items: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self) -> list[T]:
        return list(self._items)

    def push(self, item: T) -> bool:
        """Add an item; True if the oldest one had to be dropped for it. Ignored once closed."""
        if self._closed:
            return False
        dropped = len(self._items) >= self.max_items
        if dropped:
            self._items.popleft()
        self._items.append(item)
        self._wakeup.set()
        return dropped

    async def get(self, timeout: float | None = None) -> T | None:
        """Next item; None when closed and drained, or on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while not self._items:
                    if self._closed:
                        return None
                    self._wakeup.clear()
                    await self._wakeup.wait()
        except TimeoutError:
            return None
        return self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
