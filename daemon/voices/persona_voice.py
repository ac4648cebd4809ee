"""How a persona sounds: the synthesis request for a text, which TTS backends may speak it, its audio at a rate."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from config.persona_schema import PersonaConfig
from drivers.audio import StreamResampler
from engines.tts.interface import SynthesisRequest
from engines.tts.tts_engine import TtsEngine


@dataclass(frozen=True)
class PersonaVoice:
    language: str
    voice: str | None = None
    preset: str | None = None
    backends: tuple[str, ...] | None = None  # None: every backend of the TTS chain

    @classmethod
    def of(cls, persona: PersonaConfig) -> PersonaVoice:
        v = persona.voice
        return cls(persona.language, v.name, v.preset, None if v.tts is None else tuple(v.tts))

    def request(self, text: str) -> SynthesisRequest:
        return SynthesisRequest(text=text, language=self.language, voice=self.voice, preset=self.preset)

    def cache_key(self) -> str:
        return f"{self.language}|{self.voice}|{self.preset}|{','.join(self.backends or ('*',))}"


async def spoken_at_rate(
    tts: TtsEngine, voice: PersonaVoice, text: str, rate: int, backends: tuple[str, ...] | None = None,
) -> AsyncIterator[np.ndarray]:
    """``text`` in ``voice`` as float32 chunks at ``rate``, whatever rate each TTS backend produces."""
    resampler: StreamResampler | None = None
    async with contextlib.aclosing(tts.synthesize(voice.request(text), backends or voice.backends)) as chunks:
        async for chunk in chunks:
            if resampler is None or resampler.in_rate != chunk.sample_rate:
                if resampler is not None:
                    yield resampler.flush()
                resampler = StreamResampler(chunk.sample_rate, rate)
            yield resampler.process(chunk.samples)
    if resampler is not None:
        yield resampler.flush()
