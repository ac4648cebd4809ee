"""``cancelled_firmly``: a task that loses a cancellation (Python 3.11 ``wait_for``) is still stopped."""

from __future__ import annotations

import asyncio
import time

import pytest

from channels.remote_bridge.firm_cancel import cancelled_firmly


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
