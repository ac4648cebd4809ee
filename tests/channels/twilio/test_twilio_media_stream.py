"""A Twilio call over Media Streams, end to end: the stand-in Twilio, the channel, the real daemon's call flow."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from daemon.tools.demo_caller import RECORDINGS_DIR
from daemon.tools.private_broker import MosquittoBroker
from tests.channels.twilio.twilio_box import (
    ACCOUNT_SID,
    BASE,
    CALLER,
    GULYA_NUMBER,
    PUBLIC_URL,
    TOKEN,
    twilio_box,
)
from tests.channels.twilio.twilio_client import TwilioStandIn, dtmf, is_speech, new_sid
from tests.support.mqtt_watch import MqttWatch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
CALLER_WAV = RECORDINGS_DIR / "en" / "01_introduction.wav"
GULYA_GREETING = "Здравствуйте! Вы позвонили в офис Алекса Моргана, меня зовут Гуля. Чем могу помочь?"


def caller_pcm() -> bytes:
    with wave.open(str(CALLER_WAV)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.readframes(w.getnframes())


def rms(path: Path) -> float:
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    return float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0


async def test_a_twilio_call_is_answered_by_the_secretary_recorded_and_announced(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker) as box, MqttWatch(broker, f"{BASE}/#") as bus, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        print(f"the Twilio channel is run by the {box.channel_run_by}")
        audio = bytes(8000 * 2 * 8) + caller_pcm()  # the caller listens to the (Russian) greeting, then speaks
        call = await twilio.call(audio, caller=CALLER, called=GULYA_NUMBER, tail_s=5.0)
        ended = await bus.wait_for(
            lambda m: m.topic == f"{BASE}/call/event" and m.json()["type"] == "ended", timeout=60)

    # the TwiML: a bidirectional stream to the public wss URL, carrying the numbers and the stream's signed grant
    assert call.stream_url == "wss://box.example.test/twilio/stream"
    assert set(call.parameters) == {"caller", "called", "issued", "grant"}
    assert (call.parameters["caller"], call.parameters["called"]) == (CALLER, GULYA_NUMBER)
    assert call.twiml.find("./Connect").get("action") == PUBLIC_URL + "/twilio/stream-ended"  # type: ignore[union-attr]
    # a spoken reply came back: the greeting, in 20 ms mu-law frames
    assert call.media and all(len(codes) == 160 for _, codes in call.media)
    speech_frames = sum(1 for _, codes in call.media if is_speech(codes))
    print(f"first reply frame {call.first_media_s * 1000:.0f} ms after start, "  # type: ignore[operator]
          f"first speech {call.first_speech_s * 1000:.0f} ms; "  # type: ignore[operator]
          f"{len(call.media)} reply frames ({speech_frames} with speech); marks {call.marks_received}; "
          f"echoed {call.marks_echoed}; clears {call.clears}")
    caller_done = len(audio) / 16000
    answer = next((at for at, codes in call.media if at > caller_done and is_speech(codes)), None)
    print(f"caller stopped at {caller_done:.2f} s; next reply speech at {answer} s")
    assert speech_frames * 0.02 > 1.0, speech_frames
    # marks followed the secretary's utterances, and Twilio played up to them
    assert call.marks_received and call.marks_received[0][1] == "utterance-1"
    assert {name for _, name in call.marks_echoed} >= {"utterance-1"}
    assert not call.clears  # nobody talked over the greeting
    # the caller hung up (stop) and then the daemon ended the call
    assert call.stop_sent_at is not None and ended.at > call.stop_sent_at
    assert ended.json()["call_id"] == call.call_sid and ended.json()["channel"] == "twilio"
    assert ended.json()["reason"] == "caller_hung_up"
    answered = [m.json() for m in bus.on(f"{BASE}/call/event") if m.json()["type"] == "answered"]
    assert answered and answered[0]["channel"] == "twilio" and answered[0]["caller"] == CALLER
    # the call record
    record = box.data_dir / "calls" / call.call_sid
    assert (record / "caller.wav").is_file() and (record / "secretary.wav").is_file()
    assert rms(record / "caller.wav") > 300 and rms(record / "secretary.wav") > 300
    transcript = json.loads((record / "transcript.json").read_text(encoding="utf-8"))
    assert transcript["persona"] == "gulya"  # channels.twilio.numbers picked the persona
    secretary = [u for u in transcript["utterances"] if u["role"] == "secretary"]
    assert secretary and secretary[0]["text"] == GULYA_GREETING


async def test_a_caller_talking_over_the_greeting_clears_twilios_buffered_reply(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        audio = bytes(8000 * 2 * 2) + caller_pcm()  # talks 2 s into the greeting
        call = await twilio.call(audio, caller=CALLER, called=GULYA_NUMBER, tail_s=1.0)
    assert call.clears and call.clears[0] > 2.0
    first_mark = call.marks_received[0]
    assert first_mark[1] == "utterance-1" and first_mark[0] >= call.clears[0]  # clear, then the utterance's mark
    assert any(name == "utterance-1" for _, name in call.marks_echoed)  # cleared: nothing left to play before it
    record = box.data_dir / "calls" / call.call_sid
    transcript = json.loads((record / "transcript.json").read_text(encoding="utf-8"))
    greeting = [u for u in transcript["utterances"] if u["role"] == "secretary"][0]
    assert greeting["interrupted"] is True
    print(f"barge-in: clear {call.clears[0] - 2.0:.2f} s after the caller started talking")


async def test_when_the_secretary_ends_the_call_the_stream_closes_and_twilio_hangs_up(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    silence = "call:\n  silence_prompt_s: 2\n  silence_hangup_s: 2\n"
    async with twilio_box(tmp_path, broker, extra=silence) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        stream_sid = new_sid("MZ")
        junk = {0.5: "not json", 0.6: "[1, 2]", 0.7: json.dumps({"event": "bogus", "streamSid": stream_sid}),
                0.8: json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": "%%%"}}),
                1.0: dtmf(stream_sid, "5")}
        call = await twilio.call(b"", caller=CALLER, called="+15550003000", stream_sid=stream_sid, hang_up=False,
                                 inject_at_s=junk, max_s=90)
    assert call.closed_by_server_at is not None and call.stop_sent_at is None
    assert call.marks_received[-1][1] == "call-ended"  # the goodbye played out before the stream closed
    assert call.marks_echoed and call.marks_echoed[-1][1] == "call-ended"
    assert call.action_twiml is not None and [e.tag for e in call.action_twiml] == ["Hangup"]
    record = box.data_dir / "calls" / call.call_sid
    transcript = json.loads((record / "transcript.json").read_text(encoding="utf-8"))
    assert transcript["persona"] == "lidia"  # a number not listed: the default persona
    print(f"{len(call.media)} reply frames, closed {call.closed_by_server_at - call.started_at:.1f} s after start")


async def test_without_the_daemons_line_the_stream_closes_and_the_caller_can_leave_a_message(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        call = await twilio.call(bytes(8000 * 2), caller=CALLER, called=GULYA_NUMBER, hang_up=False, max_s=15)
    assert call.closed_by_server_at is not None and not call.media
    assert call.action_twiml is not None
    say, record = call.action_twiml.find("Say"), call.action_twiml.find("Record")
    assert say is not None and say.get("language") == "ru-RU" and "Извините" in (say.text or "")
    assert record is not None and record.get("action") == PUBLIC_URL + "/twilio/recorded"


async def test_twilios_status_callback_ends_a_stream_that_is_still_bridged(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker) as box, MqttWatch(broker, f"{BASE}/call/event") as bus, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        call_sid = new_sid("CA")
        calling = asyncio.create_task(twilio.call(b"", caller=CALLER, called=GULYA_NUMBER, call_sid=call_sid,
                                                  hang_up=False, max_s=30))
        await bus.wait_for(lambda m: m.json()["type"] == "answered" and m.json()["call_id"] == call_sid, timeout=10)
        await asyncio.sleep(1.0)
        posted = time.monotonic()
        status, _ = await twilio.post(PUBLIC_URL + "/twilio/status", twilio.call_params(
            call_sid, CALLER, GULYA_NUMBER, CallStatus="completed", CallDuration="2"))
        assert status == 204
        call = await asyncio.wait_for(calling, 10)
        ended = await bus.wait_for(lambda m: m.json()["type"] == "ended" and m.json()["call_id"] == call_sid,
                                   timeout=30)
    assert call.closed_by_server_at is not None and call.closed_by_server_at - posted < 1.0
    assert ended.json()["reason"] == "caller_hung_up" and ended.at > posted
    assert (box.data_dir / "calls" / call_sid / "transcript.json").is_file()


async def test_a_stream_that_is_not_8khz_mulaw_is_closed(tmp_path: Path, broker: MosquittoBroker) -> None:
    async with twilio_box(tmp_path, broker, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        ws = await twilio.open_stream("wss://box.example.test/twilio/stream")
        await ws.send_str("{broken")
        await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await ws.send_json({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
            "accountSid": ACCOUNT_SID, "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}}})
        message = await ws.receive(timeout=5)
        assert message.type.name in ("CLOSE", "CLOSED") and ws.close_code == 1003
        await ws.close()
