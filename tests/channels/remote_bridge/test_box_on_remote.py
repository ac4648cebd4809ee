"""The real daemon with ``channels.remote`` on: the box as a remote broker (and Home Assistant) sees it."""

from __future__ import annotations

import asyncio
import gc
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from tests.channels.remote_bridge.tcp_gate import TcpGate
from tests.support.daemon_runner import secretaryd_command, write_config
from tests.support.mqtt_watch import MqttWatch, Seen

pytestmark = pytest.mark.slow
BASE = "secretary/test-box"
NODE = "secretary_test-box"
CALLER = "+79161234567"
BOX_ENTITIES = [("sensor", "signal"), ("binary_sensor", "registered"), ("sensor", "operator"), ("sensor", "call_state"),
                ("sensor", "last_caller"), ("button", "hangup")] + [
                ("sensor", f"engine_{engine}") for engine in ("vad", "stt", "llm", "tts")]


def remote_config(tmp_path: Path, broker: MosquittoBroker, remote_url: str) -> Path:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data",
                          extra=f"channels:\n  remote:\n    enabled: true\n    url: {remote_url}\n", answer_after_rings=1)
    return config


def on(topic: str, text: str | None = None):  # type: ignore[no-untyped-def]
    return lambda m: m.topic == f"{BASE}/{topic}" and (text is None or m.text == text)


def call_event(kind: str, call_id: str | None = None):  # type: ignore[no-untyped-def]
    return lambda m: (m.topic == f"{BASE}/call/event" and m.json()["type"] == kind
                      and (call_id is None or m.json()["call_id"] == call_id))


def call_events(seen: list[Seen], call_id: str) -> list[bytes]:
    return [m.payload for m in seen if m.topic == f"{BASE}/call/event" and m.json()["call_id"] == call_id]


@pytest.fixture
async def gate(remote: MosquittoBroker) -> AsyncIterator[TcpGate]:
    async with TcpGate(remote.port) as opened:
        yield opened


async def wait_ready_for_calls(app: SecretaryApp) -> None:
    for _ in range(2400):  # the greeting is synthesized once at start (slow on a busy machine)
        calls = app.supervisor.service("calls") if "calls" in app.supervisor.names else None
        if calls is not None and calls.phrases_ready.is_set():  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.05)
    pytest.fail("the call service's phrases were not ready within 120 s")


@pytest.mark.timeout(300)
async def test_the_box_on_a_remote_broker(
    broker: MosquittoBroker, remote: MosquittoBroker, gate: TcpGate, tmp_path: Path
) -> None:
    config = remote_config(tmp_path, broker, gate.url)
    app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
    async with MqttWatch(remote, "#") as far, MqttWatch(broker, f"{BASE}/#") as near:
        running = asyncio.create_task(app.run())
        try:
            # The box appears: online, its modem, Home Assistant discovery for every entity.
            await far.wait_for(on("status", "online"), timeout=30)
            modem = await far.wait_for(lambda m: on("modem/state")(m) and m.json()["registered"] is True, timeout=30)
            assert modem.json()["operator"] == "SimTel" and modem.json()["signal_dbm"] == -71
            for component, object_id in BOX_ENTITIES:
                config_seen = await far.wait_for(
                    lambda m, c=component, o=object_id: m.topic == f"homeassistant/{c}/{NODE}/{o}/config", timeout=60)
                assert config_seen.json()["availability_topic"] == f"{BASE}/status"
            assert "remote" in app.supervisor.names  # the daemon runs the bridge as its "remote" service
            await wait_ready_for_calls(app)
            await far.wait_for(lambda m: on("services/remote/state")(m) and m.json()["state"] == "running", timeout=10)

            # A call: its events reach the remote, last_call follows, the HA button hangs it up on the box.
            mark_far, mark_near = len(far.seen), len(near.seen)
            reply = await near.request(f"{BASE}/cmd/simulator/call", f'{{"from": "{CALLER}"}}'.encode())
            assert reply["ok"], reply
            ringing = await far.wait_for(call_event("ringing"), timeout=10, after=mark_far)
            call_id = ringing.json()["call_id"]
            assert ringing.json()["caller"] == CALLER
            await far.wait_for(call_event("answered", call_id), timeout=10, after=mark_far)
            await far.wait_for(lambda m: on("call/state")(m) and m.json()["state"] == "active", after=mark_far)
            last = await far.wait_for(on("last_call"), after=mark_far)
            assert last.json()["caller"] == CALLER and last.json()["call_id"] == call_id
            await far.publish(f"{BASE}/ha/hangup", b"PRESS")
            ended = await near.wait_for(call_event("ended", call_id), timeout=15, after=mark_near)
            assert ended.json()["reason"] == "local_hangup"  # the box hung up, not the caller
            await far.wait_for(call_event("ended", call_id), timeout=5, after=mark_far)
            await far.wait_for(lambda m: on("last_call")(m) and m.json()["outcome"] != "ringing", after=mark_far)
            await far.wait_for(lambda m: on("call/state")(m) and m.json()["state"] == "idle", after=mark_far)
            local_events, remote_events = call_events(near.seen, call_id), call_events(far.seen, call_id)
            assert remote_events == local_events  # all of them, in order, byte-identical
            arrival = {m.payload: m.at for m in far.seen if m.topic == f"{BASE}/call/event"}
            latencies = [(arrival[m.payload] - m.at) * 1000 for m in near.seen
                         if m.topic == f"{BASE}/call/event" and m.payload in arrival]
            print(f"\nreal call events local->remote (n={len(latencies)}): p50 {statistics.median(latencies):.2f} ms,"
                  f" max {max(latencies):.2f} ms")

            # The remote broker goes down (and comes back empty) during a whole call.
            await gate.close()
            await far.wait_for(on("status", "offline"), after=mark_far)  # the bridge's last will
            remote.restart()
            mark_near = len(near.seen)
            assert (await near.request(f"{BASE}/cmd/simulator/call", f'{{"from": "{CALLER}"}}'.encode()))["ok"]
            second = (await near.wait_for(call_event("answered"), timeout=10, after=mark_near)).json()["call_id"]
            assert (await near.request(f"{BASE}/cmd/simulator/hangup", b"{}"))["ok"]
            await near.wait_for(call_event("ended", second), timeout=15, after=mark_near)
            await near.wait_for(lambda m: on("call/state")(m) and m.json()["state"] == "idle", after=mark_near)
            async with MqttWatch(remote, "#") as fresh:
                reopened = time.monotonic()
                await gate.open()
                flushed = await fresh.wait_for(call_event("ended", second), timeout=10)
                print(f"remote back -> whole picture and queued call flushed: {(flushed.at - reopened) * 1000:.0f} ms "
                      f"({len(fresh.seen)} messages)")
                await asyncio.sleep(0.3)
            retained_topics = {m.topic for m in fresh.seen}
            assert [m.text for m in fresh.seen if m.topic == f"{BASE}/status"] == ["online"]
            assert {f"homeassistant/{c}/{NODE}/{o}/config" for c, o in BOX_ENTITIES} <= retained_topics
            assert {f"{BASE}/modem/state", f"{BASE}/last_call", f"{BASE}/engines/stt/state"} <= retained_topics
            assert [m.json()["state"] for m in fresh.seen if m.topic == f"{BASE}/call/state"] == ["idle"]  # newest
            assert call_events(fresh.seen, second) == call_events(near.seen, second)  # queued, then in order
            assert [m.json()["call_id"] for m in fresh.seen if m.topic == f"{BASE}/last_call"][-1] == second
        finally:
            app.stop()
            await asyncio.wait_for(running, 15)
            gc.collect()  # MQTT clients cut short mid-connect: finalize them while the loop runs
    async with MqttWatch(remote, f"{BASE}/status") as late:
        assert (await late.wait_for(lambda m: True)).text == "offline"  # a clean stop says goodbye


async def test_a_killed_box_goes_offline_on_the_remote(
    broker: MosquittoBroker, remote: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str]
) -> None:
    config = remote_config(tmp_path, broker, remote.url)
    async with MqttWatch(remote, f"{BASE}/#") as far:
        proc = subprocess.Popen(secretaryd_command(config), env=daemon_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            await far.wait_for(on("status", "online"), timeout=30)
            await far.wait_for(lambda m: on("services/remote/state")(m) and m.json()["state"] == "running", timeout=60)
            mark = len(far.seen)
            killed = time.monotonic()
            proc.kill()  # no goodbye: the remote broker publishes the bridge's last will
            will = await far.wait_for(on("status"), timeout=10, after=mark)
            assert will.text == "offline"
            print(f"\nSIGKILL -> remote status offline: {(will.at - killed) * 1000:.1f} ms")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
    async with MqttWatch(remote, f"{BASE}/status") as late:
        assert (await late.wait_for(lambda m: True)).text == "offline"  # retained
