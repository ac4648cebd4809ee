"""Run blocking inference off the event loop.

``iterate_in_thread`` turns a blocking generator (faster-whisper segments,
Piper sentence chunks, llama.cpp tokens) into an async iterator fed from a
worker thread. Closing the async iterator (the consumer cancelled) tells the
worker to stop after the item it is computing, so a cancelled request frees
the model within one item. The loop never waits on the thread except through
awaits.

``stream_pushed`` does the same for a producer that calls back with each item
from inside a blocking call (RHVoice's ``play_speech``): the producer gets
``deliver(item) -> bool``, the item goes to the loop's queue
(``call_soon_threadsafe``), and False means "stop now" (the consumer closed the
stream), which such a callback turns into its stop value. At most
``max_ahead`` items wait unconsumed; past that ``deliver`` waits, and a closed
stream wakes it at once, so a cancel stops the producer within one item.
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


async def stream_pushed(
    produce: Callable[[Callable[[T], bool]], None],
    *,
    name: str = "engine-push",
    max_ahead: int = 16,
) -> AsyncIterator[T]:
    """Yield what ``produce(deliver)`` delivers from a worker thread; closing the iterator makes ``deliver`` say False."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(max_ahead)

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody listens any more
            stop.set()

    def deliver(item: T) -> bool:
        if stop.is_set():
            return False
        room.acquire()  # a closed stream releases it, so this never outwaits a cancel
        if stop.is_set():
            return False
        put(item)
        return True

    def work() -> None:
        try:
            produce(deliver)
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the loop side
            put(_Raised(exc))

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
