"""What every TTS backend promises: a request in, a stream of mono int16 chunks out.

A ``SynthesisRequest`` carries text that is already normalised (numbers, dates
and abbreviations spelled out) plus the language, an optional voice name and an
optional intonation preset. A backend streams ``AudioChunk``s as soon as it has
them (Piper and espeak-ng one per sentence, XTTS several per sentence).

``AudioChunk.text`` ties audio to words so a fallback backend can resume a
request without repeating what the caller already heard: it names the sentence
whose speech *ends* in this chunk. Chunks in the middle of a sentence carry
``""``; a backend that streams below sentence level may close a sentence with an
empty chunk (no samples) that only carries the text.

Only stdlib, numpy and ``engines.backend`` are imported here: the worker process
(another interpreter, another venv) uses these types too.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from engines.backend import EngineBackend


@dataclass(frozen=True)
class SynthesisRequest:
    """One utterance to speak. ``voice``/``preset`` of ``None`` mean the backend's defaults."""

    text: str
    language: str = "en"
    voice: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"SynthesisRequest.text must be str, not {type(self.text).__name__}")
        if not isinstance(self.language, str) or not self.language:
            raise ValueError(f"SynthesisRequest.language must be a language code like 'en' or 'ru', got {self.language!r}")

    def as_json(self) -> dict[str, str | None]:
        return {"text": self.text, "language": self.language, "voice": self.voice, "preset": self.preset}

    @classmethod
    def from_json(cls, data: object) -> SynthesisRequest:
        if not isinstance(data, dict):
            raise ValueError(f"a synthesis request must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"text", "language", "voice", "preset"}
        if unknown:
            raise ValueError(f"unknown synthesis request fields: {sorted(unknown)}")
        text, language = data.get("text"), data.get("language", "en")
        voice, preset = data.get("voice"), data.get("preset")
        if not isinstance(text, str) or not isinstance(language, str):
            raise ValueError("a synthesis request needs string 'text' and 'language'")
        if voice is not None and not isinstance(voice, str):
            raise ValueError("'voice' must be a string or null")
        if preset is not None and not isinstance(preset, str):
            raise ValueError("'preset' must be a string or null")
        return cls(text=text, language=language, voice=voice, preset=preset)


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Mono int16 samples at ``sample_rate``; ``text`` is the sentence this chunk completes ('' mid-sentence)."""

    samples: np.ndarray
    sample_rate: int
    text: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.samples, np.ndarray) or self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError("AudioChunk.samples must be a 1-D numpy int16 array (mono PCM)")
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ValueError(f"AudioChunk.sample_rate must be a positive int, got {self.sample_rate!r}")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @classmethod
    def from_float(cls, audio: np.ndarray, sample_rate: int, text: str = "") -> AudioChunk:
        """Build a chunk from float samples in [-1, 1] (clipped)."""
        floats = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
        samples = np.round(floats * 32767.0).astype(np.int16)
        return cls(samples=samples, sample_rate=int(sample_rate), text=text)

    def __repr__(self) -> str:
        return f"AudioChunk({len(self.samples)} samples @ {self.sample_rate} Hz, {self.duration_s:.2f} s, text={self.text!r})"


class TtsBackend(EngineBackend):
    """A TTS backend: which languages it speaks and how it streams a request."""

    name = "tts"

    @property
    @abstractmethod
    def languages(self) -> frozenset[str]:
        """Languages this backend can speak with its configuration (known before ``load``)."""

    def speaks(self, language: str) -> bool:
        return language in self.languages

    @abstractmethod
    def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        """Stream the request's audio. Closing the iterator cancels the synthesis.

        Raise ``RequestError`` (engines.fallback_chain) for a request this backend
        can never serve (unknown voice or preset), ``BackendError`` when the
        backend itself fails.
        """


_WARMUP_TEXT = {"en": "Hello, how can I help you?", "ru": "Здравствуйте, чем могу помочь?"}


def warmup_text(language: str) -> str:
    """A short real sentence in ``language`` for a backend's first (warm-up) inference."""
    return _WARMUP_TEXT.get(language, _WARMUP_TEXT["en"])
