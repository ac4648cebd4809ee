"""The lifecycle every engine facade shares: it is its fallback chain's.

SttEngine, TtsEngine, LlmEngine and VadEngine each add their
own way of serving a request; loading, recovery, closing and the status they
report are the chain's, so they inherit them from here.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from engines.backend import EngineBackend
from engines.engine_status import EngineStatus
from engines.fallback_chain import FallbackChain

B = TypeVar("B", bound=EngineBackend)


class ChainedEngine(Generic[B]):
    def __init__(self, chain: FallbackChain[B]) -> None:
        self._chain = chain

    @property
    def chain(self) -> FallbackChain[B]:
        return self._chain

    @property
    def status(self) -> EngineStatus:
        return self._chain.status

    async def start(self) -> EngineStatus:
        """Load and warm up every backend of the chain."""
        return await self._chain.start()

    async def recover_forever(self) -> None:
        """Reload failed backends with backoff until cancelled (the owner runs this in its TaskGroup)."""
        await self._chain.recover_forever()

    async def close(self) -> None:
        await self._chain.close()
