"""Waiting for a real SIM7600's driver events (``test_real_modem`` and the real rig's tester phone)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.sim7600.event_hub import EventSubscription
from drivers.sim7600.events import ModemEvent


async def next_event(events: EventSubscription[ModemEvent], event_type: str, timeout: float) -> Any:
    """The next event of ``event_type`` (others are consumed and dropped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        event = await events.get(remaining)
        if event is not None and event.type == event_type:
            return event
    raise AssertionError(f"no {event_type} event within {timeout:g} s")


@dataclass(frozen=True)
class Logged:
    event: ModemEvent
    at: float  # time.monotonic() when it was taken off the driver's queue


class EventLog:
    """Keeps every event of a driver subscription, in order, so steps can wait for one from a mark on."""

    def __init__(self, events: EventSubscription[ModemEvent]) -> None:
        self._events = events
        self.seen: list[Logged] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._collect(), name="hil-tester-events")

    async def stop(self) -> None:
        self._events.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _collect(self) -> None:
        async for event in self._events:
            self.seen.append(Logged(event, time.monotonic()))
            self._changed.set()

    def mark(self) -> int:
        return len(self.seen)

    async def wait_for(self, predicate: Callable[[ModemEvent], bool], *, timeout: float, after: int = 0) -> Logged:
        deadline = time.monotonic() + timeout
        index = after
        while True:
            for logged in self.seen[index:]:
                if predicate(logged.event):
                    return logged
            index = len(self.seen)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [type(logged.event).__name__ for logged in self.seen[-8:]]
                raise TimeoutError(f"the tester's modem reported no matching event within {timeout:g} s; last: {recent}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
