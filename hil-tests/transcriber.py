"""What the rig heard, in words: the repo's faster-whisper backend on the box's 8 kHz audio.

The test side runs its own whisper (the packaged base model, on the CPU), so
the check does not trust the box's account of what it said: the audio that
came down the line is resampled to 16 kHz float32 (the engines' audio
format) and transcribed. Matching is by word and tolerant of spelling
(``Lidia`` heard as ``Lydia``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from difflib import SequenceMatcher
from pathlib import Path
from types import TracebackType

import numpy as np
from rig_audio import SAMPLE_RATE, Samples

from drivers.audio.resample import StreamResampler
from engines.audio_format import SAMPLE_RATE as STT_RATE
from engines.stt.faster_whisper_backend import FasterWhisperBackend, FasterWhisperSettings
from engines.stt.interface import SttFinal

WORD_SIMILARITY = 0.85
_SPELLINGS = (("ph", "f"), ("ck", "k"), ("y", "i"))


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _spoken(word: str) -> str:
    """A word with spellings that sound alike made alike (Lydia, Lidia -> lidia) and doubled letters single."""
    word = word.lower()
    for written, sound in _SPELLINGS:
        word = word.replace(written, sound)
    return re.sub(r"(.)\1+", r"\1", word)


def has_word(text: str, word: str) -> bool:
    """``word`` (or a near spelling of it) is one of the words of ``text``."""
    target = _spoken(word)
    return any(SequenceMatcher(None, target, _spoken(w)).ratio() >= WORD_SIMILARITY for w in words(text))


def word_recall(expected: str, heard: str, min_length: int = 4) -> float:
    """Share of the longer words of ``expected`` that are in ``heard`` (near spellings count)."""
    wanted = [w for w in words(expected) if len(w) >= min_length]
    if not wanted:
        raise ValueError(f"no word of {min_length}+ letters in {expected!r}")
    return sum(has_word(heard, w) for w in wanted) / len(wanted)


class Transcriber:
    def __init__(self, models_dir: Path) -> None:
        self._backend = FasterWhisperBackend(FasterWhisperSettings(device="cpu", cpu_threads=2), models_dir)

    async def __aenter__(self) -> Transcriber:
        await self._backend.load()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._backend.close()

    async def transcribe(self, samples: Samples, language: str) -> str:
        """The text of 8 kHz int16 ``samples``."""
        resampler = StreamResampler(SAMPLE_RATE, STT_RATE)
        wide = np.concatenate([resampler.process(samples), resampler.flush()])
        async for event in self._backend.transcribe(_once(wide), language):
            if isinstance(event, SttFinal):
                return event.text
        raise AssertionError("faster-whisper gave no final transcript")


async def _once(chunk: np.ndarray) -> AsyncIterator[np.ndarray]:
    yield chunk
