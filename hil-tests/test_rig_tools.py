"""The rig's own instruments: if they mismeasure, the cases in test_box_calls.py could pass when they should not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
from box_bus import BoxBus, BoxCommandError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from real_rig import MissingEnv, RealRigEnv
from rig import Said, same_number
from rig_audio import (
    SAMPLE_RATE,
    BoxRecording,
    CallerQueue,
    audible_fraction,
    first_audible_s,
    last_audible_end_s,
    read_line_wav,
    speech_span_s,
)
from sim_rig import UplinkTail
from transcriber import has_word, word_recall

from channels.bus_contract.clients import CLI, DAEMON
from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
from drivers.sim7600.simulator.call_audio import UplinkRecorder


def tone(seconds: float, amplitude: float = 3000.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def quiet(seconds: float, amplitude: float = 0.0) -> np.ndarray:
    noise = np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE)) * amplitude
    return noise.astype(np.int16)


def test_levels_find_where_the_voice_starts_and_stops() -> None:
    audio = np.concatenate([quiet(0.5, 30), tone(1.0), quiet(0.3, 30), tone(0.2), quiet(1.0, 30)])
    assert first_audible_s(audio) == pytest.approx(0.5)
    assert last_audible_end_s(audio) == pytest.approx(2.0)
    assert last_audible_end_s(audio, 0.0, 1.7) == pytest.approx(1.5)  # the window ends in the pause
    assert first_audible_s(audio, 1.5) == pytest.approx(1.8)
    assert audible_fraction(audio, 0.5, 1.5) == 1.0 and audible_fraction(audio, 2.0) == 0.0
    assert first_audible_s(quiet(1.0, 100)) is None  # comfort noise is not speech


def test_a_caller_line_is_placed_by_its_voice() -> None:
    line = caller_script("en")[0]
    start, end = speech_span_s(read_line_wav(line.wav))
    assert 0.1 <= start <= 0.3 and line.seconds - 0.35 <= end <= line.seconds  # ~0.2 s of silence either side
    said = Said.placed(line.wav, 2.0)
    assert said.speech_start_s == pytest.approx(2.0 + start) and said.duration_s == pytest.approx(line.seconds, abs=0.01)


def test_the_recording_dates_its_first_sample_by_the_earliest_arrival() -> None:
    recording = BoxRecording(clock=lambda: 0.0)
    frame = tone(0.02).tobytes()
    recording.extend(frame * 5, at=100.10)  # 100 ms that arrived by 100.10
    recording.extend(frame * 5, at=100.25)  # late: does not move the start later
    assert recording.started_at == pytest.approx(100.0)
    assert recording.time_of(0.2) == pytest.approx(100.2)
    assert recording.seconds == pytest.approx(0.2) and len(recording.samples(0.1)) == 800


def test_the_caller_queue_pads_the_last_frame_and_then_sends_silence() -> None:
    queue = CallerQueue()
    queue.add(tone(0.03))
    first, second, third = queue.next_frame(), queue.next_frame(), queue.next_frame()
    assert len(first) == len(second) == len(third) == 320
    assert second[160:] == bytes(160) and third == bytes(320) and first != bytes(320)


def test_the_uplink_tail_reads_what_the_simulator_appends(tmp_path: Path) -> None:
    path = tmp_path / "uplink.wav"
    tail = UplinkTail(path)
    assert tail.read_from(0) == (0, b"")  # no file yet
    recorder = UplinkRecorder(path)
    assert tail.read_from(0) == (0, b"")  # no header yet
    chunks = [bytes([i]) * 320 for i in range(1, 6)]
    seen = b""
    for chunk in chunks:
        recorder.write(chunk[:100])
        recorder.write(chunk[100:])
        size, data = tail.read_from(len(seen))
        seen += data
        assert size == len(seen)
    recorder.close()
    assert seen == b"".join(chunks)


def test_words_match_by_sound_not_by_spelling() -> None:
    assert has_word("This is Lydia. How can I help you?", "Lidia")
    assert not has_word("This is Linda.", "Lidia")
    assert word_recall("Hi, this is John Peters, about the invoice.", "hi this is john peter about the invoice") == 1.0
    assert word_recall("Hi, this is John Peters, about the invoice.", "this is the office") < 0.5


def test_numbers_match_across_national_and_international_forms() -> None:
    assert same_number("+79161234567", "89161234567")
    assert not same_number("+79161234567", "+79161234568")
    assert not same_number("+7916", "+7916") and not same_number(None, "+79161234567")


def test_the_real_rig_names_every_variable_it_misses() -> None:
    with pytest.raises(MissingEnv) as missing:
        RealRigEnv.from_environ({"SECRETARY_HIL_BOX_ID": "office-1", "SECRETARY_HIL_TESTER_AUDIO_PORT": "/dev/x"})
    assert missing.value.names == ["SECRETARY_HIL_BOX_MQTT", "SECRETARY_HIL_BOX_NUMBER", "SECRETARY_HIL_TESTER_AT_PORT"]
    env = RealRigEnv.from_environ({
        "SECRETARY_HIL_BOX_MQTT": "mqtt://box:1883", "SECRETARY_HIL_BOX_ID": "office-1",
        "SECRETARY_HIL_BOX_NUMBER": "+79161234567", "SECRETARY_HIL_TESTER_AT_PORT": "/dev/a",
        "SECRETARY_HIL_TESTER_AUDIO_PORT": "/dev/b", "SECRETARY_HIL_VOICE_ROUND_TRIP_MS": "350",
    })
    assert env.timing.voice_round_trip_s == pytest.approx(0.35) and env.power_off is None and env.tester_pin is None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(workdir=tmp_path) as running:
        yield running


async def test_box_bus_requests_get_their_own_reply_and_refusals_raise(broker: MosquittoBroker) -> None:
    base = broker.topics.base
    daemon = broker.login(DAEMON)

    async def box() -> None:  # answers cmd/echo, refuses everything else, like the daemon's command router (its user)
        async with aiomqtt.Client("127.0.0.1", broker.port, username=daemon.username, password=daemon.password,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(f"{base}/cmd/#", qos=1)
            await client.publish(f"{base}/status", b"online", qos=1, retain=True)
            async for message in client.messages:
                props = message.properties
                verb = str(message.topic).removeprefix(f"{base}/cmd/")
                args = json.loads(message.payload)  # type: ignore[arg-type]
                reply = ({"ok": True, "result": args} if verb == "echo"
                         else {"ok": False, "error": {"code": "unknown", "message": f"no command {verb}"}})
                answer = Properties(PacketTypes.PUBLISH)
                answer.CorrelationData = props.CorrelationData  # type: ignore[union-attr]
                await client.publish(props.ResponseTopic, json.dumps(reply), qos=1, properties=answer)  # type: ignore[union-attr]

    responder = asyncio.create_task(box())
    try:
        async with BoxBus(broker.url, broker.topics, password=broker.login(CLI).password) as bus:  # as the owner
            await bus.wait_state("status", lambda s: s == "online", timeout=5)
            replies = await asyncio.gather(*(bus.request("echo", {"n": n}) for n in range(5)))
            assert replies == [{"n": n} for n in range(5)]
            with pytest.raises(BoxCommandError, match="no command dance") as refused:
                await bus.request("dance")
            assert refused.value.code == "unknown"
    finally:
        responder.cancel()
        await asyncio.gather(responder, return_exceptions=True)
