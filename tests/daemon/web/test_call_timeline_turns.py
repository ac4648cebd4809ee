"""The turn facts the call timeline draws, as the real call flow writes them into each answer's ``TurnStages``.

Driven like tests/daemon/call/test_call_flow.py (scripted listener events on a
real paced line, the real ``Speaker``, a tone TTS with a chosen delay): how
the turn ended, the reply's own first audio after its fillers, and a turn
whose dialogue failed unheard, which the apology answers.
"""

from __future__ import annotations

import asyncio

import pytest

from daemon.dialogue.interface import DialogueUnavailable, ReplyOutcome, TextFeed
from tests.daemon.call import test_call_flow as flow_test
from tests.daemon.call.test_call_flow import EchoDialogue, heard, play_call, started, stopped

FILLER_S = 0.5  # the test's fillers are 0.5 s tones


async def test_a_quick_answer_carries_its_stages_in_call_time() -> None:
    played = await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (1.1, heard(1, "Hello.", 0.4, 0.9))],
        tts_delay_s=0.05, filler_after_ms=1500, hang_up_at_s=3.0,
    )
    [_, (reply, timing)] = played.secretary
    stages = reply.turn
    assert stages is not None and timing is not None and stages.fillers == 0
    t0 = timing.endpoint_at - stages.endpoint_s  # the flow's audio zero
    assert stages.speech_end_s == pytest.approx(timing.speech_end_at - t0, abs=0.002)
    assert stages.ended_by == "silence"  # the scripted stop came from the fixed window
    assert stages.first_audio_s == stages.reply_audio_s == pytest.approx(timing.first_audio_at - t0, abs=0.002)
    assert stages.endpoint_s <= stages.stt_final_s <= stages.first_text_s <= stages.reply_audio_s
    assert stages.voice_to_voice_ms == pytest.approx(timing.as_dict()["voice_to_voice_ms"], abs=1.0)
    assert stages.reply_audio_s <= reply.start_s + 0.3  # the line says it at the utterance's start (preroll)
    greeting = played.secretary[0][0]
    assert greeting.turn is None  # a greeting answers no turn


async def test_the_reply_audio_is_dated_after_its_fillers() -> None:
    played = await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (1.05, heard(1, "Hello.", 0.4, 0.9))],
        tts_delay_s=0.9, filler_after_ms=300, hang_up_at_s=5.0,
    )
    [_, (reply, _)] = played.secretary
    stages = reply.turn
    assert stages is not None and stages.fillers == 1 and reply.text == "One moment. Thank you."
    assert stages.first_audio_s is not None and stages.reply_audio_s is not None
    assert stages.reply_audio_s - stages.first_audio_s >= FILLER_S - 0.02  # the whole filler went first
    assert stages.to_any_audio_ms < stages.voice_to_voice_ms


class _FailingDialogue(EchoDialogue):
    """An LLM whose every backend fails after ``delay_s``."""

    delay_s = 0.1

    async def respond(self, caller_text: str, feed: TextFeed, outcome: ReplyOutcome) -> None:
        await asyncio.sleep(self.delay_s)
        raise DialogueUnavailable("every LLM backend failed")


async def _failing_call(delay_s: float, monkeypatch: object) -> flow_test.Played:
    _FailingDialogue.delay_s = delay_s
    monkeypatch.setattr(flow_test, "EchoDialogue", _FailingDialogue)  # type: ignore[attr-defined]
    return await play_call(
        [(0.4, started(0.4)), (1.0, stopped(1, 0.4, 0.9)), (1.1, heard(1, "Hello.", 0.4, 0.9))],
        tts_delay_s=0.05, filler_after_ms=1000, hang_up_at_s=5.0,
    )


async def test_a_turn_whose_dialogue_failed_unheard_is_answered_by_the_apology(monkeypatch: object) -> None:
    played = await _failing_call(0.1, monkeypatch)
    answers = [u for u, _ in played.secretary if u.turn is not None]
    assert [u.source for u in answers] == ["apology"], [(u.source, u.text) for u, _ in played.secretary]
    stages = answers[0].turn
    assert stages is not None and stages.fillers == 0 and stages.reply_audio_s is not None
    assert stages.reply_audio_s >= answers[0].start_s


async def test_a_filler_before_the_failure_stays_on_the_turn_and_no_second_one_follows(monkeypatch: object) -> None:
    played = await _failing_call(1.5, monkeypatch)
    lines = [(u.source, u.text, u.turn) for u, _ in played.secretary]
    filler, apology = lines[1], lines[2]
    assert filler[1] == "One moment." and filler[2] is None  # said, in the transcript, but not the answer
    stages = apology[2]
    assert apology[0] == "apology" and "One moment" not in apology[1]  # the apology gets no filler of its own
    assert stages is not None and stages.fillers == 1
    assert stages.first_audio_s < stages.reply_audio_s  # first audio: the filler; the reply: the apology
