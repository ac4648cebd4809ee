"""TtsEngine: normalises, routes by language, validates, resumes a failed stream without repeating words."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendError
from engines.engine_status import EngineState, EngineStatus
from engines.fallback_chain import BackendSlot, RequestError
from engines.tts.backend_factory import build_tts_backend
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend
from engines.tts.sentences import split_sentences
from engines.tts.settings import EspeakSettings, PiperSettings
from engines.tts.tts_engine import TtsEngine, resume_point, skip_audio

RATE = 1000  # scripted backends: 1 sample = 1 ms, values count up so a test can see exactly what was played


class Scripted(TtsBackend):
    """A backend whose audio encodes position: sentence s, sample k has value s * 1000 + k."""

    def __init__(
        self,
        name: str,
        languages: set[str],
        *,
        chunk_ms: int = 500,
        fail_after_chunks: int | None = None,
        first_delay_s: float = 0.0,
    ) -> None:
        self.name = name
        self._languages = frozenset(languages)
        self.chunk_ms = chunk_ms
        self.fail_after_chunks = fail_after_chunks
        self.first_delay_s = first_delay_s
        self.requests: list[SynthesisRequest] = []
        self.closed = False

    @property
    def languages(self) -> frozenset[str]:
        return self._languages

    async def load(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        self.requests.append(request)
        if self.first_delay_s:
            await asyncio.sleep(self.first_delay_s)
        sent = 0
        for index, sentence in enumerate(split_sentences(request.text)):
            for half in (0, 1):
                if self.fail_after_chunks is not None and sent >= self.fail_after_chunks:
                    raise BackendError(f"{self.name} crashed")
                start = half * self.chunk_ms
                values = index * 1000 + np.arange(start, start + self.chunk_ms)
                yield AudioChunk(values.astype(np.int16), RATE, sentence if half else "")
                sent += 1
                await asyncio.sleep(0)


def _slots(*backends: TtsBackend) -> list[BackendSlot[TtsBackend]]:
    return [BackendSlot(b.name, lambda b=b: b) for b in backends]


async def _collect(synthesizer: TtsEngine, request: SynthesisRequest) -> list[AudioChunk]:
    return [c async for c in synthesizer.synthesize(request)]


def test_resume_point() -> None:
    text = "One two. Three four. Five six."
    silent = np.zeros(500, dtype=np.int16)
    assert resume_point(text, []) == resume_point(text, ())
    assert resume_point(text, []).text == text
    heard = [AudioChunk(silent, 1000, ""), AudioChunk(silent, 1000, "One two.")]
    assert resume_point(text, heard).text == "Three four. Five six." and resume_point(text, heard).skip_s == 0
    heard.append(AudioChunk(silent[:300], 1000, ""))
    point = resume_point(text, heard)
    assert point.text == "Three four. Five six." and point.skip_s == pytest.approx(0.3)
    everything = heard + [AudioChunk(silent, 1000, "Three four."), AudioChunk(silent, 1000, "Five six.")]
    assert resume_point(text, everything).text == ""
    # sentences that do not line up with the text: re-say it all, skipping everything already played
    odd = [AudioChunk(silent, 1000, "Something else.")]
    assert resume_point(text, odd).text == text and resume_point(text, odd).skip_s == pytest.approx(0.5)


async def test_skip_audio_trims_and_keeps_sentence_marks() -> None:
    async def chunks() -> AsyncIterator[AudioChunk]:
        for text in ("", "A.", "", "B."):
            yield AudioChunk(np.arange(100, dtype=np.int16), 1000, text)

    out = [c async for c in skip_audio(chunks(), 0.25)]
    assert [(len(c.samples), c.text) for c in out] == [(0, "A."), (50, ""), (100, "B.")]
    assert out[1].samples[0] == 50


async def test_failover_mid_sentence_resumes_where_the_caller_stopped_hearing() -> None:
    a = Scripted("a", {"en"}, chunk_ms=300, fail_after_chunks=3)  # sentence 1 whole, 0.3 s of sentence 2
    b = Scripted("b", {"en"}, chunk_ms=500)
    statuses: list[EngineStatus] = []
    synthesizer = TtsEngine(_slots(a, b), on_status=statuses.append, retry_initial_s=60)
    await synthesizer.start()
    text = "First part here. Second part here. Third part here."
    heard = await _collect(synthesizer, SynthesisRequest(text, "en"))
    # b was asked only for what was not yet said
    assert [r.text for r in b.requests] == ["Second part here. Third part here."]
    # and its first 0.3 s (already heard from a) were skipped: playback continues at sample 300 of b
    played = [(len(c.samples), c.text, int(c.samples[0]) if len(c.samples) else None) for c in heard]
    assert played == [
        (300, "", 0), (300, "First part here.", 300),  # a: sentence 1
        (300, "", 1000),  # a: the start of sentence 2, then a crashed
        (200, "", 300), (500, "Second part here.", 500),  # b: the rest of sentence 2
        (500, "", 1000), (500, "Third part here.", 1500),  # b: sentence 3
    ]
    assert [c.text for c in heard if c.text] == split_sentences(text)
    assert synthesizer.status.state is EngineState.DEGRADED and "a crashed" in synthesizer.status.failures[0]
    assert a.closed
    await synthesizer.close()


async def test_text_is_normalised_before_it_reaches_a_backend() -> None:
    backend = Scripted("a", {"en", "ru"})
    synthesizer = TtsEngine(_slots(backend))
    await synthesizer.start()
    await _collect(synthesizer, SynthesisRequest("Dr. Smith calls at 9:05.", "en"))
    await _collect(synthesizer, SynthesisRequest("Скидка 15% до 31.12.", "ru", preset="warm"))
    assert [(r.text, r.language, r.preset) for r in backend.requests] == [
        ("Doctor Smith calls at nine oh five.", "en", None),
        ("Скидка пятнадцать процентов до тридцать первого декабря.", "ru", "warm"),
    ]
    assert await _collect(synthesizer, SynthesisRequest("  🎉 ** ", "en")) == []  # nothing to say: no call
    assert len(backend.requests) == 2
    await synthesizer.close()


async def test_bad_requests_are_refused_before_any_backend_runs() -> None:
    backend = Scripted("piper", {"en"})
    espeak = Scripted("espeak", {"en", "ru"})
    synthesizer = TtsEngine(_slots(backend, espeak))
    await synthesizer.start()
    with pytest.raises(RequestError, match="no TTS backend speaks 'de' \\(configured: piper: en; espeak: en, ru\\)"):
        await _collect(synthesizer, SynthesisRequest("Hallo.", "de"))
    with pytest.raises(RequestError, match="unknown intonation preset 'sultry'"):
        await _collect(synthesizer, SynthesisRequest("Hello.", "en", preset="sultry"))
    assert backend.requests == [] and espeak.requests == []
    assert synthesizer.status.state is EngineState.READY
    await synthesizer.close()


async def test_a_slow_first_chunk_skips_the_backend_for_that_request_only() -> None:
    slow = Scripted("slow", {"en"}, first_delay_s=1.0)
    quick = Scripted("quick", {"en"})
    synthesizer = TtsEngine(_slots(slow, quick), first_chunk_timeout_s=0.2)
    await synthesizer.start()
    heard = await _collect(synthesizer, SynthesisRequest("Hello there.", "en"))
    assert [c.text for c in heard if c.text] == ["Hello there."] and len(quick.requests) == 1
    assert synthesizer.status.state is EngineState.READY and not slow.closed  # not failed, just late this time
    await synthesizer.close()


async def test_russian_goes_past_an_english_only_piper_to_espeak(tmp_path: Path) -> None:
    statuses: list[EngineStatus] = []
    synthesizer = TtsEngine(
        [
            BackendSlot("piper", lambda: build_tts_backend("piper", PiperSettings(), tmp_path)),
            BackendSlot("espeak", lambda: build_tts_backend("espeak", EspeakSettings(), tmp_path)),
        ],
        on_status=statuses.append,
    )
    await synthesizer.start()
    try:
        assert synthesizer.languages == {"en", "ru"}
        russian = await _collect(synthesizer, SynthesisRequest("Перезвоните в 14:30. Спасибо!", "ru"))
        assert [c.text for c in russian if c.text] == ["Перезвоните в четырнадцать тридцать.", "Спасибо!"]
        assert all(c.sample_rate == 22050 and np.abs(c.samples).max() > 3000 for c in russian)
        english = await _collect(synthesizer, SynthesisRequest("Call back at 2:30 pm.", "en"))
        assert [c.text for c in english] == ["Call back at two thirty p m."]
        # skipping Piper for Russian did not count as Piper failing
        assert synthesizer.status.state is EngineState.READY and synthesizer.status.backend == "piper"
        assert synthesizer.status.failures == ()
    finally:
        await synthesizer.close()
    assert synthesizer.status.state is EngineState.STOPPED


async def test_closing_the_stream_cancels_the_backend() -> None:
    backend = Scripted("a", {"en"})
    synthesizer = TtsEngine(_slots(backend))
    await synthesizer.start()
    stream = synthesizer.synthesize(SynthesisRequest("One. Two. Three. Four.", "en"))
    first = await anext(stream)
    await stream.aclose()
    assert first.text == "" and len(backend.requests) == 1
    again = await _collect(synthesizer, SynthesisRequest("Five.", "en"))
    assert [c.text for c in again] == ["", "Five."]
    await synthesizer.close()
