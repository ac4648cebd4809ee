"""SttEngine over a fallback chain: a backend failing at load or mid-utterance, the next hears it all.

The second backend is always the real faster-whisper on real speech; the
first is either a real backend that cannot load or a backend that dies (or
stops without a final) after hearing part of the utterance.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendError
from engines.engine_status import EngineState
from engines.fallback_chain import BackendSlot, FallbackChain, RequestError
from engines.stt.backend_factory import STT_SETTINGS, build_stt_backend
from engines.stt.faster_whisper_backend import FasterWhisperBackend, FasterWhisperSettings
from engines.stt.interface import SttBackend, SttEvent, SttFinal, SttPartial
from engines.stt.stt_engine import SttEngine
from engines.stt.vosk_backend import VoskBackend, VoskSettings
from tests.engines import speech_samples as samples

FRAME = 320


class DiesMidUtterance(SttBackend):
    """Hears ``hear_chunks`` chunks, reports a partial, then dies (or just stops, without a final)."""

    name = "dies-mid-utterance"
    streaming = True  # it hears the audio live, with partials

    def __init__(self, hear_chunks: int, *, raise_error: bool = True) -> None:
        self.hear_chunks = hear_chunks
        self.raise_error = raise_error
        self.heard_samples = 0
        self.line: LineSource | None = None
        self.line_finished_at_failure: bool | None = None

    async def load(self) -> None:
        pass

    async def transcribe(self, audio: AsyncIterator[np.ndarray], language: str | None) -> AsyncIterator[SttEvent]:
        heard = 0
        async for chunk in audio:
            heard += 1
            self.heard_samples += len(chunk)
            if heard == self.hear_chunks:
                break
        if self.line is not None:
            self.line_finished_at_failure = self.line.finished
        yield SttPartial("hello this is")
        if self.raise_error:
            raise BackendError("recogniser worker died")


class LineSource:
    """The caller's audio as a capture loop delivers it: paced, counted, readable once,
    and written into one reused buffer (so whoever keeps audio must copy it)."""

    def __init__(self, pcm: np.ndarray, pace_s: float = 0.001) -> None:
        self.chunks = samples.chunks_of(pcm, [FRAME])
        self.pace_s = pace_s
        self.delivered = 0
        self.finished = False

    async def __call__(self) -> AsyncIterator[np.ndarray]:
        buffer = np.zeros(FRAME, dtype=np.float32)
        for chunk in self.chunks:
            await asyncio.sleep(self.pace_s)
            self.delivered += 1
            buffer[: len(chunk)] = chunk
            yield buffer[: len(chunk)]
        self.finished = True


def whisper_slot(models_dir: Path) -> BackendSlot[SttBackend]:
    return BackendSlot("faster-whisper", lambda: build_stt_backend("faster-whisper", FasterWhisperSettings(), models_dir))


async def test_a_backend_that_cannot_load_hands_over_to_the_next(models_dir: Path, tmp_path: Path) -> None:
    missing = VoskSettings(model=str(tmp_path / "vosk-model-ru"), language="ru")
    stt = SttEngine(FallbackChain("stt", [BackendSlot("vosk", lambda: build_stt_backend("vosk", missing, models_dir)), whisper_slot(models_dir)]))
    status = await stt.start()
    try:
        assert status.state is EngineState.DEGRADED and status.backend == "faster-whisper"
        assert "vosk-model-ru does not exist" in status.failures[0]
        source = LineSource(samples.speech(samples.APPOINTMENT))
        events = [e async for e in stt.transcribe(source(), "en")]
        assert isinstance(events[-1], SttFinal) and sum(isinstance(e, SttFinal) for e in events) == 1
        assert samples.word_error_rate(samples.APPOINTMENT, events[-1].text) <= 0.1, events[-1].text
    finally:
        await stt.close()


@pytest.mark.parametrize("raise_error", [True, False], ids=["dies", "ends-without-final"])
async def test_a_backend_failing_mid_utterance_lets_the_next_hear_all_of_it(models_dir: Path, raise_error: bool) -> None:
    first = DiesMidUtterance(hear_chunks=60, raise_error=raise_error)  # 1.2 s of a 5.8 s utterance
    stt = SttEngine(FallbackChain("stt", [BackendSlot("first", lambda: first), whisper_slot(models_dir)]))
    await stt.start()
    try:
        pcm = samples.speech(samples.APPOINTMENT)
        source = first.line = LineSource(pcm)
        assert stt.streams is True  # the call's listener would give this backend the live audio
        events = [e async for e in stt.transcribe(source(), "en")]
        assert stt.streams is False  # whisper serves now: the listener collects, then asks for a decode

        assert first.heard_samples == 60 * FRAME
        assert first.line_finished_at_failure is False, "the failure should come while the caller still speaks"
        assert events[0] == SttPartial("hello this is"), "the failed backend's partial is delivered"
        final = events[-1]
        assert isinstance(final, SttFinal) and sum(isinstance(e, SttFinal) for e in events) == 1
        assert final.audio_s == pytest.approx(len(pcm) / 16_000), "whisper did not hear the whole utterance"
        assert samples.word_error_rate(samples.APPOINTMENT, final.text) <= 0.1, final.text
        assert source.delivered == len(source.chunks), "the caller's stream was read more than once"
        status = stt.status
        assert status.state is EngineState.DEGRADED and status.backend == "faster-whisper"
        expected = "recogniser worker died" if raise_error else "ended the utterance without a final"
        assert expected in status.failures[0]
    finally:
        await stt.close()


async def test_bad_audio_and_a_failing_line_do_not_fail_over(models_dir: Path) -> None:
    stt = SttEngine(FallbackChain("stt", [whisper_slot(models_dir), BackendSlot("never", lambda: DiesMidUtterance(1))]))
    await stt.start()
    try:
        with pytest.raises(RequestError, match=r"STT takes 1-D float32 audio .*got int16"):
            [e async for e in stt.transcribe(samples.stream([np.zeros(FRAME, dtype=np.int16)]), "en")]

        async def dropped_line() -> AsyncIterator[np.ndarray]:
            yield samples.speech(samples.SHORT)[:FRAME]
            raise ConnectionResetError("modem audio port closed")

        with pytest.raises(RequestError, match="modem audio port closed"):
            [e async for e in stt.transcribe(dropped_line(), "en")]
        assert stt.status.state is EngineState.READY and stt.status.failures == ()
    finally:
        await stt.close()


async def test_cancelling_the_consumer_stops_the_tape_and_the_backend(models_dir: Path) -> None:
    stt = SttEngine(FallbackChain("stt", [whisper_slot(models_dir)]))
    await stt.start()
    try:
        source = LineSource(samples.speech(samples.APPOINTMENT), pace_s=0.02)  # live pace

        async def consume() -> list[SttEvent]:
            return [e async for e in stt.transcribe(source(), "en")]

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        delivered = source.delivered
        await asyncio.sleep(0.1)
        assert source.delivered == delivered, "the caller's stream is still being read"
        assert not source.finished
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "stt-utterance-tape"]
        assert not [t for t in threading.enumerate() if t.name == "stt-whisper"]

        short = samples.speech(samples.SHORT)
        final = [e async for e in stt.transcribe(samples.stream([short]), "en")][-1]
        assert isinstance(final, SttFinal) and samples.word_error_rate(samples.SHORT, final.text) <= 0.2
    finally:
        await stt.close()


def test_factory_kinds_and_settings(models_dir: Path) -> None:
    assert set(STT_SETTINGS) == {"faster-whisper", "vosk"}
    assert isinstance(build_stt_backend("faster-whisper", None, models_dir), FasterWhisperBackend)
    vosk = build_stt_backend("vosk", VoskSettings(model="/srv/models/vosk-model-ru", language="ru"), models_dir)
    assert isinstance(vosk, VoskBackend) and vosk.model == "/srv/models/vosk-model-ru"
    with pytest.raises(ValueError, match="unknown STT backend kind 'whisper.cpp'"):
        build_stt_backend("whisper.cpp", None, models_dir)
    with pytest.raises(TypeError, match="takes VoskSettings, not FasterWhisperSettings"):
        build_stt_backend("vosk", FasterWhisperSettings(), models_dir)
