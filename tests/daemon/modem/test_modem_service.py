"""The modem on the bus: the daemon drives the simulator (and a SIM7600 on explicit ptys) end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from drivers.sim7600.simulator import SimulatedModem, SimulatorConfig
from tests.support.daemon_runner import write_config
from tests.support.mqtt_watch import MqttWatch, Seen

BASE = "secretary/test-box"
CALLER = "+79161234567"


def event(kind: str, **fields: object):  # type: ignore[no-untyped-def]
    def match(m: Seen) -> bool:
        if m.topic != f"{BASE}/call/event":
            return False
        data = m.json()
        return data["type"] == kind and all(data.get(k) == v for k, v in fields.items())

    return match


def call_state(state: str):  # type: ignore[no-untyped-def]
    return lambda m: m.topic == f"{BASE}/call/state" and m.json()["state"] == state


async def start_app(config: Path) -> tuple[SecretaryApp, asyncio.Task[None]]:
    app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
    return app, asyncio.create_task(app.run())


@pytest.fixture
async def sim_app(broker: MosquittoBroker, tmp_path: Path) -> AsyncIterator[SecretaryApp]:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data", answer_after_rings=1)
    app, task = await start_app(config)
    yield app
    app.stop()
    await asyncio.wait_for(task, 8)


async def test_call_sms_dial_and_unplug_over_the_bus(sim_app: SecretaryApp, broker: MosquittoBroker) -> None:
    async with MqttWatch(broker, f"{BASE}/#") as bus:
        state = await bus.wait_for(lambda m: m.topic == f"{BASE}/modem/state" and m.json().get("registered") is True, timeout=15)
        modem = state.json()
        assert modem["sim"] == "ready" and modem["operator"] == "SimTel" and modem["signal_dbm"] == -71
        await bus.wait_for(lambda m: m.topic == f"{BASE}/services/modem/state" and m.json()["state"] == "running")

        # An incoming call: ringing -> answered after one ring -> DTMF -> caller hangs up.
        reply = await bus.request(f"{BASE}/cmd/simulator/call", f'{{"from": "{CALLER}"}}'.encode())
        assert reply["ok"], reply
        ringing = await bus.wait_for(event("ringing", caller=CALLER), timeout=10)
        call_id = ringing.json()["call_id"]
        answered = await bus.wait_for(event("answered", call_id=call_id), timeout=10)
        active = await bus.wait_for(call_state("active"), timeout=5)
        assert active.json()["call_id"] == call_id and active.json()["caller"] == CALLER
        assert (await bus.request(f"{BASE}/cmd/simulator/dtmf", b'{"digits": "5"}'))["ok"]
        await bus.wait_for(event("dtmf", call_id=call_id, digit="5"), timeout=5)
        assert (await bus.request(f"{BASE}/cmd/simulator/hangup", b"{}"))["ok"]
        ended = await bus.wait_for(event("ended", call_id=call_id), timeout=10)
        assert ended.json()["reason"] == "remote_hangup" and ended.json()["duration_s"] >= 0
        await bus.wait_for(call_state("idle"), timeout=5, after=bus.seen.index(answered))

        # SMS both ways.
        assert (await bus.request(f"{BASE}/cmd/simulator/sms", f'{{"from": "{CALLER}", "text": "Перезвоните мне"}}'.encode()))["ok"]
        sms = await bus.wait_for(lambda m: m.topic == f"{BASE}/sms/event", timeout=10)
        assert sms.json()["from"] == CALLER and sms.json()["text"] == "Перезвоните мне"
        sent = await bus.request(f"{BASE}/cmd/sms/send", f'{{"number": "{CALLER}", "text": "We will call you back"}}'.encode(), timeout=15)
        assert sent["ok"] and isinstance(sent["result"]["reference"], int), sent
        bad = await bus.request(f"{BASE}/cmd/sms/send", b'{"number": 5}')
        assert bad["error"]["code"] == "invalid"

        # Outgoing call, then hang up from our side.
        dialed = await bus.request(f"{BASE}/cmd/dial", f'{{"number": "{CALLER}"}}'.encode(), timeout=15)
        assert dialed["ok"], dialed
        out_id = dialed["result"]["call_id"]
        await bus.wait_for(lambda m: call_state("active")(m) and m.json()["call_id"] == out_id, timeout=10)
        assert (await bus.request(f"{BASE}/cmd/hangup", b"{}", timeout=10))["ok"]
        local = await bus.wait_for(event("ended", call_id=out_id), timeout=10)
        assert local.json()["reason"] == "local_hangup"
        nothing = await bus.request(f"{BASE}/cmd/hangup", b"{}")
        assert nothing["error"]["code"] == "no_call"

        # Unplug in the middle of a call: the call ends as modem_lost, the modem comes back by itself.
        assert (await bus.request(f"{BASE}/cmd/simulator/call", f'{{"from": "{CALLER}"}}'.encode()))["ok"]
        third = (await bus.wait_for(event("ringing", caller=CALLER), timeout=10, after=bus.seen.index(local))).json()["call_id"]
        await bus.wait_for(event("answered", call_id=third), timeout=10)
        mark = len(bus.seen)
        loop = asyncio.get_running_loop()
        unplugged_at = loop.time()
        assert (await bus.request(f"{BASE}/cmd/simulator/unplug", b"{}"))["ok"]
        lost = await bus.wait_for(event("ended", call_id=third), timeout=5, after=mark)
        assert lost.json()["reason"] == "modem_lost"
        assert loop.time() - unplugged_at < 2.5  # noticed within 2 s (+ bus hop)
        await bus.wait_for(lambda m: m.topic == f"{BASE}/services/modem/state" and m.json()["state"] == "degraded", after=mark)
        assert (await bus.request(f"{BASE}/cmd/simulator/replug", b"{}"))["ok"]
        await bus.wait_for(lambda m: m.topic == f"{BASE}/services/modem/state" and m.json()["state"] == "running", timeout=15, after=mark)


async def test_sim7600_driver_on_explicit_ptys(broker: MosquittoBroker, tmp_path: Path) -> None:
    """`modem.driver: sim7600` with the ports set to a SIM7600-compatible pty pair answers and tracks the call."""
    at, audio = tmp_path / "ttyAT", tmp_path / "ttyAUDIO"
    async with SimulatedModem(at, audio, SimulatorConfig(ring_period_s=0.5)) as modem:
        config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
        config.write_text(config.read_text().replace(
            "driver: simulator", f"driver: sim7600\n  at_port: {at}\n  audio_port: {audio}\n  answer_after_rings: 2"))
        app, task = await start_app(config)
        try:
            async with MqttWatch(broker, f"{BASE}/#") as bus:
                await bus.wait_for(lambda m: m.topic == f"{BASE}/services/modem/state" and m.json()["state"] == "running", timeout=15)
                await modem.incoming_call(CALLER)
                ringing = await bus.wait_for(event("ringing", caller=CALLER), timeout=10)
                answered = await bus.wait_for(event("answered", call_id=ringing.json()["call_id"]), timeout=10)
                await bus.wait_for(call_state("active"))
                await modem.caller_hangs_up()
                await bus.wait_for(event("ended", call_id=ringing.json()["call_id"]), timeout=10)
                await bus.wait_for(call_state("idle"), after=bus.seen.index(answered), timeout=5)
        finally:
            app.stop()
            await asyncio.wait_for(task, 8)
