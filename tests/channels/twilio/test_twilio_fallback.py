"""Without Media Streams: the ``<Gather>``/``<Say>`` conversation through ``cmd/chat``, and the voicemail fallback."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from daemon.tools.private_broker import MosquittoBroker
from tests.channels.twilio.twilio_box import (
    ACCOUNT_SID,
    BASE,
    CALLER,
    GULYA_NUMBER,
    LIDIA_NUMBER,
    PUBLIC_URL,
    TOKEN,
    FakeCallbackResponder,
    engines_yaml,
    twilio_box,
)
from tests.channels.twilio.twilio_client import TwilioStandIn, new_sid
from tests.engines.llm_standins import StandIn, open_sse, openai_text_stream
from tests.support.mqtt_watch import MqttWatch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
GATHER_URL = PUBLIC_URL + "/twilio/gather"
RECORDED_URL = PUBLIC_URL + "/twilio/recorded"
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef0123456789abcdef"


class ChatLlm:
    """The OpenAI-protocol stand-in: answers in two pieces and keeps what it was asked."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        self.bodies.append(body)
        response = await open_sse(request)
        for piece in openai_text_stream(["Алекс будет ", f"в офисе после пяти ({len(self.bodies)})."]):
            await response.write(piece)
        return response


@pytest.fixture
async def llm() -> AsyncIterator[tuple[StandIn, ChatLlm]]:
    chat = ChatLlm()
    server = StandIn(reply=chat)
    await server.start()
    yield server, chat
    await server.stop()


async def wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    assert predicate(), f"not within {timeout_s} s"


def only(twiml: ET.Element, path: str) -> ET.Element:
    found = twiml.findall(path)
    assert len(found) == 1, (path, ET.tostring(twiml, encoding="unicode"))
    return found[0]


async def test_the_gather_conversation_goes_through_the_boxs_chat_in_the_personas_language(
    tmp_path: Path, broker: MosquittoBroker, llm: tuple[StandIn, ChatLlm],
) -> None:
    server, chat = llm
    async with MqttWatch(broker, f"{BASE}/engines/llm/state") as engines, \
            twilio_box(tmp_path, broker, media_streams=False, engines=engines_yaml(server.url)) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        await engines.wait_for(lambda m: m.json()["state"] == "ready", timeout=30)
        sid = new_sid("CA")
        params = twilio.call_params(sid, CALLER, GULYA_NUMBER)
        voice = await twilio.webhook("/twilio/voice", params)
        gather = only(voice, "./Gather")
        assert gather.attrib == {"input": "speech", "action": GATHER_URL, "method": "POST", "language": "ru-RU",
                                 "speechTimeout": "auto", "actionOnEmptyResult": "true"}
        greeting = only(gather, "./Say")
        assert greeting.get("language") == "ru-RU" and greeting.text and greeting.text.startswith("Здравствуйте!")

        first = await twilio.webhook("/twilio/gather", {**params, "CallStatus": "in-progress",
                                                        "SpeechResult": "Когда Алекс будет в офисе?",
                                                        "Confidence": "0.93"})
        assert only(first, "./Gather/Say").text == "Алекс будет в офисе после пяти (1)."
        assert only(first, "./Gather").get("action") == GATHER_URL
        system = chat.bodies[0]["messages"][0]
        assert system["role"] == "system" and system["content"].startswith("Ты Гуля, вежливый секретарь")
        assert chat.bodies[0]["messages"][-1] == {"role": "user", "content": "Когда Алекс будет в офисе?"}

        second = await twilio.webhook("/twilio/gather", {**params, "SpeechResult": "А завтра?"})
        assert only(second, "./Gather/Say").text == "Алекс будет в офисе после пяти (2)."
        assert [m["content"] for m in chat.bodies[1]["messages"][1:]] == [
            "Когда Алекс будет в офисе?", "Алекс будет в офисе после пяти (1).", "А завтра?"]

        # the call ends: its history is dropped (a late request with its CallSid starts afresh)
        status, text = await twilio.post(PUBLIC_URL + "/twilio/status", {**params, "CallStatus": "completed",
                                                                       "CallDuration": "42"})
        assert (status, text) == (204, "")
        await twilio.webhook("/twilio/gather", {**params, "SpeechResult": "Алло?"})
        assert [m["role"] for m in chat.bodies[2]["messages"]] == ["system", "user"]
        # another number, the default persona, English
        english = await twilio.webhook("/twilio/voice", twilio.call_params(new_sid("CA"), CALLER, "+15550003000"))
        assert only(english, "./Gather").get("language") == "en-US"
        assert "Lidia" in (only(english, "./Gather/Say").text or "")


async def test_without_a_conversational_model_the_caller_leaves_a_voicemail_handed_to_the_box(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    engines = engines_yaml(conversational=False)
    async with twilio_box(tmp_path, broker, media_streams=False, engines=engines) as box, \
            FakeCallbackResponder(broker) as responder, MqttWatch(broker, f"{BASE}/callback/event") as bus, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        sid = new_sid("CA")
        params = twilio.call_params(sid, CALLER, LIDIA_NUMBER)
        await twilio.webhook("/twilio/voice", params)
        answer = await twilio.webhook("/twilio/gather", {**params, "SpeechResult": "Hi, is Alex there?"})
        assert [e.tag for e in answer] == ["Say", "Record", "Say", "Hangup"]
        apology = answer[0]
        assert apology.get("language") == "en-US" and "after the tone" in (apology.text or "")
        assert only(answer, "./Record").attrib == {"action": RECORDED_URL, "maxLength": "120", "playBeep": "true",
                                                   "method": "POST"}
        nothing_said = await twilio.webhook("/twilio/gather", {**params, "SpeechResult": ""})
        assert only(nothing_said, "./Record").get("action") == RECORDED_URL

        done = await twilio.webhook("/twilio/recorded", {**params, "RecordingUrl": RECORDING,
                                                         "RecordingSid": "RE0123", "RecordingDuration": "14"})
        assert [e.tag for e in done] == ["Say", "Hangup"] and done[0].text == "Have a good day. Goodbye!"
        await asyncio.wait_for(responder.received.wait(), 10)
        published = await bus.wait_for(lambda m: m.json().get("channel") == "twilio", timeout=10)
        spool = box.data_dir / "spool" / "twilio"
        await wait_until(lambda: not list(spool.glob("*.json")), 5)  # delivered, nothing left over
    assert responder.requests == [{"channel": "twilio", "name": None, "number": CALLER,
                                   "note": f"voicemail: {RECORDING}", "session": sid}]
    assert published.json()["number"] == CALLER and published.json()["note"] == f"voicemail: {RECORDING}"


async def test_a_voicemail_left_while_the_broker_is_down_reaches_the_box_when_it_returns(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    broker.stop()
    async with twilio_box(tmp_path, broker, media_streams=False, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        sid = new_sid("CA")
        params = twilio.call_params(sid, CALLER, LIDIA_NUMBER)
        answer = await twilio.webhook("/twilio/gather", {**params, "SpeechResult": "Hello?"})
        assert only(answer, "./Record").get("action") == RECORDED_URL  # the bus is down: voicemail at once
        await twilio.webhook("/twilio/recorded", {**params, "RecordingUrl": RECORDING})
        spool = box.data_dir / "spool" / "twilio"
        assert len(list(spool.glob("*.json"))) == 1
        assert box.status.last is not None and box.status.last[0] == "degraded"
        assert "bus not connected" in box.status.last[1]
        broker.start()
        async with FakeCallbackResponder(broker) as responder:
            await asyncio.wait_for(responder.received.wait(), 20)
            await wait_until(lambda: not list(spool.glob("*.json")), 5)
        assert responder.requests[0]["session"] == sid and responder.requests[0]["note"] == f"voicemail: {RECORDING}"
