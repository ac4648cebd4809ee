"""The call flow's turn-taking, driven by scripted listener events on a real paced line.

The ears (VAD + STT) are replaced by a script of listener events at chosen
times, so that a slow STT final, a caller who goes on talking before it, or a
cough can be placed exactly. The mouth is the real ``Speaker`` on a real
``CallLine`` (20 ms pacing clock, jitter buffer); the TTS is a tone of the
text's length after a chosen delay. The real engines run in tests/calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from config.call_schema import CallConfig
from config.loader import bundled_config_text, parse_config_text
from daemon.call.flow import CallFlow, CallPhrases, CallResult, TurnTiming
from daemon.call.line import CallLine
from daemon.call.listener import (
    CallerNoise,
    CallerSpeechStarted,
    CallerStopped,
    CallerUtterance,
)
from daemon.call.speaker import Speaker
from daemon.call.stream_line import StreamLineSession
from daemon.dialogue.interface import ReplyOutcome, TextFeed
from daemon.dialogue.message_slots import MessageSlots
from daemon.records.call_record import Utterance
from daemon.voices.persona_voice import PersonaVoice
from daemon.voices.phrase_cache import CachedSpeech
from engines.tts.interface import AudioChunk

PERSONA = parse_config_text(bundled_config_text(), "default").settings.personas["lidia"]


def tone(seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


class ToneTts:
    """A TTS whose first audio comes ``delay_s`` after the request: 50 ms of tone per character."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def synthesize(self, request: Any, backends: Any = None) -> AsyncIterator[AudioChunk]:
        await asyncio.sleep(self.delay_s)
        yield AudioChunk(tone(0.05 * len(request.text), 16000), 16000, request.text)


@dataclass
class EchoDialogue:
    """Answers every caller turn with one sentence; remembers what it was asked."""

    slots: MessageSlots = field(default_factory=MessageSlots)
    kind: str = "scripted"
    asked: list[str] = field(default_factory=list)
    prepared_at: float | None = None

    async def prepare(self) -> None:
        self.prepared_at = time.monotonic()

    async def respond(self, caller_text: str, feed: TextFeed, outcome: ReplyOutcome) -> None:
        self.asked.append(caller_text)
        feed.put("Thank you.")

    async def prompt_after_silence(self, feed: TextFeed, outcome: ReplyOutcome) -> None:
        feed.put("Are you there?")

    def heard(self, planned: str, heard: str) -> None:
        pass


class ScriptedEars:
    """Emits listener events at offsets (s) from the start of the call, and reads the line's audio to its end."""

    def __init__(self, emit: Any, script: list[tuple[float, Any]], started: float) -> None:
        self.emit = emit
        self.script = script
        self.started = started
        self.stopped_at: dict[int, float] = {}

    async def run(self, audio: AsyncIterator[np.ndarray]) -> None:
        async def play() -> None:
            for at, make in self.script:
                await asyncio.sleep(max(0.0, self.started + at - time.monotonic()))
                self.emit(make(self))

        async with asyncio.TaskGroup() as tasks:
            player = tasks.create_task(play())
            async for _ in audio:
                pass
            player.cancel()


def started(at_s: float) -> Any:
    return lambda ears: CallerSpeechStarted(at_s=at_s, detected_at=time.monotonic())


def stopped(seq: int, start_s: float, end_s: float) -> Any:
    def make(ears: ScriptedEars) -> CallerStopped:
        ears.stopped_at[seq] = time.monotonic()
        return CallerStopped(seq=seq, start_s=start_s, end_s=end_s, endpoint_at=ears.stopped_at[seq], voiced_end_s=end_s)
    return make


def heard(seq: int, text: str, start_s: float, end_s: float) -> Any:
    return lambda ears: CallerUtterance(
        seq=seq, text=text, start_s=start_s, end_s=end_s, endpoint_at=ears.stopped_at[seq],
        final_at=time.monotonic(), stt_s=0.1,
    )


def noise(start_s: float, end_s: float) -> Any:
    return lambda ears: CallerNoise(start_s=start_s, end_s=end_s)


@dataclass
class Played:
    result: CallResult
    said: list[tuple[Utterance, TurnTiming | None]]
    dialogue: EchoDialogue
    started: float

    @property
    def secretary(self) -> list[tuple[Utterance, TurnTiming | None]]:
        return [(u, t) for u, t in self.said if u.role == "secretary"]


async def play_call(script: list[tuple[float, Any]], *, tts_delay_s: float, filler_after_ms: int,
                    hang_up_at_s: float) -> Played:
    session = StreamLineSession("test-call")
    said: list[tuple[Utterance, TurnTiming | None]] = []
    dialogue = EchoDialogue()
    phrases = CallPhrases(
        greeting=CachedSpeech("Hi.", tone(0.2)),
        goodbye=CachedSpeech("Bye.", tone(0.2)),
        pardon=CachedSpeech("Pardon?", tone(0.4)),
        fillers=(CachedSpeech("One moment.", tone(0.5)), CachedSpeech("Just a second.", tone(0.5))),
    )
    t0 = time.monotonic()
    async with CallLine(session, None) as line:
        flow = CallFlow(
            call_id="test-call", caller="+15550100", persona=PERSONA,
            config=CallConfig(filler_after_ms=filler_after_ms), line=line,
            speaker=Speaker(line, ToneTts(tts_delay_s), PersonaVoice.of(PERSONA)),  # type: ignore[arg-type]
            listener_factory=lambda emit: ScriptedEars(emit, script, t0),  # type: ignore[arg-type,return-value]
            dialogue=dialogue, phrases=phrases,
            on_utterance=lambda u, t: said.append((u, t)),
            hangup=_nothing,
        )

        async def hang_up() -> None:
            await asyncio.sleep(hang_up_at_s)
            flow.hung_up()
            session.close()

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(hang_up())
            result = await asyncio.wait_for(flow.run(), hang_up_at_s + 10)
    return Played(result, said, dialogue, t0)


async def _nothing() -> None:
    pass


async def test_a_slow_stt_final_gets_a_filler_timed_from_the_endpoint() -> None:
    # the caller stops at 1.0 s; whisper takes 1.0 s; the filler is due 0.4 s after the endpoint
    # (a second one would be due 0.4 s after the first one's 0.5 s: after the final)
    played = await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (2.0, heard(1, "My name is John.", 0.4, 0.9))],
        tts_delay_s=0.05, filler_after_ms=400, hang_up_at_s=4.5,
    )
    [(greeting, _), (reply, timing)] = played.secretary
    assert timing is not None and timing.filler
    assert reply.text == "One moment. Thank you." and not reply.interrupted
    assert timing.first_audio_at is not None and timing.final_at is not None
    assert timing.first_audio_at - timing.endpoint_at < 0.4 + 0.15  # the filler: not behind the STT final
    assert timing.final_at - timing.endpoint_at > 0.9
    assert timing.stt_engine_s == 0.1 and timing.as_dict()["stt_engine_ms"] == 100.0  # the STT's own decode time
    assert played.dialogue.asked == ["My name is John."]
    assert [t.caller_text for t in played.result.turns] == ["My name is John."]
    # the dialogue got ready (an LLM primes its prompt) as the call began, not at the first turn
    assert played.dialogue.prepared_at is not None and played.dialogue.prepared_at - played.started < 0.2


async def test_a_quick_answer_needs_no_filler() -> None:
    played = await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (1.1, heard(1, "Hello.", 0.4, 0.9))],
        tts_delay_s=0.05, filler_after_ms=400, hang_up_at_s=3.0,
    )
    [_, (reply, timing)] = played.secretary
    assert timing is not None and not timing.filler
    assert reply.text == "Thank you."
    assert timing.first_audio_at is not None and timing.first_text_at is not None
    # the reply starts at the endpoint: first audio follows the final by the TTS delay and the line's preroll
    assert timing.first_audio_at - (timing.final_at or 0) < 0.05 + 0.2


async def test_a_slow_tts_gets_the_filler_and_the_reply_queues_behind_it() -> None:
    played = await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (1.05, heard(1, "Hello.", 0.4, 0.9))],
        tts_delay_s=0.45, filler_after_ms=300, hang_up_at_s=4.0,
    )
    [_, (reply, timing)] = played.secretary
    assert timing is not None and timing.filler
    assert reply.text == "One moment. Thank you." and not reply.interrupted


async def test_a_caller_who_goes_on_before_the_transcript_is_answered_once_for_all_of_it() -> None:
    played = await play_call(
        [
            (0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)),
            (1.2, started(1.2)),  # they go on talking: the answer being prepared is withdrawn
            (1.4, heard(1, "My name is John.", 0.4, 0.9)),
            (2.0, stopped(2, 1.2, 1.9)), (2.2, heard(2, "I'm calling about the invoice.", 1.2, 1.9)),
        ],
        tts_delay_s=0.05, filler_after_ms=800, hang_up_at_s=4.0,
    )
    assert played.dialogue.asked == ["My name is John. I'm calling about the invoice."]
    [_, (reply, timing)] = played.secretary
    assert reply.text == "Thank you." and timing is not None and not timing.filler
    assert timing.endpoint_at - played.started == pytest.approx(2.0, abs=0.1)  # timed from the last endpoint
    callers = [u.text for u, _ in played.said if u.role == "caller"]
    assert callers == ["My name is John.", "I'm calling about the invoice."]
    assert len(played.result.turns) == 1


async def test_a_cough_after_the_endpoint_does_not_lose_the_answer() -> None:
    played = await play_call(
        [
            (0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)),
            (1.1, started(1.1)), (1.2, noise(1.1, 1.15)),  # withdrawn, then prepared again
            (1.5, heard(1, "Hello.", 0.4, 0.9)),
        ],
        tts_delay_s=0.05, filler_after_ms=1500, hang_up_at_s=3.5,
    )
    assert played.dialogue.asked == ["Hello."]
    [_, (reply, _)] = played.secretary
    assert reply.text == "Thank you."


async def test_an_empty_transcript_gets_the_cached_pardon() -> None:
    played = await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (1.1, heard(1, "", 0.4, 0.9))],
        tts_delay_s=0.05, filler_after_ms=1500, hang_up_at_s=3.0,
    )
    [_, (reply, timing)] = played.secretary
    assert reply.text == "Pardon?" and reply.source == "pardon"
    assert played.dialogue.asked == []
    assert timing is not None and timing.caller_text == ""


async def test_a_filler_cut_by_the_caller_going_on_keeps_their_turn_for_the_next_answer() -> None:
    played = await play_call(
        [
            (0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)),  # filler at 1.2 s, plays 0.5 s
            (1.4, started(1.4)),  # barge-in over the filler, the transcript still not in
            (1.6, heard(1, "My name is John.", 0.4, 0.9)),
            (2.2, stopped(2, 1.4, 2.1)), (2.3, heard(2, "Call me back.", 1.4, 2.1)),
        ],
        tts_delay_s=0.05, filler_after_ms=200, hang_up_at_s=4.5,
    )
    assert played.dialogue.asked == ["My name is John. Call me back."]
    [_, (cut, cut_timing), (reply, _)] = played.secretary
    assert cut.interrupted and cut.planned_text == "One moment." and cut_timing is not None
    assert reply.text.endswith("Thank you.")
    assert [t.caller_text for t in played.result.turns] == ["My name is John. Call me back."]


async def test_stop_fades_what_is_said_then_says_goodbye_and_hangs_up_with_the_stop_reason() -> None:
    # the daemon stops mid-greeting: the greeting fades out, the goodbye is played whole, then the hang-up
    session = StreamLineSession("test-call")
    said: list[tuple[Utterance, TurnTiming | None]] = []
    hung_up: list[float] = []

    async def hang_up() -> None:
        hung_up.append(time.monotonic())
        session.close()

    phrases = CallPhrases(greeting=CachedSpeech("Hello there.", tone(2.0)), goodbye=CachedSpeech("Bye.", tone(0.6)))
    t0 = time.monotonic()
    async with CallLine(session, None) as line:
        flow = CallFlow(
            call_id="test-call", caller="+15550100", persona=PERSONA, config=CallConfig(), line=line,
            speaker=Speaker(line, ToneTts(0.05), PersonaVoice.of(PERSONA)),  # type: ignore[arg-type]
            listener_factory=lambda emit: ScriptedEars(emit, [], t0),  # type: ignore[arg-type,return-value]
            dialogue=EchoDialogue(), phrases=phrases,  # type: ignore[arg-type]
            on_utterance=lambda u, t: said.append((u, t)), hangup=hang_up,
        )
        running = asyncio.create_task(flow.run())
        await asyncio.sleep(0.5)
        stop_at = time.monotonic()
        flow.stop("daemon_stopping")
        result = await asyncio.wait_for(running, 10)
    assert result.end_reason == "daemon_stopping"
    greeting, goodbye = [u for u, _ in said if u.role == "secretary"]
    assert greeting.interrupted and greeting.text != "Hello there."
    assert goodbye.text == "Bye." and not goodbye.interrupted and goodbye.source == "goodbye"
    assert len(hung_up) == 1 and hung_up[0] - stop_at >= 0.6 - 0.1  # after the goodbye's audio, not before
    assert time.monotonic() - stop_at < 3.0  # the drain after the hang-up is short when stopping
