"""Run blocking inference off the event loop.

``iterate_in_thread`` turns a blocking generator (faster-whisper segments,
Piper sentence chunks, llama.cpp tokens) into an async iterator fed from a
worker thread. Closing the async iterator (the consumer cancelled) tells the
worker to stop after the item it is computing, so a cancelled request frees
the model within one item. The loop never waits on the thread except through
awaits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


async def iterate_in_thread(
    make: Callable[[threading.Event], Iterator[T]],
    *,
    name: str = "engine-worker",
    max_ahead: int = 8,
) -> AsyncIterator[T]:
    """Yield the items ``make(stop)`` produces in a worker thread.

    ``make`` receives a ``threading.Event`` that is set when the consumer stops
    listening; long-running producers should check it between items. At most
    ``max_ahead`` items are buffered before the worker waits.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(max_ahead)

    def put(item: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            for item in make(stop):
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                put(item)
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the loop side
            try:
                put(_Raised(exc))
            except RuntimeError:  # loop already closed
                pass
        finally:
            if stop.is_set():
                try:
                    put(_DONE)
                except RuntimeError:
                    pass

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            room.release()
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        room.release()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
