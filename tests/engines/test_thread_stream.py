"""iterate_in_thread: items arrive in order, errors cross over, closing stops the worker, the loop stays free."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from engines.thread_stream import iterate_in_thread


async def test_items_errors_and_order() -> None:
    def numbers(stop: threading.Event) -> Iterator[int]:
        yield from range(50)

    assert [x async for x in iterate_in_thread(numbers)] == list(range(50))

    def broken(stop: threading.Event) -> Iterator[int]:
        yield 1
        raise ValueError("model exploded")

    got: list[int] = []
    with pytest.raises(ValueError, match="model exploded"):
        async for x in iterate_in_thread(broken):
            got.append(x)
    assert got == [1]


async def test_closing_stops_the_worker_and_the_loop_never_waits() -> None:
    produced: list[int] = []
    finished = threading.Event()

    def slow(stop: threading.Event) -> Iterator[int]:
        try:
            for n in range(1000):
                if stop.is_set():
                    return
                time.sleep(0.02)  # a blocking "inference step"
                produced.append(n)
                yield n
        finally:
            finished.set()

    lags: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async with asyncio.TaskGroup() as tg:
        tick = tg.create_task(ticker())
        stream = iterate_in_thread(slow)
        async for n in stream:
            if n == 5:
                break
        await stream.aclose()
        await asyncio.to_thread(finished.wait, 2.0)
        tick.cancel()
    assert finished.is_set()
    assert len(produced) < 20, "the worker stopped soon after the consumer left"
    assert max(lags) < 0.05
