"""The VAD engine as the call flow sees it: a fresh speech detector per call on the serving backend."""

from __future__ import annotations

from engines.chained_engine import ChainedEngine
from engines.fallback_chain import FallbackChain
from engines.vad.interface import VadBackend
from engines.vad.speech_detector import DetectorSettings, SpeechDetector


class VoiceActivity(ChainedEngine[VadBackend]):
    def __init__(self, chain: FallbackChain[VadBackend], detector: DetectorSettings) -> None:
        super().__init__(chain)
        self.detector = detector

    def open_detector(self, sample_rate: int) -> SpeechDetector:
        """A detector with its own model state for one call's audio at ``sample_rate``."""
        return SpeechDetector(self._chain.active.open(sample_rate), self.detector)
