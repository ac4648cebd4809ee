"""The line socket: a channel's call audio reaches the same call flow, record and events as a phone call."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from channels import line_protocol as lp
from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.demo_caller import RECORDINGS_DIR
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import write_config
from tests.support.mqtt_watch import MqttWatch

pytestmark = pytest.mark.slow
BASE = "secretary/test-box"
CALLER_WAV = RECORDINGS_DIR / "en" / "01_introduction.wav"


@pytest.fixture
async def app(broker: MosquittoBroker, tmp_path: Path) -> AsyncIterator[SecretaryApp]:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(app.run())
    path = lp.socket_path(tmp_path / "data")
    for _ in range(2400):  # the greeting is synthesized once at start (slow on a busy machine)
        calls = app.supervisor.service("calls") if "calls" in app.supervisor.names else None
        if path.exists() and calls is not None and calls.phrases_ready.is_set():  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the line socket and the persona's phrases were not ready within 120 s")
    yield app
    app.stop()
    await asyncio.wait_for(task, 10)


def _caller_pcm() -> bytes:
    with wave.open(str(CALLER_WAV)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


async def test_a_channel_call_is_answered_recorded_and_announced(app: SecretaryApp, broker: MosquittoBroker) -> None:
    data_dir = app.loaded.settings.data_dir
    async with MqttWatch(broker, f"{BASE}/#") as bus:
        async with lp.open_line(lp.socket_path(data_dir), call_id="CA123-twilio", caller="+15551230000",
                                channel="twilio") as (line, ready):
            assert ready == {"type": "ready", "call_id": "CA123-twilio", "sample_rate": 8000, "frame_ms": 20}
            events: list[dict[str, object]] = []
            reply = bytearray()

            async def listen() -> None:
                async for kind, payload in line.messages():
                    if kind == lp.AUDIO:
                        reply.extend(payload)
                    elif kind == lp.EVENT:
                        events.append(json.loads(payload))

            listening = asyncio.create_task(listen())
            pcm = bytes(8000 * 2 * 4) + _caller_pcm()  # the caller listens to the greeting, then speaks
            for i in range(0, len(pcm), 1600):  # 100 ms chunks in real time
                await line.send_audio(pcm[i:i + 1600])
                await asyncio.sleep(0.1)
            await line.hangup("caller hung up")
            await asyncio.wait_for(listening, 20)
        # The bus events leave through the daemon's outbox: wait for them rather than race them.
        await bus.wait_for(lambda m: m.topic == f"{BASE}/call/event" and m.json()["type"] == "ended", timeout=10)

    greeting = [e for e in events if e["type"] == "utterance" and e["role"] == "secretary"]
    assert greeting and "Lidia" in str(greeting[0]["text"])
    assert events[-1]["type"] == "ended" and events[-1]["reason"] == "caller_hung_up"
    samples = np.frombuffer(bytes(reply), "<i2")
    assert len(samples) > 8000 and np.sqrt(np.mean(samples.astype(float) ** 2)) > 300  # the greeting, audible
    answered = [m.json() for m in bus.on(f"{BASE}/call/event") if m.json()["type"] == "answered"]
    assert answered and answered[0]["channel"] == "twilio" and answered[0]["caller"] == "+15551230000"
    ended = [m.json() for m in bus.on(f"{BASE}/call/event") if m.json()["type"] == "ended"]
    assert ended and ended[0]["channel"] == "twilio" and ended[0]["call_id"] == "CA123-twilio"
    record = data_dir / "calls" / "CA123-twilio"
    with wave.open(str(record / "caller.wav")) as w:
        caller = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    assert np.sqrt(np.mean(caller ** 2)) > 300  # the channel's audio reached the line


async def test_garbage_and_bad_hellos_are_refused_and_the_service_keeps_serving(app: SecretaryApp) -> None:
    path = lp.socket_path(app.loaded.settings.data_dir)
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped
    writer.close()
    for hello, expected in [
        ({"call_id": "../etc", "caller": None, "channel": "twilio"}, "call_id"),
        ({"call_id": "ok-1", "caller": None, "channel": "no way"}, "channel"),
        ({"call_id": "ok-2", "caller": 5, "channel": "twilio"}, "caller"),
    ]:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(lp.encode_json(lp.HELLO, hello))
        await writer.drain()
        kind, payload = await asyncio.wait_for(lp.read_message(reader), 5)  # type: ignore[misc]
        refused = json.loads(payload)
        assert kind == lp.EVENT and refused["type"] == "refused" and expected in refused["message"]
        writer.close()
    with pytest.raises(ConnectionError, match="persona"):
        async with lp.open_line(path, call_id="ok-3", caller=None, channel="twilio", persona="nobody") as (line, _):
            async for kind, payload in line.messages():
                if kind == lp.EVENT and json.loads(payload)["type"] == "ended":
                    raise ConnectionError(json.loads(payload)["message"])
    assert app.supervisor.reports()["lines"].state.value == "running"


async def test_a_key_pressed_on_the_channel_reaches_the_call_flow(app: SecretaryApp) -> None:
    data_dir = app.loaded.settings.data_dir
    async with lp.open_line(lp.socket_path(data_dir), call_id="CA-dtmf", caller="+15551230000",
                            channel="twilio") as (line, _):
        events: list[dict[str, object]] = []

        async def listen() -> None:
            async for kind, payload in line.messages():
                if kind == lp.EVENT:
                    events.append(json.loads(payload))

        listening = asyncio.create_task(listen())
        silence = bytes(1600)
        for i in range(200):  # 100 ms of silence at a time until the call ends
            if listening.done():
                break
            if i == 30:  # after the greeting: "#" says goodbye and ends the call
                await line.send_dtmf("#")
            await line.send_audio(silence)
            await asyncio.sleep(0.1)
        await asyncio.wait_for(listening, 20)
    assert events[-1]["type"] == "ended" and events[-1]["reason"] == "dtmf_end", events[-1]
    record = json.loads((data_dir / "calls" / "CA-dtmf" / "transcript.json").read_text())
    assert [d["digit"] for d in record["dtmf"]] == ["#"]
