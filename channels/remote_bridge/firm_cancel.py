"""Cancel a task until it stops: a guard for Python 3.11's ``asyncio.wait_for`` losing a cancellation.

In 3.11, ``wait_for`` returns the result instead of raising CancelledError
when its awaitable completes in the same turn as the cancellation (fixed in
3.12). aiomqtt waits with it (connect, publish), so a stop that lands just as
a connection completes can leave an MQTT loop running and the TaskGroup
around it waiting forever (a TaskGroup cancels its children only once). Every
task of the bridge that awaits aiomqtt runs under ``cancelled_firmly``: the
coroutine runs as its own task and, once asked to stop, it is cancelled again
every ``retry_s`` until it has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

RETRY_S = 0.5


async def cancelled_firmly(coro: Coroutine[Any, Any, None], *, name: str, retry_s: float = RETRY_S) -> None:
    """Await ``coro``; when this is cancelled, make sure ``coro`` really stops before returning."""
    task = asyncio.create_task(coro, name=name)
    try:
        await asyncio.wait({task})
    finally:
        while not task.done():
            task.cancel()
            try:
                await asyncio.wait({task}, timeout=retry_s)
            except asyncio.CancelledError:
                continue  # cancelled again while stopping it: keep stopping it, then propagate the first one
    task.result()  # its exception, if it failed
