"""One engine (vad, stt, llm, tts) as a supervised service.

The service builds the engine from config (its facade over a fallback
chain), loads and warms up every backend (progress and the result on
``engines/<name>/state``, retained), then keeps retrying failed backends
until it is stopped. The call flow reaches the engine through ``engine``,
which exists while the service runs; a call ``lease``s it for its whole
length, so a reload that replaces the service lets live calls finish on the
old engine (``engine_users.py``) while the new one loads. A chain where
nothing could load leaves the service degraded, not crashed: the call flow
then uses its scripted fallbacks, and the chain keeps retrying in the
background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from channels.bus_contract import box_payloads
from channels.bus_contract.topics import engine_state
from daemon.bus.connection import Bus
from daemon.engine_host.engine_users import EngineUsers
from daemon.runtime.service import Service, ServiceStatus
from engines.engine_status import EngineState, EngineStatus

log = logging.getLogger("secretary.engines")


class Engine(Protocol):
    """What every engine facade (SttEngine, TtsEngine, LlmEngine, ...) offers its owner."""

    @property
    def status(self) -> EngineStatus: ...

    async def start(self) -> EngineStatus: ...

    async def recover_forever(self) -> None: ...

    async def close(self) -> None: ...


E = TypeVar("E", bound=Engine)


@dataclass(frozen=True)
class ChainTiming:
    retry_initial_s: float = 10.0
    retry_max_s: float = 300.0
    load_timeout_s: float = 300.0


StatusSink = Callable[[EngineStatus], None]


class EngineService(Service, Generic[E]):
    def __init__(
        self,
        engine: str,
        bus: Bus,
        build: Callable[[StatusSink], E],
        *,
        config: Any,
        load_gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.name = engine
        self.bus = bus
        self._build = build
        self._config = config
        self.engine: E | None = None
        self._users: EngineUsers[E] | None = None  # the loaded engine and the calls holding it
        self._run: object | None = None  # this run's token: a retired engine's status is not the bus's state
        self._status: ServiceStatus | None = None
        self._loaded = asyncio.Event()
        # Engines sharing a gate load one at a time: on a 2-core box parallel
        # loads gain nothing and starve the event loop of CPU.
        self._load_gate = load_gate

    def config_slice(self) -> Any:
        return self._config

    async def wait_loaded(self) -> EngineStatus:
        """Wait until the first load has finished (ready, degraded or failed)."""
        await self._loaded.wait()
        assert self.engine is not None
        return self.engine.status

    def lease(self) -> AbstractAsyncContextManager[E | None]:
        """The loaded engine (None if none is), kept open for the block even if a reload replaces this service."""
        users = self._users
        if users is None:
            return contextlib.nullcontext(None)
        return users.lease()

    def _on_status(self, status: EngineStatus) -> None:
        self.bus.publish_state(engine_state(self.name), engine_state_payload(status).encode())
        service = self._status
        if service is None:
            return
        if status.state is EngineState.READY:
            service.ready(f"{status.backend} on {status.device}")
        elif status.state in (EngineState.DEGRADED, EngineState.FAILED):
            service.degraded(status.detail)

    async def run(self, status: ServiceStatus) -> None:
        self._status = status
        run = self._run = object()

        def on_status(engine_status: EngineStatus) -> None:
            if self._run is run:  # an engine this run retired (serving its last calls) no longer speaks for it
                self._on_status(engine_status)

        engine = self._build(on_status)
        try:
            if self._load_gate is not None:
                async with self._load_gate:
                    await engine.start()
            else:
                await engine.start()
            self._users = EngineUsers(self.name, engine)
            self.engine = engine
            self._loaded.set()
            await engine.recover_forever()
        finally:
            users, self._users = self._users, None
            self._run = None
            self.engine = None
            self._loaded.clear()
            self._status = None
            if users is None:
                await engine.close()
            else:  # closed now, or by the last live call that holds it
                await users.retire()



def engine_state_payload(status: EngineStatus) -> box_payloads.EngineState:
    """An engine's own report (``engines`` cannot import the contract), checked against ``engines/<name>/state``."""
    return box_payloads.EngineState.decode(status.as_payload())
