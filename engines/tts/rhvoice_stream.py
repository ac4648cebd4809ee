"""Stream what a blocking, callback-driven producer pushes (RHVoice's ``play_speech``) out of its thread.

``iterate_in_thread`` (engines/thread_stream.py) pulls items from a generator;
RHVoice instead calls back with each chunk from inside ``RHVoice_speak``. Here
the producer runs in its own thread and gets ``deliver(item) -> bool``: the item
goes to the event loop's queue (``call_soon_threadsafe``, the loop never waits
on the thread), and False means "stop now" (the consumer closed the stream),
which the RHVoice callback turns into its return value 0. At most
``max_ahead`` items wait unconsumed; past that ``deliver`` waits, and a closed
stream wakes it at once, so a cancel stops synthesis within one chunk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


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
