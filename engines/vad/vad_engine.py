"""The VAD engine as the call flow sees it: a fresh speech detector per call on the serving backend."""

from __future__ import annotations

from engines.chained_engine import ChainedEngine
from engines.fallback_chain import FallbackChain
from engines.vad.interface import VadBackend
from engines.vad.speech_detector import DetectorSettings, SpeechDetector


class VadEngine(ChainedEngine[VadBackend]):
    def __init__(self, chain: FallbackChain[VadBackend], detector: DetectorSettings) -> None:
        super().__init__(chain)
        self.detector = detector

    def open_detector(self, sample_rate: int, settings: DetectorSettings | None = None) -> SpeechDetector:
        """A detector with its own model state for one call's audio at ``sample_rate``.

        ``settings`` overrides the engine's detector settings (the call flow sets
        its own endpointing window and barge-in onset).
        """
        return SpeechDetector(self._chain.active.open(sample_rate), settings or self.detector)
