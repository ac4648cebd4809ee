"""A loaded engine and the live calls using it: a reload's new engine never closes the old one under a call.

A call leases each engine it starts with (``lease``). When a reload replaces
the engine's service, the old service ``retire``s its engine instead of
closing it: with no lease out it is closed at once; otherwise it keeps
serving the calls that hold it, and the last of them to let go closes it
(awaited in that call's own task, after its record is final). New calls
only ever see the engine of the service that runs now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("secretary.engines")

CLOSE_TIMEOUT_S = 30.0  # a retired engine's close (a worker process ending) when its last call lets go


class Closable(Protocol):
    async def close(self) -> None: ...


E = TypeVar("E", bound=Closable)


class EngineUsers(Generic[E]):
    """One loaded engine of ``name``, how many live calls hold it, and its close once retired and free."""

    def __init__(self, name: str, engine: E) -> None:
        self.name = name
        self.engine = engine
        self._leases = 0
        self._retired = False
        self._closed = False

    @property
    def leases(self) -> int:
        return self._leases

    @property
    def retired(self) -> bool:
        return self._retired

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[E]:
        """The engine, kept open until the block ends (even if its service is replaced meanwhile)."""
        if self._closed:
            raise RuntimeError(f"the {self.name} engine is closed")
        self._leases += 1
        try:
            yield self.engine
        finally:
            self._leases -= 1
            if self._retired and self._leases == 0:
                log.info("closing a replaced engine: its last call has ended", extra={"engine": self.name})
                await self._close()

    async def retire(self) -> None:
        """Its service stops (a reload, or the daemon's stop): close now, or when the last call lets go."""
        self._retired = True
        if self._leases == 0:
            await self._close()
        else:
            log.info("a replaced engine serves its live calls to their end", extra={"engine": self.name,
                                                                                  "calls": self._leases})

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.engine.close()
        except TimeoutError:
            log.error("a replaced engine did not close in time", extra={"engine": self.name,
                                                                        "timeout_s": CLOSE_TIMEOUT_S})
        except Exception:  # noqa: BLE001 - the call that let go has ended well; its engine's close is not its fault
            log.exception("a replaced engine failed to close", extra={"engine": self.name})
