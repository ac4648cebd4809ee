"""The Telegram channel end to end: the real python-telegram-bot against the Bot API stand-in, the real broker,
the daemon's real services on the other side of the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from channels.bus_client import ChannelBus, CommandFailed
from channels.bus_contract.clients import DAEMON, WIDGET
from channels.telegram.outbox import NotificationOutbox
from channels.telegram.voice_notes import pcm_to_voice_note, voice_note_to_pcm
from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
from drivers.audio import read_wav
from tests.calls.call_harness import cloud_llm
from tests.channels.telegram_harness import (
    OTHER_OWNER,
    OWNER,
    STRANGER,
    TOKEN,
    TOKEN_ENV,
    telegram_box,
    telegram_config,
    wait_for,
)
from tests.engines.llm_standins import StandIn, open_sse, openai_text_stream
from tests.support.mqtt_watch import MqttWatch
from tests.support.telegram_bot_api import FakeTelegram

pytestmark = pytest.mark.timeout(300)
LINES = caller_script("en")


@pytest.fixture
async def tg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with FakeTelegram() as server:
        server.add_bot(TOKEN, "secretary_test_bot")
        yield server


def ended_event(call_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "caller": "+79161234567", "direction": "incoming", "answered": True, "duration_s": 42.0,
        "reason": "remote_hangup", "outcome": "message_taken", "persona": "lidia",
        "message": {"name": "John Peters", "reason": "the invoice", "callback_number": "+79161234567"},
        "summary": f"John Peters called about the invoice ({call_id}).", **extra,
    }


def head_texts(box: Any) -> list[str]:
    return [t for t in box.texts() if t.startswith("📞")]


class ChatLlm:
    """The OpenAI-protocol stand-in for a cloud LLM: answers in two pieces and remembers what it was asked."""

    def __init__(self, answer: tuple[str, ...] = ("Hello! ", "Alex is out until five.")) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        self.bodies.append(body)
        response = await open_sse(request)
        for piece in openai_text_stream(list(self.answer)):
            await response.write(piece)
            await asyncio.sleep(0.05)
        return response


async def test_a_stranger_gets_one_polite_refusal_and_never_reaches_the_llm(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram,
) -> None:
    config = telegram_config(tmp_path / "data", broker, tg)
    async with telegram_box(config, tg) as box, MqttWatch(broker, "secretary/test-box/cmd/#", role=DAEMON) as watch:
        tg.push_message(TOKEN, STRANGER, "hello, who is this?", first_name="Mallory")
        await wait_for(lambda: tg.sent(TOKEN, STRANGER), 10, "the refusal")
        tg.push_message(TOKEN, STRANGER, "answer me!", first_name="Mallory")
        tg.push_callback(TOKEN, STRANGER, "dial:+10000000000", message_id=1)
        tg.push_message(TOKEN, OWNER, "/help")
        await wait_for(lambda: box.texts(OWNER), 10, "the owner's help")
        await asyncio.sleep(0.5)
    refusals = tg.sent(TOKEN, STRANGER)
    assert len(refusals) == 1 and "private" in refusals[0]["text"]
    assert "/status" in box.texts(OWNER)[0]
    assert not watch.seen  # the stranger's button press published no command


async def test_each_bot_has_its_own_users_persona_and_notifications(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch,
) -> None:
    office_token = "654321:TEST-token-office"
    monkeypatch.setenv("SECRETARY_TEST_TELEGRAM_OFFICE", office_token)
    tg.add_bot(office_token, "office_test_bot")
    bots = {
        "owner": {"token_env": TOKEN_ENV, "users": [OWNER]},
        "office": {"token_env": "SECRETARY_TEST_TELEGRAM_OFFICE", "users": [OTHER_OWNER], "persona": "gulya"},
    }
    config = telegram_config(tmp_path / "data", broker, tg, channels__telegram__bots=bots)
    async with telegram_box(config, tg) as box:
        tg.push_message(office_token, OWNER, "/persona")  # the owner's bot's user is a stranger to this bot
        tg.push_message(office_token, OTHER_OWNER, "/persona")
        tg.push_message(TOKEN, OWNER, "/persona")
        box.bus.call_event("ended", "c-200", **ended_event("c-200"))
        await wait_for(lambda: len(tg.sent(office_token, OTHER_OWNER)) >= 2 and len(tg.sent(TOKEN, OWNER)) >= 2,
                       15, "persona answers and notifications from both bots")
        await wait_for(lambda: tg.sent(office_token, OWNER), 10, "the refusal")
    assert "private" in tg.sent(office_token, OWNER)[0]["text"] and len(tg.sent(office_token, OWNER)) == 1
    office = [str(s["text"]) for s in tg.sent(office_token, OTHER_OWNER)]
    owner = [str(s["text"]) for s in tg.sent(TOKEN, OWNER)]
    assert any("(gulya)" in t for t in office) and any("(lidia)" in t for t in owner)
    assert any(t.startswith("📞") for t in office) and any(t.startswith("📞") for t in owner)


async def test_call_notifications_arrive_in_order_with_buttons_and_survive_a_telegram_outage_and_restart(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram,
) -> None:
    config = telegram_config(tmp_path / "data", broker, tg)
    async with telegram_box(config, tg) as box:
        box.bus.call_event("ended", "c-001", **ended_event("c-001"))
        await wait_for(lambda: head_texts(box), 10, "the first notification")
        head = tg.sent(TOKEN, OWNER)[0]
        assert "+79161234567" in head["text"] and "John Peters" in head["text"]
        assert "John Peters called about the invoice (c-001)." in head["text"]
        buttons = [b["callback_data"] for row in head["reply_markup"]["inline_keyboard"] for b in row]
        assert buttons == ["dial:+79161234567", "sms:+79161234567", "block:+79161234567", "tx:c-001"]
        # Telegram goes down; calls keep ending
        tg.set_outage("5xx")
        for n in range(2, 6):
            box.bus.call_event("ended", f"c-00{n}", **ended_event(f"c-00{n}"))
        box.bus.call_event("missed", "c-006", caller="+74950000000")
        box.bus.publish_event("sms/event", {"type": "received", "from": "+74951112233", "text": "Call me <now>", "ts": 1.0})
        outbox = NotificationOutbox(config.data_dir / "telegram" / "outbox.db")
        try:
            await wait_for(lambda: outbox.counts("owner")["pending"] == 6, 10, "six queued notifications")
        finally:
            outbox.close()
        # the daemon's channel restarts during the outage: the outbox is on disk
        await box.restart_channel()
        await asyncio.sleep(1.0)
        assert len(head_texts(box)) == 1  # nothing got through
        tg.fail_next("sendMessage", status=429, retry_after=1)  # recovering, Telegram throttles once
        tg.end_outage()
        await wait_for(lambda: len(box.texts()) >= 7, 20, "every notification after the outage")
        assert "sendMessage" in [c for c in tg.calls(TOKEN)]
        # the same event again (a redelivery) adds nothing
        box.bus.call_event("ended", "c-003", **ended_event("c-003"))
        await asyncio.sleep(1.0)
    texts = box.texts()
    assert [t.split("(")[-1].split(")")[0] for t in texts if t.startswith("📞")] == [
        "c-001", "c-002", "c-003", "c-004", "c-005",
    ]  # every call once, in order
    assert texts[5].startswith("📵") and "+74950000000" in texts[5]
    assert texts[6].startswith("✉️") and "Call me &lt;now&gt;" in texts[6]  # escaped HTML as sent
    assert len(texts) == 7
    assert not tg.sent(TOKEN, OTHER_OWNER)  # notify lists only the owner


async def test_buttons_publish_dial_sms_and_block_on_the_broker_and_the_modem_acts(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram,
) -> None:
    config = telegram_config(tmp_path / "data", broker, tg)
    async with telegram_box(config, tg) as box, MqttWatch(broker, "secretary/test-box/cmd/#", role=DAEMON) as watch:
        box.bus.call_event("ended", "c-100", **ended_event("c-100"))
        await wait_for(lambda: head_texts(box), 10, "the notification")
        message_id = tg.sent(TOKEN, OWNER)[0]["message_id"]

        tg.push_callback(TOKEN, OWNER, "block:+79161234567", message_id)
        blocked = await watch.wait_for(lambda m: m.topic.endswith("/cmd/block"), 10)
        assert blocked.json()["number"] == "+79161234567"
        await wait_for(lambda: tg.answered_callbacks, 10, "the button's answer")
        assert box.modem.blocked is not None and box.modem.blocked.numbers() == ("+79161234567",)
        assert "+79161234567" in box.modem.modem.settings.blocked_numbers

        tg.push_callback(TOKEN, OWNER, "sms:+79161234567", message_id)
        await wait_for(lambda: any("Write the SMS" in t for t in box.texts()), 10, "the SMS prompt")
        prompt = [s for s in tg.sent(TOKEN, OWNER) if "Write the SMS" in str(s.get("text"))][0]
        assert prompt["reply_markup"]["force_reply"] is True
        tg.push_message(TOKEN, OWNER, "I will call you tomorrow")
        sms = await watch.wait_for(lambda m: m.topic.endswith("/cmd/sms/send"), 10)
        assert sms.json() == {"number": "+79161234567", "text": "I will call you tomorrow"}
        await wait_for(lambda: any("SMS sent" in t for t in box.texts()), 15, "the SMS confirmation")

        tg.push_callback(TOKEN, OWNER, "dial:+79161234567", message_id)
        dial = await watch.wait_for(lambda m: m.topic.endswith("/cmd/dial"), 10)
        assert dial.json() == {"number": "+79161234567"}
        await wait_for(lambda: box.modem.modem.call.state.value != "idle", 10, "the outgoing call")


async def test_a_call_back_request_from_the_widget_reaches_the_owner_like_a_call(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram,
) -> None:
    config = telegram_config(tmp_path / "data", broker, tg)
    async with telegram_box(config, tg) as box:
        asker = ChannelBus(config.mqtt, config.box_id, WIDGET.client_id(config.box_id), [], lambda s, p: None,
                           login=broker.login(WIDGET))  # the widget asks
        running = asyncio.create_task(asker.run())
        try:
            await asyncio.wait_for(asker.connected.wait(), 10)
            with pytest.raises(CommandFailed, match="phone number"):
                await asker.request("notify/callback_request", {"channel": "widget", "number": "call me"})
            reply = await asker.request("notify/callback_request", {
                "channel": "widget", "widget": "site", "name": "Anna <b>", "number": "+7 (916) 123-45-67",
                "note": "About the quote", "page": "https://example.com/pricing",
            })
            assert len(reply["id"]) == 12
            await wait_for(lambda: box.texts(), 10, "the notification")
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    text = box.texts()[0]
    assert text.startswith("🔁") and "+79161234567" in text and "Anna &lt;b&gt;" in text
    assert "website chat (site)" in text and "About the quote" in text and "example.com/pricing" in text
    buttons = tg.sent(TOKEN, OWNER)[0]["reply_markup"]["inline_keyboard"]
    assert buttons[0][0]["callback_data"] == "dial:+79161234567"


async def test_a_real_call_notifies_with_summary_transcript_and_the_callers_voice(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram,
) -> None:
    config = telegram_config(tmp_path / "data", broker, tg)
    async with telegram_box(config, tg, calls=True) as box:
        await box.sim.incoming_call("+79161234567")
        await wait_for(lambda: box.modem.modem.call.state.value == "active", 15, "the answer")
        await asyncio.sleep(3.0)  # the greeting
        await box.sim.caller_speaks(LINES[0].wav)
        await asyncio.sleep(4.0)
        await box.sim.caller_hangs_up()
        await wait_for(lambda: any(s["method"] == "sendVoice" for s in tg.sent(TOKEN, OWNER)), 60, "the voice note")
    sent = tg.sent(TOKEN, OWNER)
    assert sent[0]["text"].startswith("📞 <b>Call from +79161234567") or sent[0]["text"].startswith("📞")
    transcript = [s["text"] for s in sent if str(s.get("text", "")).startswith("<b>Transcript")]
    assert transcript and "Caller:" in transcript[0] and "Lidia:" in transcript[0]
    voice = [s for s in sent if s["method"] == "sendVoice"][0]
    assert voice["voice"][:4] == b"OggS"
    audio = voice_note_to_pcm(voice["voice"], 16000)
    assert len(audio) > 16000 * 3  # the caller's track covers the call
    assert [s["method"] for s in sent][-1] == "sendVoice"  # headline, transcript, then the audio


async def test_chat_by_text_streams_by_edits_and_by_voice_answers_with_a_voice_message(
    tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram,
) -> None:
    llm = ChatLlm()
    server = StandIn(llm)
    await server.start()
    try:
        config = telegram_config(tmp_path / "data", broker, tg, engines__llm=cloud_llm(server.url))
        async with telegram_box(config, tg, engines=True) as box:
            tg.push_message(TOKEN, OWNER, "Is Alex in today?")
            await wait_for(lambda: any("Alex is out until five." in t for t in box.texts()), 30, "the answer")
            # a voice message: the caller recording as an OGG voice note
            samples, rate = read_wav(LINES[0].wav)
            ogg, seconds = pcm_to_voice_note(samples, rate)
            tg.push_voice(TOKEN, OWNER, ogg, duration=int(seconds) + 1)
            await wait_for(lambda: any(s["method"] == "sendVoice" for s in tg.sent(TOKEN, OWNER)), 90, "the spoken answer")
    finally:
        await server.stop()
    first = llm.bodies[0]["messages"]
    assert first[-1] == {"role": "user", "content": "Is Alex in today?"}
    heard = llm.bodies[1]["messages"][-1]["content"].lower()
    assert "john" in heard or "invoice" in heard, heard  # whisper transcribed the voice note
    # the second request carries the first exchange as history
    assert {"role": "assistant", "content": "Hello! Alex is out until five."} in llm.bodies[1]["messages"]
    texts = box.texts()
    assert any(t.startswith("🎤") for t in texts)
    voice = [s for s in tg.sent(TOKEN, OWNER) if s["method"] == "sendVoice"][0]
    spoken = voice_note_to_pcm(voice["voice"], 16000)
    assert len(spoken) > 16000  # a second or more of the persona's voice
    edits = [s for s in tg.sent(TOKEN, OWNER) if s["method"] == "editMessageText"]
    assert edits, "the answer was not streamed by edits"


async def test_status_calls_and_no_llm_answers(tmp_path: Path, broker: MosquittoBroker, tg: FakeTelegram) -> None:
    config = telegram_config(tmp_path / "data", broker, tg)
    async with telegram_box(config, tg) as box:
        tg.push_message(TOKEN, OWNER, "/status")
        await wait_for(lambda: any(t.startswith("Box:") for t in box.texts()), 10, "the status")
        tg.push_message(TOKEN, OWNER, "/calls")
        await wait_for(lambda: any("call list" in t or "No calls" in t for t in box.texts()), 10, "the call list")
        tg.push_message(TOKEN, OWNER, "hello?")
        await wait_for(lambda: len(box.texts()) >= 3, 10, "the chat answer")
    status = [t for t in box.texts() if t.startswith("Box:")][0]
    assert "Box: online" in status and "Modem:" in status and "registered" in status
    # no chat service in this box: the command is unknown to it, and the owner is told plainly
    assert "could not answer" in box.texts()[-1] or "cannot chat" in box.texts()[-1]

