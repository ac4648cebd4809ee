"""The VAD engine as the call flow sees it: a fresh speech detector per call on the serving backend.

It also carries the optional turn-end model (``engines.turn_end``): the call's
ears use the two together, so the model loads after the VAD backends, with
this engine, and its state is noted in this engine's status.
"""

from __future__ import annotations

from engines.chained_engine import ChainedEngine
from engines.engine_status import EngineStatus
from engines.fallback_chain import FallbackChain
from engines.turn_end.interface import TurnEndModel
from engines.turn_end.turn_end_loader import TurnEndLoader
from engines.vad.interface import VadBackend
from engines.vad.speech_detector import DetectorSettings, SpeechDetector


class VadEngine(ChainedEngine[VadBackend]):
    def __init__(
        self, chain: FallbackChain[VadBackend], detector: DetectorSettings, turn_end: TurnEndLoader | None = None,
    ) -> None:
        """``turn_end``: the optional turn-end model; its ``relay`` should be the chain's status sink."""
        super().__init__(chain)
        self.detector = detector
        self._turn_end = turn_end

    @property
    def status(self) -> EngineStatus:
        status = self._chain.status
        return self._turn_end.annotate(status) if self._turn_end is not None else status

    @property
    def turn_end(self) -> TurnEndModel | None:
        """The loaded turn-end model; None: the turn ends after the fixed silence window (the status says why)."""
        return self._turn_end.model if self._turn_end is not None else None

    async def start(self) -> EngineStatus:
        """Load the VAD backends, then the turn-end model (a failure of the latter only leaves it off)."""
        await super().start()
        if self._turn_end is not None:
            await self._turn_end.load()
        return self.status

    async def close(self) -> None:
        if self._turn_end is not None:
            await self._turn_end.close()
        await super().close()

    def open_detector(self, sample_rate: int, settings: DetectorSettings | None = None) -> SpeechDetector:
        """A detector with its own model state for one call's audio at ``sample_rate``.

        ``settings`` overrides the engine's detector settings (the call flow sets
        its own endpointing window and barge-in onset).
        """
        return SpeechDetector(self._chain.active.open(sample_rate), settings or self.detector)
