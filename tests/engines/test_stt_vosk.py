"""Vosk streams partials while Korean speech arrives, then a final with word timings.

The packaged Korean model hears espeak-ng's robotic Korean badly, so the
tests check the mechanics (partials during the audio, a non-empty Hangul
final, timings inside the audio), not the words.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.stt.interface import SttEvent, SttFinal, SttPartial
from engines.stt.vosk_backend import VoskBackend, VoskSettings, resolve_vosk_model
from tests.engines import speech_samples as samples

HANGUL = re.compile("[\uac00-\ud7a3]")
FRAME = 320
SHORT_KOREAN = "안녕하세요. 다시 전화해 주세요."


@pytest.fixture(scope="module")
def vosk() -> Iterator[VoskBackend]:
    backend = VoskBackend(VoskSettings())
    asyncio.run(backend.load())
    yield backend
    asyncio.run(backend.close())


def korean_utterance() -> np.ndarray:
    return samples.padded(samples.espeak_korean(), 16_000, 0.3, 0.5)


async def test_streams_partials_then_a_korean_final(vosk: VoskBackend) -> None:
    pcm = korean_utterance()
    chunks = samples.chunks_of(pcm, [FRAME])
    sent = 0
    sent_at_first_partial: int | None = None

    async def line() -> AsyncIterator[np.ndarray]:
        nonlocal sent
        for chunk in chunks:
            sent += 1
            yield chunk

    events: list[SttEvent] = []
    async for event in vosk.transcribe(line(), "ko"):
        if isinstance(event, SttPartial) and sent_at_first_partial is None:
            sent_at_first_partial = sent
        events.append(event)

    partials = [e for e in events if isinstance(e, SttPartial)]
    final = events[-1]
    assert isinstance(final, SttFinal) and sum(isinstance(e, SttFinal) for e in events) == 1
    assert len(partials) >= 3, partials
    assert sent_at_first_partial is not None and sent_at_first_partial < len(chunks) // 2, "partials did not stream"
    assert all(HANGUL.search(p.text) for p in partials)
    assert len({p.text for p in partials}) == len(partials), "an unchanged partial was repeated"
    assert final.text and HANGUL.search(final.text), final
    assert final.language == "ko"
    assert final.audio_s == pytest.approx(len(pcm) / 16_000)
    assert 0.0 < final.processing_s < final.audio_s * 3
    assert final.segments, "word timings missing"
    for segment in final.segments:
        assert 0.0 <= segment.start_s < segment.end_s <= final.audio_s + 0.05
    assert final.segments[0].start_s >= 0.2, "the leading 0.3 s of line noise is not speech"


async def test_ragged_chunks_give_a_final(vosk: VoskBackend) -> None:
    pcm = samples.espeak_korean(SHORT_KOREAN)
    events = [e async for e in vosk.transcribe(samples.stream(samples.chunks_of(pcm, [1, 4000, 33, 7])), None)]
    assert isinstance(events[-1], SttFinal) and HANGUL.search(events[-1].text)
    assert events[-1].audio_s == pytest.approx(len(pcm) / 16_000)


async def test_cancel_mid_utterance_frees_the_worker(vosk: VoskBackend) -> None:
    chunks = samples.chunks_of(korean_utterance(), [FRAME])
    events = vosk.transcribe(samples.stream(chunks, pace_s=0.001), "ko")
    first = await anext(events)
    assert isinstance(first, SttPartial)
    await events.aclose()
    workers = [t for t in threading.enumerate() if t.name.startswith("stt-vosk")]
    assert len(workers) <= 1
    # the one worker thread serves the next utterance right away
    final = [e async for e in vosk.transcribe(samples.stream([samples.espeak_korean(SHORT_KOREAN)]), "ko")][-1]
    assert isinstance(final, SttFinal) and final.text


async def test_bad_audio_is_a_request_error(vosk: VoskBackend) -> None:
    with pytest.raises(RequestError, match=r"STT takes 1-D float32 audio .*got int16"):
        [e async for e in vosk.transcribe(samples.stream([np.zeros(FRAME, dtype=np.int16)]), "ko")]


async def test_models_that_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await VoskBackend(VoskSettings(model=str(tmp_path / "vosk-model-ru"))).load()
    with pytest.raises(BackendUnavailable, match="unknown packaged vosk model 'packaged:vosk-model-ru'"):
        resolve_vosk_model("packaged:vosk-model-ru")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailable, match="not a vosk model directory"):
        await VoskBackend(VoskSettings(model=str(tmp_path / "empty"))).load()
    (tmp_path / "corrupt" / "am").mkdir(parents=True)
    (tmp_path / "corrupt" / "am" / "final.mdl").write_bytes(b"truncated download")
    broken = VoskBackend(VoskSettings(model=str(tmp_path / "corrupt"), language="ru"))
    with pytest.raises(BackendError, match="vosk could not load the model"):
        await broken.load()
    await broken.close()
    await broken.close()  # twice is fine
    with pytest.raises(BackendError, match="not loaded|closed"):
        [e async for e in broken.transcribe(samples.stream([]), "ru")]
