"""The bounded queue behind event subscriptions and PCM downlink frames."""

from __future__ import annotations

import asyncio

import pytest

from drivers.sim7600.drop_oldest_queue import DropOldestQueue


async def test_full_queue_drops_oldest_and_says_so() -> None:
    queue: DropOldestQueue[int] = DropOldestQueue(2)
    assert [queue.push(n) for n in range(4)] == [False, False, True, True]
    assert queue.snapshot() == [2, 3]
    assert await queue.get() == 2


async def test_close_wakes_reader_after_draining() -> None:
    queue: DropOldestQueue[str] = DropOldestQueue(5)
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.push("last")
    assert await waiter == "last"
    queue.push("left over")
    queue.close()
    assert queue.push("after close") is False
    assert await queue.get() == "left over"
    assert await queue.get() is None


async def test_timeout_returns_none() -> None:
    assert await DropOldestQueue[int](1).get(timeout=0.01) is None


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DropOldestQueue[int](0)
