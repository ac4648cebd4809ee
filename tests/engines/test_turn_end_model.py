"""Smart Turn v3 on the real model file: complete turns against mid-sentence pauses, English and Russian.

The file is the one ``scripts/bootstrap`` takes out of the pinned pipecat-ai
wheel (CI gets it there); where it is absent these tests skip and say so.
Utterances: Piper (English) and RHVoice (Russian), spoken whole and cut
where the speaker paused, with 200 ms of the pause after the words (what the
ears give the model at ``call.turn_end.pause_ms``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from config.engines_schema import VadConfig
from daemon.engine_host.engine_wiring import vad_engine
from engines.audio_format import DTYPE
from engines.backend import BackendError, BackendUnavailable
from engines.engine_status import EngineState, EngineStatus
from engines.turn_end.smart_turn_backend import SmartTurnBackend, SmartTurnSettings, packaged_path
from engines.turn_end.whisper_features import FRAMES, N_MELS, WINDOW_SAMPLES, LogMel, last_window
from tests.engines import turn_end_utterances as utterances

needs_model = pytest.mark.skipif(
    not packaged_path().is_file(), reason=f"no turn-end model at {packaged_path()}: run scripts/bootstrap"
)
RATE = utterances.RATE
PAUSE_S = 0.2


@pytest.fixture(scope="module")
def model() -> Iterator[SmartTurnBackend]:
    if not packaged_path().is_file():
        pytest.skip(f"no turn-end model at {packaged_path()}: run scripts/bootstrap")
    backend = SmartTurnBackend()
    asyncio.run(backend.load())
    yield backend
    asyncio.run(backend.close())


def up_to(sample: utterances.TurnSample, at_s: float) -> np.ndarray:
    """What the ears hand the model: from the words' start to ``PAUSE_S`` of quiet after ``at_s``."""
    return sample.audio[int((utterances.LEAD_S - 0.1) * RATE) : int((at_s + PAUSE_S) * RATE)]


@pytest.fixture(scope="module")
def russian() -> dict[str, utterances.TurnSample]:
    return {s.text: s for s in asyncio.run(utterances.russian_samples())}


def english() -> dict[str, utterances.TurnSample]:
    return {s.text: s for s in utterances.english_samples()}


@needs_model
@pytest.mark.parametrize("text", ["Hi, this is John Peters.", "Please ask Alex to call me back.",
                                  "I'm calling about the invoice."])
async def test_complete_english_turns_are_heard_complete(model: SmartTurnBackend, text: str) -> None:
    said = english()[text]
    assert await model.completion(up_to(said, said.speech_end_s)) >= 0.9


@needs_model
@pytest.mark.parametrize("text", ["I'm calling about, um, | the invoice from last month.", "My name is, uh, | John Peters.",
                                  "I'm calling because, | my order has not arrived yet."])
async def test_english_pauses_mid_sentence_are_heard_unfinished(model: SmartTurnBackend, text: str) -> None:
    said = english()[text]
    assert await model.completion(up_to(said, said.pauses[0][0])) < 0.5
    assert await model.completion(up_to(said, said.speech_end_s)) > await model.completion(up_to(said, said.pauses[0][0]))


@needs_model
@pytest.mark.parametrize("text", ["Здравствуйте, это Иван Петров.", "Спасибо, до свидания.", "Перезвоните мне, пожалуйста."])
async def test_complete_russian_turns_are_heard_complete(
    model: SmartTurnBackend, russian: dict[str, utterances.TurnSample], text: str,
) -> None:
    said = russian[text]
    assert await model.completion(up_to(said, said.speech_end_s)) >= 0.9


@needs_model
@pytest.mark.parametrize("text", ["Я звоню по поводу, э-э, | счёта за доставку.",
                                  "Передайте, пожалуйста, что я, | задержусь завтра."])
async def test_russian_pauses_mid_sentence_are_heard_unfinished(
    model: SmartTurnBackend, russian: dict[str, utterances.TurnSample], text: str,
) -> None:
    said = russian[text]
    assert await model.completion(up_to(said, said.pauses[0][0])) < 0.5


def test_the_window_is_the_last_eight_seconds_padded_at_the_start() -> None:
    short = np.ones(RATE, dtype=DTYPE)
    window = last_window(short)
    assert window.size == WINDOW_SAMPLES and not window[:-RATE].any() and window[-RATE:].all()
    long = np.arange(WINDOW_SAMPLES + 5, dtype=DTYPE)
    assert last_window(long)[0] == 5 and last_window(long)[-1] == WINDOW_SAMPLES + 4


def test_features_have_the_shape_the_model_reads() -> None:
    said = english()["Yes, that's right."]
    features = LogMel()(said.audio)
    assert features.shape == (N_MELS, FRAMES) and features.dtype == np.float32
    # Whisper's scale: log10 clamped to 8 below the loudest bin, then / 4: a span of at most 2
    assert float(features.max() - features.min()) <= 2.0 + 1e-5
    # the 8 s window is padded with zeros at the start (the clip is shorter): those frames are all alike
    padded_frames = int((WINDOW_SAMPLES / RATE - said.seconds) * 100) - 2
    assert np.ptp(features[:, 2:padded_frames], axis=1).max() < 1e-6


@needs_model
async def test_bad_audio_is_refused_with_a_clear_error(model: SmartTurnBackend) -> None:
    with pytest.raises(ValueError, match="from_int16"):
        await model.completion(np.zeros(RATE, dtype=np.int16))  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="not loaded"):
        await SmartTurnBackend().completion(np.zeros(RATE, dtype=DTYPE))


async def test_a_missing_model_file_says_where_it_should_be(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await SmartTurnBackend(SmartTurnSettings(model=str(tmp_path / "none.onnx"))).load()
    monkeypatch.setattr(sys, "prefix", str(tmp_path))  # a venv that bootstrap has not prepared
    with pytest.raises(BackendUnavailable, match=f"{tmp_path}/share/secretary/smart-turn-v3.2-cpu.onnx is missing: "
                                                 "scripts/bootstrap"):
        await SmartTurnBackend().load()


async def test_without_its_model_the_vad_engine_serves_and_says_the_turn_end_is_off(tmp_path: Path) -> None:
    statuses: list[EngineStatus] = []
    config = VadConfig(chain=["webrtc"], turn_end_model=str(tmp_path / "gone.onnx"))
    engine = vad_engine(config, statuses.append)
    status = await engine.start()
    try:
        assert status.state is EngineState.READY and engine.turn_end is None
        assert "turn-end model off" in status.detail and "gone.onnx does not exist" in status.detail
        assert statuses[-1] == status  # the bus hears it too
    finally:
        await engine.close()
    off = vad_engine(VadConfig(chain=["webrtc"], turn_end_model=None))
    assert "engines.vad.turn_end_model is null" in (await off.start()).detail
    await off.close()


@needs_model
async def test_with_its_model_the_vad_engine_carries_it() -> None:
    statuses: list[EngineStatus] = []
    engine = vad_engine(VadConfig(chain=["webrtc"]), statuses.append)
    status = await engine.start()
    try:
        assert status.state is EngineState.READY and isinstance(engine.turn_end, SmartTurnBackend)
        assert "turn-end model smart-turn (smart-turn-v3.2-cpu.onnx" in statuses[-1].detail
    finally:
        await engine.close()
    assert engine.turn_end is None
