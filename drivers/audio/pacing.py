"""A 20 ms pacing clock on the event loop, anchored to a monotonic deadline."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_SLACK = 1e-6  # a timer may fire a clock tick early; do not sleep again for that

Tick = Callable[[], Awaitable[None] | None]
Clock = Callable[[], float]
SleepUntil = Callable[[float], Awaitable[None]]
FrameObserver = Callable[[float, float], None]


@dataclass
class PacingStats:
    """Counters since the clock started."""

    frames: int = 0
    late_frames: int = 0  # sent more than half a period after their deadline
    max_lateness: float = 0.0  # seconds
    catchup_frames: int = 0  # sent while behind schedule (spaced, not bursted)
    resyncs: int = 0  # times the schedule was moved on after a stall longer than max_lag
    skipped_slots: int = 0  # frame slots given up by resyncs (audio is delayed, not dropped)


class PacingClock:
    """Calls ``tick`` once per ``period`` against ``t0 + k * period`` deadlines.

    Deadlines are computed from the start time and an integer slot count, so
    error does not accumulate. After a late wake-up the missed frames are sent
    at ``catchup_speed`` times the normal rate (never two frames closer than
    ``period / catchup_speed``) until back on schedule; if the lag exceeds
    ``max_lag`` the schedule is moved on instead (counted in ``resyncs``).
    A frame may go out up to ``wake_early`` before its deadline, which centres
    the event loop's 1 ms timer granularity on the deadline. It only awaits
    between ticks, so it never blocks the loop; ``tick`` must be quick (it may
    be a coroutine function). ``clock`` and ``sleep_until`` can be injected to
    simulate time.
    """

    def __init__(
        self,
        tick: Tick,
        *,
        period: float = 0.020,
        max_lag: float = 0.200,
        catchup_speed: float = 2.0,
        clock: Clock | None = None,
        sleep_until: SleepUntil | None = None,
        on_frame: FrameObserver | None = None,
        wake_early: float = 0.0005,
        name: str = "pacing-clock",
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        if catchup_speed <= 1.0:
            raise ValueError("catchup_speed must be > 1")
        self._tick = tick
        self.period = period
        self.max_lag = max(max_lag, period)
        self.min_gap = period / catchup_speed
        self._clock = clock
        self._sleep_until = sleep_until
        self._on_frame = on_frame
        self._early = max(0.0, wake_early)
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self.stats = PacingStats()
        self.start_time: float | None = None

    @property
    def running(self) -> bool:
        """True while the owned task is alive."""
        return self._task is not None and not self._task.done()

    def start(self, frames: int | None = None) -> asyncio.Task[None]:
        """Run the clock in a task owned by this object (see ``stop``)."""
        if self.running:
            raise RuntimeError("pacing clock already running")
        task = asyncio.get_running_loop().create_task(self.run(frames), name=self._name)
        task.add_done_callback(_log_failure)
        self._task = task
        return task

    async def stop(self) -> None:
        """Cancel the owned task and wait for it; re-raises a failure of ``tick``."""
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def __aenter__(self) -> PacingClock:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, frames: int | None = None) -> None:
        """Tick until cancelled, or ``frames`` times."""
        loop = asyncio.get_running_loop()
        clock = self._clock or loop.time
        sleep_until = self._sleep_until or _loop_sleep_until(clock)
        period, early = self.period, self._early
        t0 = clock()
        self.start_time = t0
        slot = 0  # index of the next frame's deadline: t0 + slot * period
        last_sent = -math.inf
        sent = 0
        while frames is None or sent < frames:
            deadline = t0 + slot * period
            wake = max(deadline - early, last_sent + self.min_gap)
            now = clock()
            while now < wake - _SLACK:
                await sleep_until(wake)
                now = clock()
            lag = now - deadline
            if lag > self.max_lag:
                skip = int(lag // period)
                slot += skip
                deadline = t0 + slot * period
                lag = now - deadline
                self.stats.resyncs += 1
                self.stats.skipped_slots += skip
                log.warning("pacing clock %.1f ms late: skipping %d frame slots", (lag + skip * period) * 1e3, skip)
            result = self._tick()
            if inspect.isawaitable(result):
                await result
            self._record(deadline, now, lag)
            slot += 1
            sent += 1
            last_sent = now
            if now >= t0 + slot * period:
                # Still behind: yield once so catch-up never starves the loop.
                await asyncio.sleep(0)

    def _record(self, deadline: float, sent_at: float, lag: float) -> None:
        stats = self.stats
        stats.frames += 1
        if lag > stats.max_lateness:
            stats.max_lateness = lag
        if lag > self.period / 2:
            stats.late_frames += 1
        if lag >= self.period:
            stats.catchup_frames += 1
        if self._on_frame is not None:
            self._on_frame(deadline, sent_at)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped by an error", task.get_name(), exc_info=task.exception())


def _loop_sleep_until(clock: Clock) -> SleepUntil:
    async def sleep_until(deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - clock()))

    return sleep_until
