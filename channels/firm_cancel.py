"""Cancel a task until it stops: a guard for Python 3.11's ``asyncio.wait_for`` losing a cancellation.

In 3.11, ``wait_for`` returns the result instead of raising CancelledError
when its awaitable completes in the same turn as the cancellation (fixed in
3.12). aiomqtt waits with it (connect, subscribe, publish), so a stop that
lands just as a publish is acknowledged can leave an MQTT loop running, and
whoever waits for that loop (``gather``, a TaskGroup, the supervisor) waits
forever: they cancel only once. Our own code never calls ``wait_for``
(``asyncio.timeout`` has no such race); for the loops that await aiomqtt:

- ``cancelled_firmly(coro)`` runs ``coro`` as its own task; once asked to
  stop, it cancels that task again every ``retry_s`` until it has stopped.
  Only for coroutines whose clean-up does not await for long.
- ``stop_firmly(tasks)`` does the same for tasks one already holds.
- ``raise_if_cancel_lost()`` is for the point where a task is about to wait
  for good: if a stop was asked of it and swallowed, it stops there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any

RETRY_S = 0.5


async def stop_firmly(tasks: Iterable[asyncio.Task[Any]], *, retry_s: float = RETRY_S) -> None:
    """Cancel ``tasks`` and return once every one has finished, cancelling again those that lost it.

    What they raised while stopping is not passed on (it counts as read); the tasks still hold it.
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    interrupted: asyncio.CancelledError | None = None
    clock = asyncio.get_running_loop().time
    retry_at = clock()
    while pending:
        if clock() >= retry_at:
            for task in pending:
                task.cancel()
            retry_at = clock() + retry_s
        try:
            _, pending = await asyncio.wait(pending, timeout=max(retry_at - clock(), 0))
        except asyncio.CancelledError as exc:  # stopped while stopping them: finish that, then pass it on
            interrupted = exc
    for task in tasks:
        if not task.cancelled():
            task.exception()
    if interrupted is not None:
        raise interrupted


async def cancelled_firmly(coro: Coroutine[Any, Any, None], *, name: str, retry_s: float = RETRY_S) -> None:
    """Await ``coro``; when this is cancelled, make sure ``coro`` really stops before returning."""
    task = asyncio.create_task(coro, name=name)
    try:
        await asyncio.wait({task})
    finally:
        await stop_firmly([task], retry_s=retry_s)
    task.result()  # its exception, if it failed


def raise_if_cancel_lost() -> None:
    """Raise CancelledError if this task was asked to stop and the request was swallowed on the way."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
