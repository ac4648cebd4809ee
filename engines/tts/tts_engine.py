"""The TTS engine's facade: normalise the text, pick a backend that speaks the language, stream audio.

``TtsEngine`` owns a ``FallbackChain[TtsBackend]`` (e.g. XTTS ->
Piper -> espeak-ng). For each request it:

1. validates it: a language no configured backend speaks, or an unknown
   intonation preset, is a ``RequestError`` (the caller's mistake: no failover);
2. normalises the text for speech (numbers, dates, phone numbers, currency,
   abbreviations, Latin words in Russian) with ``engines.text_normalize``;
3. streams it from the first healthy backend that speaks the language; a
   backend without a voice for it is skipped for this request only (Russian
   goes past an English-only Piper to espeak-ng), through the chain's
   per-request skip;
4. when a backend fails mid-stream, lets the next one re-synthesise only what
   the caller has not heard: whole sentences already delivered (chunks carry
   the text of the sentence they complete) are dropped from the text, and the
   audio already played of an unfinished sentence is skipped by duration. The
   caller does not hear the same words twice.

Chunks are mono int16; ``sample_rate`` is per chunk and can change within one
stream when a fallback with another rate takes over. A chunk may be empty: it
then only marks the end of the sentence in its ``text`` (XTTS streams below
sentence level).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np

from engines.chained_engine import ChainedEngine
from engines.engine_status import EngineStatus
from engines.fallback_chain import BackendSlot, FallbackChain, Progress, RequestError
from engines.text_normalize import normalize
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend
from engines.tts.intonation_presets import PresetBook, UnknownPreset
from engines.tts.sentences import split_sentences

log = logging.getLogger("secretary.engines.tts")


@dataclass(frozen=True)
class ResumePoint:
    """Where a fallback backend picks up a request: the text still to speak, audio of it already heard."""

    text: str
    skip_s: float


def resume_point(text: str, delivered: Sequence[AudioChunk]) -> ResumePoint:
    """What is left to say of ``text`` after ``delivered`` reached the caller.

    Whole sentences are matched by the text their last chunk carries; audio
    after the last completed sentence is the heard part of the next one. If the
    delivered sentences cannot be found in order in ``text`` (should not
    happen), all delivered audio is skipped from a full re-synthesis instead.
    """
    remaining = text
    partial_s = 0.0
    for chunk in delivered:
        if not chunk.text:
            partial_s += chunk.duration_s
            continue
        sentence = chunk.text.strip()
        position = remaining.find(sentence)
        if position < 0 or any(ch.isalnum() for ch in remaining[:position]):
            return ResumePoint(text, sum(c.duration_s for c in delivered))
        remaining = remaining[position + len(sentence):]
        partial_s = 0.0
    return ResumePoint(remaining.strip(), partial_s)


async def skip_audio(chunks: AsyncIterator[AudioChunk], skip_s: float) -> AsyncIterator[AudioChunk]:
    """``chunks`` without their first ``skip_s`` seconds of audio (sentence marks are kept)."""
    remaining = skip_s
    async with contextlib.aclosing(chunks) as source:
        async for chunk in source:
            if remaining <= 0 or len(chunk.samples) == 0:
                yield chunk
                continue
            cut = int(round(remaining * chunk.sample_rate))
            remaining -= chunk.duration_s
            if cut >= len(chunk.samples):
                if chunk.text:
                    yield AudioChunk(np.zeros(0, dtype=np.int16), chunk.sample_rate, chunk.text)
                continue
            remaining = 0.0
            yield AudioChunk(chunk.samples[cut:], chunk.sample_rate, chunk.text)


async def _nothing() -> AsyncIterator[AudioChunk]:
    return
    yield  # pragma: no cover - makes this an async generator


class TtsEngine(ChainedEngine[TtsBackend]):
    """Text in, audio chunks out, over an ordered chain of TTS backends."""

    def __init__(
        self,
        slots: Sequence[BackendSlot[TtsBackend]],
        *,
        on_status: Callable[[EngineStatus], None] | None = None,
        presets: PresetBook | None = None,
        first_chunk_timeout_s: float | None = 10.0,
        normalizer: Callable[[str, str], str] = normalize,
        retry_initial_s: float = 10.0,
        retry_max_s: float = 300.0,
        load_timeout_s: float = 300.0,
    ) -> None:
        self._built: dict[str, TtsBackend] = {}
        super().__init__(
            FallbackChain(
                "tts",
                [BackendSlot(slot.label, self._remembering(slot)) for slot in slots],
                on_status,
                retry_initial_s=retry_initial_s,
                retry_max_s=retry_max_s,
                load_timeout_s=load_timeout_s,
            )
        )
        self._presets = presets or PresetBook()
        self._first_chunk_timeout_s = first_chunk_timeout_s
        self._normalize = normalizer

    def _remembering(self, slot: BackendSlot[TtsBackend]) -> Callable[[], TtsBackend]:
        def build() -> TtsBackend:
            backend = slot.build()
            self._built[slot.label] = backend
            return backend

        return build

    @property
    def languages(self) -> frozenset[str]:
        """Languages some configured backend speaks (known once ``start`` has built them)."""
        spoken: set[str] = set()
        for backend in self._built.values():
            spoken |= backend.languages
        return frozenset(spoken)

    # -- serving -------------------------------------------------------------------

    def _validate(self, request: SynthesisRequest) -> None:
        if self._built and request.language not in self.languages:
            offered = "; ".join(f"{label}: {', '.join(sorted(b.languages))}" for label, b in self._built.items())
            raise RequestError(f"no TTS backend speaks {request.language!r} (configured: {offered})")
        try:
            self._presets.get(request.preset)
        except UnknownPreset as exc:
            raise RequestError(str(exc)) from None

    async def synthesize(
        self, request: SynthesisRequest, backends: Collection[str] | None = None
    ) -> AsyncIterator[AudioChunk]:
        """Stream the request's speech; closing the iterator cancels it on the backend.

        ``backends`` limits which chain labels may serve (a persona's voice);
        None allows them all.
        """
        self._validate(request)
        allowed = None if backends is None else frozenset(backends)
        text = self._normalize(request.text, request.language)
        if not split_sentences(text):
            return
        spoken = replace(request, text=text)

        def op(backend: TtsBackend, progress: Progress[AudioChunk]) -> AsyncIterator[AudioChunk]:
            if not progress.delivered:
                return backend.synthesize(spoken)
            point = resume_point(text, progress.delivered)
            log.info(
                "tts: %s resumes after %d chunks: %d chars left, skipping %.2f s already heard",
                backend.name, len(progress.delivered), len(point.text), point.skip_s,
            )
            if not split_sentences(point.text):
                return _nothing()
            return skip_audio(backend.synthesize(replace(spoken, text=point.text)), point.skip_s)

        async with contextlib.aclosing(self._chain.stream(
                op,
                first_item_timeout_s=self._first_chunk_timeout_s,
                eligible=lambda backend: backend.speaks(spoken.language)
                and (allowed is None or self._chain.label_of(backend) in allowed),
            )) as chunks:
            async for chunk in chunks:
                yield chunk
