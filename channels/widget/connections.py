"""Caps on open chat connections: in all, and per visitor address.

Each open WebSocket holds a little memory and a heartbeat; a page that
opens hundreds (or a script doing so) is refused before the upgrade,
while everyone else keeps chatting.
"""

from __future__ import annotations

from collections import Counter

MAX_CONNECTIONS = 500
MAX_PER_ADDRESS = 20


class ConnectionLimits:
    def __init__(self, max_total: int = MAX_CONNECTIONS, max_per_address: int = MAX_PER_ADDRESS) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._open: Counter[str] = Counter()

    def try_open(self, address: str) -> bool:
        if self._open.total() >= self.max_total or self._open[address] >= self.max_per_address:
            return False
        self._open[address] += 1
        return True

    def close(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def __len__(self) -> int:
        return self._open.total()
