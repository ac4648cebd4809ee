"""Helpers for the SIM7600 driver tests: short timings, an event waiter, a test tone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from drivers.sim7600.event_hub import EventSubscription
from drivers.sim7600.events import ModemEvent
from drivers.sim7600.modem import DriverTimings, Sim7600Modem
from drivers.sim7600.simulator import SimulatedModem, SimulatorConfig

FAST_TIMINGS = DriverTimings(
    command_timeout_s=2.0,
    boot_timeout_s=5.0,
    probe_timeout_s=0.3,
    sim_ready_timeout_s=2.0,
    state_poll_interval_s=0.5,
    reconnect_interval_s=0.1,
    presence_check_interval_s=0.2,
    max_consecutive_timeouts=3,
    sms_send_timeout_s=5.0,
    pcm_enable_attempts=3,
    pcm_retry_delay_s=0.05,
    pcm_health_after_s=0.5,
    pcm_health_interval_s=0.2,
    caller_id_grace_s=0.05,
    ring_timeout_s=1.0,
    reconcile_idle_s=1.0,
    reconcile_call_s=0.3,
    dial_timeout_s=3.0,
    answer_timeout_s=2.0,
    post_call_guard_s=0.3,
    hangup_on_stop_s=1.0,
)

FAST_SIM = SimulatorConfig(ring_period_s=0.1, dial_answer_after_s=0.15, sms_send_delay_s=0.01, reset_duration_s=0.3)


class EventWaiter:
    """Reads a subscription, keeps everything it saw, waits for the event a test expects."""

    def __init__(self, subscription: EventSubscription[ModemEvent]) -> None:
        self.subscription = subscription
        self.seen: list[ModemEvent] = []
        self._returned: set[int] = set()

    async def wait_for(self, event_type: str, timeout: float = 5.0, where: Callable[[Any], bool] | None = None) -> Any:
        """The earliest event of this type (matching ``where``) not returned before, waiting if needed."""

        def matches(index: int, event: ModemEvent) -> bool:
            return index not in self._returned and event.type == event_type and (where is None or where(event))

        for index, event in enumerate(self.seen):
            if matches(index, event):
                self._returned.add(index)
                return event
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = ", ".join(e.type for e in self.seen[-30:])
                raise AssertionError(f"no {event_type!r} event within {timeout} s; last seen: {seen}")
            received = await self.subscription.get(remaining)
            if received is None:
                continue
            self.seen.append(received)
            index = len(self.seen) - 1
            if matches(index, received):
                self._returned.add(index)
                return received

    async def drain(self, quiet_s: float = 0.2) -> list[ModemEvent]:
        """Collect events until none arrives for ``quiet_s``."""
        while (event := await self.subscription.get(quiet_s)) is not None:
            self.seen.append(event)
        return self.seen

    def of_type(self, event_type: str) -> list[Any]:
        return [e for e in self.seen if e.type == event_type]


@dataclass
class Rig:
    sim: SimulatedModem
    modem: Sim7600Modem
    events: EventWaiter
    paths: tuple[Path, Path]
    extras: dict[str, Any] = field(default_factory=dict)


class RigFactory(Protocol):
    def __call__(
        self,
        *,
        sim_config: SimulatorConfig | None = ...,
        start_sim: bool = ...,
        start_modem: bool = ...,
        wait_connected: bool = ...,
        **settings: Any,
    ) -> Awaitable[Rig]: ...


def tone(frames: int, seed: int = 1) -> bytes:
    """A deterministic non-silent PCM16 pattern, ``frames`` x 320 bytes."""
    import math
    import struct

    samples = [int(8000 * math.sin(2 * math.pi * (440 + 40 * seed) * n / 8000)) | 1 for n in range(frames * 160)]
    return struct.pack(f"<{len(samples)}h", *samples)
