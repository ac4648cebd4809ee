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
import contextlib
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
    stop = threading.Event()

    def produce(deliver: Callable[[T], bool]) -> None:
        for item in make(stop):
            if not deliver(item):
                return

    async with contextlib.aclosing(stream_pushed(produce, name=name, max_ahead=max_ahead, stop=stop)) as items:
        async for item in items:
            yield item


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def stream_pushed(
    produce: Callable[[Callable[[T], bool]], None],
    *,
    name: str = "engine-push",
    max_ahead: int = 16,
    stop: threading.Event | None = None,
) -> AsyncIterator[T]:
    """Yield what ``produce(deliver)`` delivers from a worker thread; closing the iterator makes ``deliver`` say False.

    ``stop`` (made here if not given) is set once the consumer stops listening.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = stop if stop is not None else threading.Event()
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
