"""How a persona sounds: the synthesis request for a text, and which TTS backends may speak it."""

from __future__ import annotations

from dataclasses import dataclass

from config.persona_schema import PersonaConfig
from engines.tts.interface import SynthesisRequest


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
