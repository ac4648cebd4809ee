"""Sliding-window rate limits: at most ``limit`` events per key in any ``window_s`` seconds.

The widget checks several keys at once (the visitor's session and the
visitor's address, each scoped to the widget): an event is admitted only when
every key has room, and then it counts against all of them. A refused event
counts against none, so waiting the announced time always works. Keys that
have been quiet for a whole window are forgotten, and the number of keys is
capped (the longest-quiet go first), so memory stays bounded whatever the
traffic.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence


class SlidingWindowLimiter:
    def __init__(self, window_s: float = 60.0, *, max_keys: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window_s <= 0 or max_keys < 1:
            raise ValueError("window_s must be positive and max_keys at least 1")
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def retry_after(self, keys: Sequence[Hashable], limit: int) -> float:
        """Seconds until one more event fits under every key's limit; 0.0 when it fits now."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            stamps = self._events.get(key)
            if stamps is None:
                continue
            self._expire(stamps, now)
            if len(stamps) >= limit:
                # the oldest events that must leave the window before one more fits
                wait = max(wait, stamps[len(stamps) - limit] + self.window_s - now)
        return wait

    def record(self, keys: Sequence[Hashable]) -> None:
        now = self._clock()
        for key in keys:
            stamps = self._events.get(key)
            if stamps is None:
                stamps = self._events[key] = deque()
            stamps.append(now)
            self._events.move_to_end(key)
        self._forget(now)

    def admit(self, keys: Sequence[Hashable], limit: int) -> float:
        """Count one event against ``keys`` if it fits; returns 0.0 when admitted, else the seconds to wait."""
        wait = self.retry_after(keys, limit)
        if wait <= 0:
            self.record(keys)
            return 0.0
        return wait

    def __len__(self) -> int:
        return len(self._events)

    def _expire(self, stamps: deque[float], now: float) -> None:
        while stamps and stamps[0] <= now - self.window_s:
            stamps.popleft()

    def _forget(self, now: float) -> None:
        while self._events:
            key, stamps = next(iter(self._events.items()))
            if len(self._events) <= self.max_keys and stamps and stamps[-1] > now - self.window_s:
                return
            del self._events[key]


def whole_seconds(wait_s: float) -> int:
    """A wait as the whole seconds to tell a visitor (never 0: 0.2 s is "1 s")."""
    return max(1, math.ceil(wait_s))


def too_fast_message(wait_s: float) -> str:
    seconds = whole_seconds(wait_s)
    return f"You are sending messages too fast. Please wait {seconds} second{'s' if seconds != 1 else ''} and try again."
