"""What every speech-to-text backend does: audio of one utterance in, text out.

A backend's ``transcribe`` takes the caller's utterance as an async stream of
float32 mono chunks at 16 kHz, samples in [-1, 1) (``engines.audio_format``;
any chunk size, as they come off the line) and yields events: zero or more
``SttPartial`` (the text so far, for streaming backends like Vosk) and then
exactly one ``SttFinal`` with the text, the language, how much audio it heard
and how long it computed. The utterance ends when the audio stream ends (the
VAD decides that upstream).

Bad input (wrong dtype, a 2-D chunk) is the caller's error: it raises
``RequestError`` so a fallback chain does not fail over on it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from engines.audio_format import DTYPE, PCM16_SCALE, SAMPLE_RATE, Samples, checked
from engines.backend import EngineBackend
from engines.fallback_chain import RequestError

WARM_UP_NOISE_RMS = 300 / PCM16_SCALE
"""Quiet line noise (about -41 dBFS) that backends decode once while warming up."""


@dataclass(frozen=True)
class SttPartial:
    """The text recognised so far in this utterance (it may still change)."""

    text: str


@dataclass(frozen=True)
class SttSegment:
    """A stretch of the utterance and its text; times in seconds from the utterance start."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class SttFinal:
    """The utterance's transcript.

    ``audio_s`` is the audio heard; ``processing_s`` the wall time the backend
    spent recognising it (for segment backends: decoding after the audio
    ended; for streaming ones: the sum of all recogniser calls).
    """

    text: str
    language: str
    audio_s: float
    processing_s: float
    segments: tuple[SttSegment, ...] = ()


SttEvent = SttPartial | SttFinal


class SttBackend(EngineBackend):
    """One way to turn an utterance into text."""

    # True: recognises while the audio arrives (partials, a final right after the end). False: reads
    # the whole utterance, then decodes it (whisper): the caller's listener decides when to start.
    streaming: bool = False

    @abstractmethod
    def transcribe(self, audio: AsyncIterator[np.ndarray], language: str | None) -> AsyncIterator[SttEvent]:
        """Yield partials, then exactly one ``SttFinal``, for the 16 kHz float32 mono ``audio``.

        ``language`` is an ISO 639-1 code (the persona's language) or None to
        let the backend decide. Closing the returned iterator stops the work.
        """


def checked_chunk(chunk: object) -> Samples:
    """A private 1-D float32 copy of ``chunk`` (the caller may reuse its buffer), or ``RequestError``.

    A column or row (one dimension of 1) is taken as mono.
    """
    if isinstance(chunk, np.ndarray) and chunk.ndim == 2 and 1 in chunk.shape:
        chunk = chunk.reshape(-1)
    return checked(chunk, "STT", RequestError).copy()


def warm_up_noise(seconds: float) -> Samples:
    """``seconds`` of seeded white noise at ``WARM_UP_NOISE_RMS``: the same audio on every warm-up."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(round(SAMPLE_RATE * seconds)) * WARM_UP_NOISE_RMS).astype(DTYPE)
