"""faster-whisper on real (Piper) speech: text, telephone audio, language, token cap, loop lag, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import ctranslate2
import numpy as np
import pytest

from engines.audio_format import to_int16
from engines.backend import BackendUnavailable
from engines.fallback_chain import RequestError
from engines.stt.faster_whisper_backend import FasterWhisperBackend, FasterWhisperSettings, pick_device
from engines.stt.interface import SttEvent, SttFinal, SttPartial
from tests.engines import speech_samples as samples

FRAME = 320  # 20 ms at 16 kHz, as the line delivers it


def load(settings: FasterWhisperSettings, models_dir: Path) -> FasterWhisperBackend:
    backend = FasterWhisperBackend(settings, models_dir)
    asyncio.run(backend.load())
    return backend


@pytest.fixture(scope="module")
def whisper(models_dir: Path) -> Iterator[FasterWhisperBackend]:
    backend = load(FasterWhisperSettings(), models_dir)
    asyncio.run(backend.warm_up())
    yield backend
    asyncio.run(backend.close())


async def transcribe(backend: FasterWhisperBackend, pcm: np.ndarray, language: str | None, sizes: list[int] | None = None) -> list[SttEvent]:
    chunks = samples.chunks_of(pcm, sizes or [FRAME])
    return [event async for event in backend.transcribe(samples.stream(chunks), language)]


def only_final(events: list[SttEvent]) -> SttFinal:
    finals = [e for e in events if isinstance(e, SttFinal)]
    assert len(finals) == 1 and events[-1] is finals[0], events
    return finals[0]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stt-whisper"]


async def test_transcribes_english_speech(whisper: FasterWhisperBackend) -> None:
    pcm = samples.speech(samples.APPOINTMENT)
    # ragged chunk sizes, as a resampler hands them over
    final = only_final(await transcribe(whisper, pcm, "en", sizes=[320, 7, 1601, 160, 999]))
    assert samples.word_error_rate(samples.APPOINTMENT, final.text) <= 0.1, final.text
    assert final.language == "en"
    assert final.audio_s == pytest.approx(len(pcm) / 16_000)
    assert 0.0 < final.processing_s < 30.0
    assert final.segments and final.segments[0].start_s == 0.0
    assert final.segments[-1].end_s <= final.audio_s + 0.05
    assert " ".join(s.text for s in final.segments) == final.text


async def test_transcribes_speech_after_an_8k_telephone_round_trip(whisper: FasterWhisperBackend) -> None:
    final = only_final(await transcribe(whisper, samples.telephone_speech(samples.NOT_AVAILABLE), "en"))
    assert samples.word_error_rate(samples.NOT_AVAILABLE, final.text) <= 0.15, final.text


async def test_the_requested_language_reaches_the_decoder(whisper: FasterWhisperBackend) -> None:
    pcm = samples.speech(samples.APPOINTMENT)
    detected = only_final(await transcribe(whisper, pcm, None, sizes=[16_000]))
    assert detected.language == "en"
    assert samples.word_error_rate(samples.APPOINTMENT, detected.text) <= 0.1

    # told the caller speaks Russian, whisper writes Russian (Cyrillic), whatever it heard
    russian = only_final(await transcribe(whisper, pcm, "ru", sizes=[16_000]))
    assert russian.language == "ru"
    assert re.search("[а-яА-Я]", russian.text), russian.text

    with pytest.raises(RequestError, match="does not know language 'xx'"):
        await transcribe(whisper, pcm, "xx")


async def test_the_token_cap_bounds_decoding_of_audio_whisper_cannot_read(models_dir: Path) -> None:
    # espeak's robotic Russian sends whisper-base into a repetition loop: with
    # the decoder's full length it writes ~200 tokens, with a cap it stops early
    unreadable = samples.espeak("ru", "Здравствуйте, это Иван. Я звоню насчёт завтрашней встречи, пожалуйста, перезвоните мне.")
    capped = await asyncio.to_thread(load, FasterWhisperSettings(max_new_tokens=12), models_dir)
    uncapped = await asyncio.to_thread(load, FasterWhisperSettings(max_new_tokens=440), models_dir)
    try:
        short = only_final(await transcribe(capped, unreadable, "ru", sizes=[16_000]))
        long = only_final(await transcribe(uncapped, unreadable, "ru", sizes=[16_000]))
    finally:
        await capped.close()
        await uncapped.close()
    assert len(short.text.split()) <= 12, short.text
    assert len(long.text.split()) > 40, f"the clip no longer makes whisper loop: {long.text!r}"
    assert short.processing_s < 0.6 * long.processing_s, (short.processing_s, long.processing_s)


async def test_the_event_loop_keeps_time_while_whisper_decodes(whisper: FasterWhisperBackend) -> None:
    pcm = samples.speech(samples.NOT_AVAILABLE)  # synthesised before the clock starts
    lags: list[float] = []

    async def ticker() -> None:
        expected = time.monotonic()
        while True:
            expected += 0.01
            await asyncio.sleep(max(0.0, expected - time.monotonic()))
            lags.append(time.monotonic() - expected)

    tick = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.05)
        started = len(lags)
        final = only_final(await transcribe(whisper, pcm, "en"))
        during = lags[started:]
    finally:
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick
    assert final.text
    assert len(during) >= final.processing_s / 0.01 * 0.5, "the ticker hardly ran during the decode"
    worst = max(during)
    print(f"\nloop lag during a {final.processing_s:.2f} s whisper decode: max {worst * 1000:.1f} ms, "
          f"p50 {np.median(during) * 1000:.2f} ms over {len(during)} ticks")
    assert worst < 0.05, f"event loop stalled {worst * 1000:.0f} ms"


async def test_cancelling_mid_decode_frees_the_worker(models_dir: Path) -> None:
    # one thread and a short token cap: a window costs about one encoder pass,
    # steadily, even when other processes compete for the two cores
    backend = await asyncio.to_thread(load, FasterWhisperSettings(cpu_threads=1, max_new_tokens=16), models_dir)
    try:
        speech = samples.speech(samples.NOT_AVAILABLE)
        one_window = np.concatenate([speech] * 6)[: 29 * 16_000]
        window_s = only_final(await transcribe(backend, one_window, "en", sizes=[len(one_window)])).processing_s
        # six minutes of speech: twelve 30 s windows, decoded one after another
        long = np.concatenate([speech] * 58)
        assert 330 < len(long) / 16_000 < 360

        started = time.monotonic()
        events = backend.transcribe(samples.stream([long]), "en")
        first = await anext(events)  # a partial, once two windows are decoded
        partial_s = time.monotonic() - started
        assert isinstance(first, SttPartial) and "Smith" in first.text
        assert partial_s < 6 * window_s, f"first partial after {partial_s:.2f} s: windows are not streamed ({window_s:.2f} s each)"
        assert worker_threads(), "the decode should still be running"

        cancelled_at = time.monotonic()
        await events.aclose()
        while worker_threads() and time.monotonic() - cancelled_at < 60:
            await asyncio.sleep(0.02)
        freed_s = time.monotonic() - cancelled_at
        assert not worker_threads(), "the worker kept decoding after cancel"
        # at most the window in progress is finished; about nine were left
        assert freed_s < 3 * window_s, (freed_s, window_s)

        next_started = time.monotonic()
        final = only_final(await transcribe(backend, samples.speech(samples.SHORT), "en"))
        assert samples.word_error_rate(samples.SHORT, final.text) <= 0.2
        assert time.monotonic() - next_started < 3 * window_s

        # closing right after a cancel waits for the window in progress, then
        # frees the model itself (never in the daemon decode thread, where a
        # teardown at interpreter exit would abort the process)
        model = weakref.ref(backend._model)
        events = backend.transcribe(samples.stream([long[: 75 * 16_000]]), "en")
        assert isinstance(await anext(events), SttPartial)
        await events.aclose()
        assert worker_threads()
        await backend.close()
        assert model() is None, "the model outlived close()"
        assert not worker_threads()
    finally:
        await backend.close()


async def test_cancelling_while_audio_still_arrives_starts_no_worker(whisper: FasterWhisperBackend) -> None:
    async def endless() -> AsyncIterator[np.ndarray]:
        while True:
            await asyncio.sleep(0.02)
            yield np.zeros(FRAME, dtype=np.float32)

    async def consume() -> None:
        async for _ in whisper.transcribe(endless(), "en"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not worker_threads()


async def test_empty_and_bad_audio(whisper: FasterWhisperBackend) -> None:
    final = only_final([e async for e in whisper.transcribe(samples.stream([]), "en")])
    assert (final.text, final.audio_s, final.segments) == ("", 0.0, ())

    with pytest.raises(RequestError, match=r"STT takes 1-D float32 audio .*got int16"):
        await transcribe(whisper, to_int16(samples.speech(samples.SHORT)), "en")
    with pytest.raises(RequestError, match="mono"):
        stereo = np.zeros((FRAME, 2), dtype=np.float32)
        [e async for e in whisper.transcribe(samples.stream([stereo]), "en")]


def test_device_and_settings(whisper: FasterWhisperBackend) -> None:
    if ctranslate2.get_cuda_device_count() == 0:
        assert (whisper.device, whisper.compute_type) == ("cpu", "int8")
        with pytest.raises(BackendUnavailable, match="no CUDA device"):
            pick_device("cuda", "auto")
    else:
        assert pick_device("auto", "auto") == ("cuda", "float16")
    assert pick_device("cpu", "float32") == ("cpu", "float32")
    assert whisper.model.endswith("whisper-base")
    with pytest.raises(ValueError, match="device must be one of"):
        FasterWhisperSettings(device="tpu")
    with pytest.raises(ValueError, match="max_new_tokens must be 1..440"):
        FasterWhisperSettings(max_new_tokens=0)
    with pytest.raises(ValueError, match="cpu_threads"):
        FasterWhisperSettings(cpu_threads=0)


async def test_a_missing_model_directory_is_unavailable(tmp_path: Path) -> None:
    backend = FasterWhisperBackend(FasterWhisperSettings(model=str(tmp_path / "nowhere")), tmp_path)
    with pytest.raises(BackendUnavailable, match="no model.bin"):
        await backend.load()
