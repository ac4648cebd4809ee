"""How a call behaves: barge-in, DTMF, silence, the LLM path and its failure, a TTS fallback.

Every test runs a real call over the simulator with the real CPU VAD/STT/TTS;
the conversational LLM is a stand-in speaking the OpenAI wire protocol (no
packaged model can converse), driven by the real client.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from daemon.tools.demo_caller import caller_script
from drivers.audio import read_wav
from tests.engines.llm_standins import StandIn, open_sse, openai_chunk, openai_text_stream

from .call_harness import box_config, call_box, cloud_llm

pytestmark = pytest.mark.slow

LINES = caller_script("en")


def loud_after(samples: np.ndarray, start_s: float, end_s: float, rate: int = 8000) -> float:
    window = samples[int(start_s * rate): int(end_s * rate)].astype(np.int32)
    return float(np.abs(window).max()) if window.size else 0.0


def speech_onset(samples: np.ndarray, after_s: float, rate: int = 8000, threshold: int = 2000) -> float:
    start = int(after_s * rate)
    loud = np.flatnonzero(np.abs(samples[start:].astype(np.int32)) > threshold)
    assert loud.size, "no caller speech found"
    return (start + int(loud[0])) / rate


async def test_barge_in_stops_the_greeting_within_200_ms_and_marks_what_was_heard(tmp_path: Path) -> None:
    config = box_config(tmp_path / "data")
    async with call_box(config) as box:
        call_id = await box.ring()
        await box.wait_event(lambda e: e["type"] == "answered", 5)
        await asyncio.sleep(1.5)  # the greeting is playing
        await box.sim.caller_speaks(LINES[3].wav)
        greeting = await box.wait_secretary_turns(1, 20)
        await box.wait_secretary_turns(2, 40)
        await box.sim.caller_hangs_up()
        ended = await box.wait_ended(30)
    assert greeting["interrupted"] is True
    assert greeting["text"] and greeting["text"] != config.personas["lidia"].greeting
    assert greeting["text"].endswith("…")
    record = tmp_path / "data" / "calls" / call_id
    caller, _ = read_wav(record / "caller.wav")
    secretary, _ = read_wav(record / "secretary.wav")
    onset = speech_onset(caller, 1.0)
    assert loud_after(secretary, onset - 0.5, onset) > 2000  # the greeting was playing...
    assert loud_after(secretary, onset + 0.2, onset + LINES[3].seconds - 0.3) < 300  # ...and stopped within 200 ms
    transcript = json.loads((record / "transcript.json").read_text())
    first = transcript["utterances"][0]
    assert first["interrupted"] and first["planned_text"] == config.personas["lidia"].greeting
    assert ended["reason"] in ("caller_hung_up", "remote_hangup")


async def test_dtmf_hash_says_goodbye_and_hangs_up(tmp_path: Path) -> None:
    async with call_box(box_config(tmp_path / "data")) as box:
        await box.ring()
        await box.wait_secretary_turns(1, 20)
        await box.sim.caller_sends_dtmf("#")
        goodbye = await box.wait_secretary_turns(2, 20)
        ended = await box.wait_ended(20)
    assert goodbye["text"] == "Have a good day. Goodbye!"
    assert ended["reason"] == "dtmf_end" and ended["outcome"] == "no_speech"
    assert [e["digit"] for e in box.events("dtmf")] == ["#"]


async def test_dtmf_zero_cuts_in_and_asks_for_the_message(tmp_path: Path) -> None:
    async with call_box(box_config(tmp_path / "data")) as box:
        call_id = await box.ring()
        await asyncio.sleep(1.0)
        await box.sim.caller_sends_dtmf("0")
        cut = await box.wait_secretary_turns(1, 20)
        question = await box.wait_secretary_turns(2, 20)
        await box.sim.caller_hangs_up()
        await box.wait_ended(20)
    assert cut["interrupted"] is True
    assert "name" in question["text"].lower()
    transcript = json.loads((tmp_path / "data" / "calls" / call_id / "transcript.json").read_text())
    assert [d["digit"] for d in transcript["dtmf"]] == ["0"]


async def test_silence_gets_a_prompt_then_a_goodbye(tmp_path: Path) -> None:
    config = box_config(tmp_path / "data", call__silence_prompt_s=2, call__silence_hangup_s=2)
    async with call_box(config) as box:
        await box.ring()
        await box.wait_secretary_turns(1, 20)
        prompt = await box.wait_secretary_turns(2, 20)
        goodbye = await box.wait_secretary_turns(3, 20)
        ended = await box.wait_ended(20)
    assert prompt["source"] == "prompt" and prompt["text"]
    assert goodbye["source"] == "goodbye"
    assert ended["reason"] == "silence" and ended["outcome"] == "no_speech"


def tool_call_chunks(name: str, arguments: dict[str, Any]) -> list[bytes]:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return [openai_chunk({"tool_calls": [call]})]


class ScriptedLlm:
    """Answers by what the caller said last: a reply with a tool call, then a reply that breaks mid-stream."""

    def __init__(self) -> None:
        self.turns = 0

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        users = [m for m in body["messages"] if m["role"] == "user"]
        response = await open_sse(request)
        if len(body["messages"]) <= 2 or not users:  # warm-up
            for piece in openai_text_stream(["Hello."]):
                await response.write(piece)
            return response
        self.turns += 1
        if self.turns == 1:
            pieces = openai_text_stream(["Thank you, John. ", "What number should Alex call you back on?"])
            stream = pieces[:-2] + tool_call_chunks("save_message", {"name": "John Peters", "reason": "the invoice"}) + pieces[-2:]
            for piece in stream:
                await response.write(piece)
            return response
        # the second reply breaks off after a few words: the backend died mid-reply
        await response.write(openai_chunk({"role": "assistant", "content": ""}))
        await response.write(openai_chunk({"content": "Got it, so"}))
        raise ConnectionResetError("stand-in dies mid-reply")


async def test_llm_replies_fill_the_slots_and_a_mid_reply_failure_falls_back_to_the_script(tmp_path: Path) -> None:
    llm = StandIn(ScriptedLlm())
    await llm.start()
    try:
        config = box_config(
            tmp_path / "data",
            engines__llm=cloud_llm(llm.url, first_token_timeout_s=3),
        )
        async with call_box(config) as box:
            await box.ring()
            await box.wait_secretary_turns(1, 20)
            await box.sim.caller_speaks(LINES[0].wav)
            reply = await box.wait_secretary_turns(2, 40)
            await box.sim.caller_speaks(LINES[1].wav)
            apology = await box.wait_secretary_turns(3, 40)
            following = await box.wait_secretary_turns(4, 40)
            await box.sim.caller_hangs_up()
            ended = await box.wait_ended(30)
    finally:
        await llm.stop()
    said = "Thank you, John. What number should Alex call you back on?"
    # on a loaded machine the reply may be preceded by a filler ("One moment, please."), a very loaded one by two
    fillers = reply["text"].removesuffix(said).strip()
    assert reply["text"].endswith(said) and bool(fillers) == bool(reply["latency_ms"]["filler"]), reply
    assert not fillers or fillers.startswith("One moment, please."), reply
    assert reply["source"] == "llm:cloud"
    sent = [u for u in box.events("utterance") if u["role"] == "secretary"]
    assert any("trouble" in u["text"] for u in sent[2:4]), sent
    assert following["text"] or apology["text"]
    assert ended["message"]["name"] == "John Peters"  # filled by the LLM's tool call, kept by the script
    assert ended["message"]["reason"] == "the invoice"


async def test_a_broken_piper_voice_falls_back_to_espeak(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    # the chain without RHVoice (Russian only): the state's backend is the chain's first healthy one
    config = box_config(tmp_path / "data", engines__tts__piper__voices={"en": str(broken)},
                        engines__tts__chain=["piper", "espeak"])
    async with call_box(config) as box:
        await box.ring()
        greeting = await box.wait_secretary_turns(1, 30)
        tts_state = box.bus.outbox.current("secretary/test-box/engines/tts/state")
        await box.sim.caller_hangs_up()
        await box.wait_ended(20)
    assert greeting["text"].startswith("Hello")
    assert tts_state is not None and json.loads(tts_state.payload)["backend"] == "espeak"


async def test_a_slow_llm_gets_a_filler_so_the_line_is_never_quiet_for_2_s(tmp_path: Path) -> None:
    async def slow(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await open_sse(request)
        if len(body["messages"]) > 2:
            await asyncio.sleep(2.6)
        for piece in openai_text_stream(["Thank you. ", "May I have your number?"]):
            await response.write(piece)
        return response

    llm = StandIn(slow)
    await llm.start()
    try:
        config = box_config(
            tmp_path / "data",
            engines__llm=cloud_llm(llm.url, first_token_timeout_s=5),
        )
        async with call_box(config) as box:
            call_id = await box.ring()
            await box.wait_secretary_turns(1, 20)
            await box.sim.caller_speaks(LINES[0].wav)
            reply = await box.wait_secretary_turns(2, 40)
            await box.sim.caller_hangs_up()
            await box.wait_ended(30)
    finally:
        await llm.stop()
    assert reply["latency_ms"]["filler"] is True
    assert reply["text"].startswith("One moment, please.") and reply["text"].endswith("May I have your number?")
    # on the line: from the caller's last word to the secretary's first sound, never 2 s of silence
    record = tmp_path / "data" / "calls" / call_id
    caller, _ = read_wav(record / "caller.wav")
    secretary, _ = read_wav(record / "secretary.wav")
    last_word = float(np.flatnonzero(np.abs(caller.astype(np.int32)) > 1000)[-1]) / 8000
    start = int(last_word * 8000)
    window = secretary[start:start + 4 * 8000]
    frames = np.abs(window[: len(window) // 160 * 160].astype(np.int32)).reshape(-1, 160).max(axis=1)
    first_sound = int(np.flatnonzero(frames > 500)[0]) * 0.02
    # endpoint (550 ms of silence) + filler_after_ms (1000) + the line's preroll: the filler does not
    # wait for the STT final, which alone may take ~1.5 s on a loaded 2-core machine
    assert first_sound < 2.0


class EndingLlm:
    """Takes the whole message in one reply, ends the call through the tool, then writes the summary."""

    SUMMARY = "John Peters called about last month's invoice; call him back on 5550134."

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await open_sse(request)
        system = body["messages"][0]["content"]
        if system.startswith("Summarize"):
            stream = openai_text_stream([self.SUMMARY])
        elif any(m["role"] == "user" for m in body["messages"]):
            pieces = openai_text_stream(["Thank you, John, I will pass it on. ", "Goodbye!"])
            calls = [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "save_message", "arguments": json.dumps(
                    {"name": "John Peters", "reason": "last month's invoice", "callback_number": "555 0134"})}},
                {"index": 1, "id": "call_2", "type": "function", "function": {"name": "end_call", "arguments": "{}"}},
            ]
            stream = pieces[:-2] + [openai_chunk({"tool_calls": calls})] + pieces[-2:]
        else:
            stream = openai_text_stream(["Hello."])
        for piece in stream:
            await response.write(piece)
        return response


async def test_the_llm_ends_the_call_through_its_tool_and_writes_the_summary(tmp_path: Path) -> None:
    llm = StandIn(EndingLlm())
    await llm.start()
    try:
        config = box_config(
            tmp_path / "data",
            engines__llm=cloud_llm(llm.url, first_token_timeout_s=5),
        )
        async with call_box(config) as box:
            call_id = await box.ring()
            await box.wait_secretary_turns(1, 20)
            await box.sim.caller_speaks(LINES[0].wav)
            ended = await box.wait_ended(60)
    finally:
        await llm.stop()
    last = [u for u in box.events("utterance") if u["role"] == "secretary"][-1]
    assert last["text"].endswith("Goodbye!") and last["source"] == "llm:cloud"
    assert ended["reason"] == "secretary_ended" and ended["outcome"] == "message_taken"
    assert ended["message"] == {"name": "John Peters", "reason": "last month's invoice", "callback_number": "5550134"}
    assert ended["summary"] == EndingLlm.SUMMARY
    transcript = json.loads((tmp_path / "data" / "calls" / call_id / "transcript.json").read_text())
    assert transcript["summary"] == EndingLlm.SUMMARY and transcript["outcome"] == "message_taken"


async def test_the_maximum_duration_ends_the_call_with_a_goodbye(tmp_path: Path) -> None:
    config = box_config(tmp_path / "data", call__max_duration_s=10, call__silence_prompt_s=60)
    async with call_box(config) as box:
        await box.ring()
        await box.wait_secretary_turns(1, 20)
        await box.sim.caller_speaks(LINES[3].wav)  # still talking when the time is up
        ended = await box.wait_ended(30)
    goodbye = [u for u in box.events("utterance") if u["role"] == "secretary"][-1]
    assert goodbye["source"] == "goodbye"
    assert ended["reason"] == "max_duration"
    assert 10 <= ended["duration_s"] < 16
