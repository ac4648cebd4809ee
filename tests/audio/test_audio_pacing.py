"""PacingClock: no drift over a simulated 10-minute call, spaced catch-up, clean start/stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from drivers.audio.pacing import PacingClock

PERIOD = 0.020


class FakeTime:
    """Virtual monotonic time; every sleep wakes late by ``lateness()`` seconds."""

    def __init__(self, lateness: Callable[[], float]) -> None:
        self.now = 5000.0
        self.lateness = lateness
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    async def sleep_until(self, deadline: float) -> None:
        self.sleeps += 1
        self.now = max(self.now, deadline) + self.lateness()
        await asyncio.sleep(0)


def sent_times(fake: FakeTime, **kw: object) -> tuple[PacingClock, list[float]]:
    times: list[float] = []
    clock = PacingClock(
        lambda: times.append(fake.now),
        clock=fake.clock,
        sleep_until=fake.sleep_until,
        **{"wake_early": 0.0, **kw},  # type: ignore[arg-type]
    )
    return clock, times


async def test_no_drift_over_a_ten_minute_call() -> None:
    rng = np.random.default_rng(42)
    sleeps = {"n": 0}

    def lateness() -> float:
        sleeps["n"] += 1
        if sleeps["n"] % 997 == 0 and sleeps["n"] < 28_000:
            return float(rng.uniform(0.03, 0.15))  # a stall every ~20 s: GC, a busy loop
        return float(rng.exponential(0.0015))  # ordinary timer slack, always late

    fake = FakeTime(lateness)
    pc, times = sent_times(fake)
    frames = 30_000  # 10 min of 20 ms frames
    await pc.run(frames)
    t0 = pc.start_time
    assert t0 is not None
    sent = np.array(times)
    # frames sent by each send time vs. frames due by then: never more than one frame apart
    due = np.floor((sent - t0) / PERIOD + 1e-9) + 1
    behind = due - np.arange(1, frames + 1)
    assert behind.min() >= 0  # never ahead of schedule
    assert behind[-1000:].max() < 1  # caught up: cumulative error under one frame
    assert np.mean(behind >= 1) < 0.05  # and behind only briefly after each stall
    elapsed = sent[-1] - t0
    assert abs(elapsed - (frames - 1) * PERIOD) < PERIOD
    assert pc.stats.resyncs == 0 and pc.stats.frames == frames
    assert pc.stats.catchup_frames > 0  # the stalls really happened


async def test_late_wake_catches_up_without_bursts() -> None:
    stall = {"n": 0}

    def lateness() -> float:
        stall["n"] += 1
        return 0.110 if stall["n"] == 10 else 0.0  # one 110 ms stall

    fake = FakeTime(lateness)
    pc, times = sent_times(fake)
    await pc.run(60)
    gaps = np.diff(times)
    assert gaps.min() >= PERIOD / 2 - 1e-9  # catch-up frames at most 2x the rate
    t0 = pc.start_time
    assert t0 is not None
    lag = np.array(times) - (t0 + PERIOD * np.arange(60))
    assert lag.max() > 0.1  # the stall was seen
    assert abs(lag[-1]) < 1e-9  # and fully recovered, no slot skipped
    assert pc.stats.resyncs == 0 and pc.stats.catchup_frames >= 5


async def test_stall_longer_than_max_lag_resyncs_instead_of_flooding() -> None:
    calls = {"n": 0}

    def lateness() -> float:
        calls["n"] += 1
        return 1.0 if calls["n"] == 5 else 0.0  # a one-second freeze

    fake = FakeTime(lateness)
    pc, times = sent_times(fake, max_lag=0.2)
    await pc.run(40)
    assert pc.stats.resyncs == 1 and pc.stats.skipped_slots >= 40
    assert np.diff(times).min() >= PERIOD / 2 - 1e-9
    t0 = pc.start_time
    assert t0 is not None
    # after the resync the schedule is t0 + (frame + skipped) * period, exactly
    expected_last = t0 + (39 + pc.stats.skipped_slots) * PERIOD
    assert times[-1] == pytest.approx(expected_last, abs=1e-9)


async def test_wake_early_never_sends_more_than_that_before_the_deadline() -> None:
    fake = FakeTime(lambda: 0.0)
    pc, times = sent_times(fake, wake_early=0.0005)
    await pc.run(50)
    t0 = pc.start_time
    assert t0 is not None
    lag = np.array(times) - (t0 + PERIOD * np.arange(50))
    assert lag.min() >= -0.0005 - 1e-9 and lag.max() <= 1e-9


async def test_async_tick_is_awaited() -> None:
    fake = FakeTime(lambda: 0.0)
    seen: list[int] = []

    async def tick() -> None:
        await asyncio.sleep(0)
        seen.append(1)

    await PacingClock(tick, clock=fake.clock, sleep_until=fake.sleep_until).run(5)
    assert len(seen) == 5


async def test_real_loop_pacing_keeps_time_and_leaves_loop_free() -> None:
    """2 s on the real event loop. Bounds are loose: this box may be loaded."""
    frames = 100
    sent: list[float] = []
    pc = PacingClock(lambda: sent.append(time.monotonic()))
    spins = 0

    async def other_work() -> None:
        nonlocal spins
        while True:
            await asyncio.sleep(0.001)
            spins += 1

    worker = asyncio.create_task(other_work())
    try:
        await pc.run(frames)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    span = sent[-1] - sent[0]
    assert abs(span - (frames - 1) * PERIOD) < 0.25  # no drift worth a frame per 10
    assert spins > 200  # the loop kept running other tasks
    gaps = np.diff(sent)
    assert np.median(gaps) == pytest.approx(PERIOD, abs=0.005)


async def test_start_stop_owns_and_cancels_its_task() -> None:
    ticks: list[int] = []
    pc = PacingClock(lambda: ticks.append(1))
    task = pc.start()
    with pytest.raises(RuntimeError):
        pc.start()
    await asyncio.sleep(0.07)
    assert pc.running
    await pc.stop()
    assert task.cancelled() and not pc.running
    count = len(ticks)
    await asyncio.sleep(0.05)
    assert len(ticks) == count >= 2
    await pc.stop()  # idempotent


async def test_context_manager() -> None:
    ticks: list[int] = []
    async with PacingClock(lambda: ticks.append(1)) as pc:
        await asyncio.sleep(0.05)
        assert pc.running
    assert not pc.running and ticks


async def test_tick_failure_surfaces_on_stop() -> None:
    def tick() -> None:
        raise OSError("modem gone")

    pc = PacingClock(tick)
    pc.start()
    await asyncio.sleep(0.01)
    assert not pc.running
    with pytest.raises(OSError, match="modem gone"):
        await pc.stop()


async def test_stop_from_a_cancelled_owner_propagates_cancellation() -> None:
    pc = PacingClock(lambda: None)

    async def owner() -> None:
        pc.start()
        try:
            await asyncio.sleep(10)
        finally:
            await pc.stop()

    task = asyncio.create_task(owner())
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pc.running


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        PacingClock(lambda: None, period=0)
    with pytest.raises(ValueError):
        PacingClock(lambda: None, catchup_speed=1.0)
