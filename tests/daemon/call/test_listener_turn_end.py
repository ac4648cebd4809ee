"""The ears end the turn early when the turn-end model hears it complete, and wait when it hears a pause.

Real Silero VAD, the real Smart Turn v3 model (the file bootstrap takes out
of the pipecat-ai wheel), Piper speech with line noise, fed paced like a
phone line (20 ms every 20 ms), the detector set as a call sets it (550 ms
window, 100 ms onset). No STT: the endpoint is what is measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from config.call_schema import TurnEndConfig
from daemon.call.listener import CallerListener, CallerStopped, ListenerEvent, TurnEndPolicy, turn_end_policy
from engines.turn_end.smart_turn_backend import SmartTurnBackend, packaged_path
from engines.vad.interface import VadBackend
from engines.vad.speech_detector import DetectorSettings, SpeechDetector
from tests.engines import turn_end_utterances as utterances

pytestmark = pytest.mark.skipif(
    not packaged_path().is_file(), reason=f"no turn-end model at {packaged_path()}: run scripts/bootstrap"
)

CHUNK = 320  # 20 ms at 16 kHz
WINDOW_MS = 550  # call.endpoint_silence_ms
CONFIG = TurnEndConfig()  # the defaults a call uses



@pytest.fixture(scope="module")
def model() -> Iterator[SmartTurnBackend]:
    backend = SmartTurnBackend()
    asyncio.run(backend.load())
    asyncio.run(backend.warm_up())
    yield backend
    asyncio.run(backend.close())


def policy(model: SmartTurnBackend) -> TurnEndPolicy:
    return TurnEndPolicy(model, CONFIG.pause_ms / 1000, CONFIG.threshold, CONFIG.max_silence_ms)


async def listen(
    silero: VadBackend, audio: np.ndarray, turn_end: TurnEndPolicy | None,
) -> tuple[list[CallerStopped], float]:
    """The turn ends heard in ``audio`` (fed paced) and the monotonic time the audio began."""
    events: list[ListenerEvent] = []
    detector = SpeechDetector(silero.open(16_000), DetectorSettings(min_speech_ms=100, min_silence_ms=WINDOW_MS))
    listener = CallerListener(detector, None, "en", events.append, min_utterance_ms=250, early_stt_ms=None,
                              turn_end=turn_end)
    started = time.monotonic()

    async def paced() -> AsyncIterator[np.ndarray]:
        for index, at in enumerate(range(0, len(audio), CHUNK)):
            await asyncio.sleep(max(0.0, started + index * CHUNK / 16_000 - time.monotonic()))
            yield audio[at:at + CHUNK]

    await listener.run(paced())
    return [e for e in events if isinstance(e, CallerStopped)], started


def english(text: str, before: str | None = None) -> utterances.TurnSample:
    made = utterances.sample("t", "en", "piper", text, utterances.piper_16k(text), before, 0.7, seed=7)
    assert made is not None, f"no pause found in {text!r}"
    return made


async def test_a_complete_utterance_ends_at_the_short_pause(silero: VadBackend, model: SmartTurnBackend) -> None:
    said = english("Please ask Alex to call me back.")
    [stopped], started = await listen(silero, said.audio, policy(model))
    delay = stopped.endpoint_at - (started + said.speech_end_s)
    assert stopped.ended_by == "turn_end"
    # asked at 200 ms of quiet, the model's answer takes tens of ms: well inside the fixed 550 ms window
    assert delay < WINDOW_MS / 1000 - 0.05, delay


async def test_without_the_model_the_same_utterance_waits_the_fixed_window(silero: VadBackend) -> None:
    said = english("Please ask Alex to call me back.")
    [stopped], started = await listen(silero, said.audio, None)
    assert stopped.ended_by == "silence"
    assert stopped.endpoint_at - (started + said.speech_end_s) >= WINDOW_MS / 1000 - 0.1


async def test_a_pause_mid_sentence_is_waited_out(silero: VadBackend, model: SmartTurnBackend) -> None:
    said = english("I'm calling about, um, the invoice from last month.", before="I'm calling about, um,")
    (pause_start, pause_end), = said.pauses
    assert pause_end - pause_start == pytest.approx(0.7)
    stops, started = await listen(silero, said.audio, policy(model))
    ends = [s.endpoint_at - started for s in stops]
    assert len(stops) == 1, f"the turn ended at {ends} s; the caller paused {pause_start:.2f}-{pause_end:.2f} s"
    assert ends[0] > said.speech_end_s  # not inside the 700 ms pause: the fixed window would have cut it there


async def test_the_fixed_window_cuts_the_same_pause_without_the_model(silero: VadBackend) -> None:
    said = english("I'm calling about, um, the invoice from last month.", before="I'm calling about, um,")
    stops, started = await listen(silero, said.audio, None)
    assert len(stops) == 2 and stops[0].endpoint_at - started < said.pauses[0][1]  # the caller was cut off


async def test_a_model_that_fails_leaves_the_fixed_window(silero: VadBackend) -> None:
    broken = SmartTurnBackend()  # never loaded: every judgment raises BackendError
    said = english("Please ask Alex to call me back.")
    [stopped], started = await listen(silero, said.audio, policy(broken))
    assert stopped.ended_by == "silence"
    delay = stopped.endpoint_at - (started + said.speech_end_s)
    assert WINDOW_MS / 1000 - 0.1 <= delay < CONFIG.max_silence_ms / 1000  # not the long wait for an unfinished turn


def test_the_policy_is_off_without_a_loaded_model_or_when_turned_off() -> None:
    assert turn_end_policy(CONFIG, None) is None
    assert turn_end_policy(TurnEndConfig(enabled=False), None) is None
