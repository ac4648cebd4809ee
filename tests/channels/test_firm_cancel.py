"""``cancelled_firmly``: a task that loses a cancellation (Python 3.11 ``wait_for``) is still stopped."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from channels.firm_cancel import cancelled_firmly, raise_if_cancel_lost, stop_firmly


async def test_a_swallowed_cancellation_is_repeated_until_the_task_stops() -> None:
    stopped = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # lost, as 3.11's wait_for loses one that lands as its awaitable completes
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    wrapper = asyncio.create_task(cancelled_firmly(stubborn(), name="stubborn", retry_s=0.05))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    wrapper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(wrapper, 2)
    assert stopped.is_set() and time.monotonic() - started < 1


async def test_results_and_errors_pass_through() -> None:
    async def fine() -> None:
        await asyncio.sleep(0)

    async def broken() -> None:
        raise ValueError("boom")

    await cancelled_firmly(fine(), name="fine")
    with pytest.raises(ValueError, match="boom"):
        await cancelled_firmly(broken(), name="broken")


async def test_stop_firmly_stops_a_task_that_lost_its_cancellation() -> None:
    async def loses_one() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass
        await asyncio.Event().wait()  # would wait forever after a single cancel

    async def fails() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            raise ValueError("while stopping")

    tasks = [asyncio.create_task(loses_one()), asyncio.create_task(fails())]
    await asyncio.sleep(0.01)
    await asyncio.wait_for(stop_firmly(tasks, retry_s=0.05), 2)
    assert tasks[0].cancelled()
    assert isinstance(tasks[1].exception(), ValueError)  # kept on the task, not raised


async def test_a_stop_of_the_stopper_waits_for_the_tasks_then_propagates() -> None:
    finished = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.shield(asyncio.sleep(0.2))
            finished.set()

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0.01)
    stopper = asyncio.create_task(stop_firmly([task], retry_s=1))
    await asyncio.sleep(0.01)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert finished.is_set()


async def test_raise_if_cancel_lost_only_after_a_swallowed_cancellation() -> None:
    reached: list[str] = []

    async def swallows_then_checks() -> None:
        raise_if_cancel_lost()  # nothing asked yet: goes on
        reached.append("first check")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # as 3.11's wait_for does when its awaitable completes in the same turn
        raise_if_cancel_lost()
        reached.append("past the second check")

    task = asyncio.create_task(swallows_then_checks())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert reached == ["first check"]


async def test_asyncio_timeout_inside_does_not_count_as_a_lost_cancellation() -> None:
    async def times_out_then_checks() -> str:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        raise_if_cancel_lost()
        return "went on"

    assert await times_out_then_checks() == "went on"
