"""Issue 18 item 5: a barge-in in the middle of a live-synthesised chunk keeps the words the caller did hear.

A real call over the pty simulator with the real CPU VAD, STT and TTS (the
same box as tests/calls); the conversational LLM is a stand-in speaking the
OpenAI wire protocol. Its first answer is one long clause, synthesised live
(no cache) as a single chunk; the caller talks over it a few seconds in.
Asserted on what the caller heard (the simulator's recording of the box's
audio), the ``call/event`` utterance, ``transcript.json`` and the dialogue's
history as the LLM receives it with the next request. The next answer is
played to its end and keeps all its words.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from daemon.call.flow import FILLERS
from daemon.call.speaker import HEARD_BY
from daemon.tools.demo_caller import caller_script
from tests.calls.call_harness import CallBox, box_config, call_box, cloud_llm
from tests.engines.llm_standins import StandIn, open_sse, openai_text_stream

pytestmark = pytest.mark.slow

LINES = caller_script("en")
LONG = (
    "I will make sure that Alex gets your message about the invoice for last month's delivery today and he "
    "will call you back as soon as he is out of his meeting with the suppliers this afternoon."
)
SHORT = "Thank you, I will pass that on."
LINE_RATE = 8000
LOUD = 1500  # int16: speech, not line noise
INTERRUPTED = " [interrupted by the caller]"


class TwoAnswers:
    """The long answer to the caller's first turn, the short one to anything after it."""

    def __init__(self) -> None:
        self.answered = 0

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        users = [m for m in body["messages"] if m["role"] == "user"]
        response = await open_sse(request)
        if not users or not any(m["role"] == "assistant" for m in body["messages"]):
            text = "Hello."  # a warm-up or a summary: not a turn of the call
        else:
            self.answered += 1
            text = LONG if self.answered == 1 else SHORT
        for piece in openai_text_stream([text]):
            await response.write(piece)
        return response


def uplink(box: CallBox) -> np.ndarray:
    """What the box has sent to the caller in this call so far (8 kHz int16)."""
    data = bytes(box.sim.uplink_audio)
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype=np.int16)


def regions(samples: np.ndarray, after_s: float, gap_s: float = 0.35) -> list[tuple[float, float]]:
    """Stretches of the box's speech after ``after_s``: loud 20 ms frames, joined across pauses shorter than ``gap_s``.

    A filler ("One moment, please.") is one stretch of about a second; the
    long answer has no pause as long as ``gap_s`` (no comma), so it is one
    stretch of many seconds, apart from a filler before it unless it
    followed the filler at once.
    """
    frame = LINE_RATE // 50
    start = int(after_s * LINE_RATE)
    count = (samples.size - start) // frame
    if count <= 0:
        return []
    frames = samples[start:start + count * frame].astype(np.int32).reshape(count, frame)
    loud = np.flatnonzero(np.abs(frames).max(axis=1) > LOUD)
    found: list[tuple[float, float]] = []
    for index in loud:
        at = after_s + index / 50
        if found and at - found[-1][1] < gap_s:
            found[-1] = (found[-1][0], at + 0.02)
        else:
            found.append((at, at + 0.02))
    return found


def long_stretch(samples: np.ndarray, after_s: float, seconds: float) -> tuple[float, float] | None:
    """The first stretch of speech after ``after_s`` at least ``seconds`` long: only the long answer is."""
    return next(((a, b) for a, b in regions(samples, after_s) if b - a >= seconds), None)


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        await asyncio.sleep(0.02)


async def test_a_barge_in_mid_chunk_keeps_the_words_heard_in_the_record_the_bus_and_the_history(tmp_path: Path) -> None:
    answers = TwoAnswers()
    llm = StandIn(answers)
    await llm.start()
    try:
        config = box_config(
            tmp_path / "data", engines__llm=cloud_llm(llm.url, first_token_timeout_s=10), call__filler_after_ms=2000,
        )
        async with call_box(config) as box:
            call_id = await box.ring()
            await box.wait_secretary_turns(1, 30)  # the (cached) greeting, not interrupted
            asked_at_s = len(uplink(box)) / LINE_RATE
            await box.sim.caller_speaks(LINES[0].wav)
            await until(lambda: answers.answered >= 1, 60, "the LLM's first answer")
            # the long answer is on the line and has played 2.5 s (fillers of about a second may come first
            # on a slow machine; they are shorter): the caller talks over it now
            spoken_from = asked_at_s + LINES[0].seconds
            await until(lambda: long_stretch(uplink(box), spoken_from, 2.5) is not None, 90, "2.5 s of the answer")
            barge_at_s = len(uplink(box)) / LINE_RATE
            await box.sim.caller_speaks(LINES[2].wav)  # "Yes, that's right." over the answer
            cut = await box.wait_secretary_turns(2, 60)
            await until(lambda: answers.answered >= 2, 60, "the LLM's second answer")
            whole = await box.wait_secretary_turns(3, 60)
            await box.sim.caller_hangs_up()
            await box.wait_ended(60)
            heard_audio = uplink(box)
    finally:
        await llm.stop()

    # the bus: the cut answer says what was heard, not none and not all
    fillers = FILLERS["en"]
    assert cut["interrupted"] is True and cut["source"] == "llm:cloud", cut
    text, fillers_first = cut["text"], 0
    for filler in fillers:
        if text.startswith(filler):
            text, fillers_first = text.removeprefix(filler).strip(), fillers_first + 1
    assert text.endswith("…"), cut
    heard_words = text.removesuffix("…").split()
    long_words = LONG.split()
    assert 2 <= len(heard_words) < len(long_words) - 2, cut
    assert heard_words == long_words[: len(heard_words)], ("the heard words are the start of the answer", cut)

    # ...and about as many as the audio that went out before the cut allows: the answer's stretch ends at the cut
    answer = long_stretch(heard_audio, spoken_from, 2.5)
    assert answer is not None and answer[1] < barge_at_s + 1.5, (answer, barge_at_s)
    played_s = answer[1] - answer[0]
    before = [r for r in regions(heard_audio, spoken_from) if r[1] <= answer[0]]
    merged = len(before) < fillers_first  # a filler went out right before the answer, in its stretch
    after = regions(heard_audio, barge_at_s + 1.5)  # the short answer, played whole (a filler may go first)
    assert after, "the short answer was not heard"
    spoken = SHORT if len(after) > 1 else whole["text"]
    chars_per_s = len(spoken) / (after[-1][1] - after[-1][0])  # this voice's speech rate, measured on the line
    expected = played_s * chars_per_s
    heard_chars = len(" ".join(heard_words))
    print(f"\nbarge-in {played_s:.2f} s into the answer (filler first: {cut['latency_ms']['filler']}, "
          f"on the line without a pause: {merged}): {heard_chars} characters heard, {expected:.0f} expected "
          f"at the voice's {chars_per_s:.1f} chars/s: {cut['text']!r}")
    if not merged:  # (a filler played right before it shares its stretch: the answer's own start is not known)
        assert abs(heard_chars - expected) <= max(25.0, 0.4 * expected), (heard_chars, expected, played_s, cut)

    # the record: the same words, the whole plan, and how the cut was estimated
    transcript = json.loads((tmp_path / "data" / "calls" / call_id / "transcript.json").read_text())
    said = [u for u in transcript["utterances"] if u["role"] == "secretary"]
    recorded = next(u for u in said if u["interrupted"] and u["source"] == "llm:cloud")
    assert recorded["text"] == cut["text"]
    assert recorded["planned_text"].endswith(LONG) and recorded["heard_by"] == HEARD_BY
    assert cut["heard_by"] == HEARD_BY, "the bus event says how the heard words were found, as the record does"

    # the dialogue's memory, as the LLM got it with the next turn: the heard words, marked interrupted
    turn_requests = [r.body["messages"] for r in llm.requests if any(
        m["role"] == "assistant" and INTERRUPTED in (m.get("content") or "") for m in r.body["messages"])]
    assert turn_requests, "the next request did not carry the interrupted answer"
    remembered = [m["content"] for m in turn_requests[0] if m["role"] == "assistant" and INTERRUPTED in m["content"]]
    assert remembered == [cut["text"] + INTERRUPTED]

    # an answer played to its end keeps all its words, in the event and the record
    assert whole["interrupted"] is False and whole["source"] == "llm:cloud"
    plain = whole["text"]
    for filler in fillers:
        plain = plain.removeprefix(filler).strip()
    assert plain == SHORT
    kept = next(u for u in said if u["text"] == whole["text"])
    assert kept["interrupted"] is False and kept["planned_text"] is None and kept["heard_by"] is None
