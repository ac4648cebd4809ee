"""What the bridge gives away: SMS text only when the owner says so, and a warning when the remote link is in clear.

Two real brokers (the box's and the remote one); a plain ``mqtt://`` link to
another host is made real with a relay listening on this machine's
non-loopback address in front of the remote broker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from channels.bus_contract.clients import REMOTE
from channels.remote_bridge.bridge import RemoteBridge
from config.schema import SecretaryConfig
from daemon.tools.private_broker import MosquittoBroker
from tests.channels.remote_bridge.bridge_harness import BASE, bridge_config, local_publisher, running
from tests.channels.remote_bridge.tcp_gate import TcpGate
from tests.support.daemon_runner import write_config
from tests.support.mqtt_watch import MqttWatch

REPO = Path(__file__).resolve().parents[3]
SECRET = "Код 4471, никому не говорите"
SMS = {"type": "received", "from": "+79161234567", "text": SECRET, "ts": 1700000000.5}


def dumps(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def lan_address() -> str | None:
    """This machine's address on its network (the one a default route leaves by); None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture
async def local(broker: MosquittoBroker) -> AsyncIterator[aiomqtt.Client]:
    async with local_publisher(broker) as client:
        await client.publish(BASE + "status", b"online", qos=1, retain=True)
        yield client


async def test_an_sms_reaches_the_remote_without_its_text_by_default(
    broker: MosquittoBroker, remote: MosquittoBroker, local: aiomqtt.Client,
) -> None:
    async with MqttWatch(remote, BASE + "#") as watch:
        bridge = RemoteBridge(bridge_config(broker.url, {"url": remote.url}), broker.login(REMOTE), None)
        async with running(bridge) as (_, status):
            await status.wait_for("ready", "bridging to 127.0.0.1")
            assert "WARNING" not in status.history[-1][1]  # plain mqtt:// on this machine is not in clear
            await local.publish(BASE + "sms/event", dumps(SMS), qos=1)
            # not a received SMS: nothing says what in it is text, so none of it goes
            await local.publish(BASE + "sms/event", dumps({"type": "sent", "to": "+1", "text": SECRET}), qos=1)
            await local.publish(BASE + "sms/event", b"not json " + SECRET.encode(), qos=1)
            await local.publish(BASE + "call/event", dumps({"type": "dtmf", "call_id": "c1", "digit": "5"}), qos=1)
            await watch.wait_for(lambda m: m.topic == BASE + "call/event")  # everything before it has gone by
    sms = [m for m in watch.seen if m.topic == BASE + "sms/event"]
    assert [m.json() for m in sms] == [{"type": "received", "text": "", "from": "+79161234567",
                                        "ts": 1700000000.5, "text_withheld": True}]
    assert not any(SECRET.encode() in m.payload or b"4471" in m.payload for m in watch.seen)


async def test_the_owner_can_forward_sms_text(
    broker: MosquittoBroker, remote: MosquittoBroker, local: aiomqtt.Client,
) -> None:
    config = bridge_config(broker.url, {"url": remote.url, "forward_sms_text": True})
    async with MqttWatch(remote, BASE + "sms/event") as watch:
        async with running(RemoteBridge(config, broker.login(REMOTE), None)) as (_, status):
            await status.wait_for("ready")
            await local.publish(BASE + "sms/event", dumps(SMS), qos=1)
            forwarded = await watch.wait_for(lambda m: True)
    assert forwarded.payload == dumps(SMS)  # byte-identical


def test_the_cleartext_warning_names_the_host_only_for_plain_mqtt_off_this_machine() -> None:
    def warning(url: str, **more: object) -> str | None:
        remote = {"enabled": True, "url": url, **more}
        return SecretaryConfig.model_validate({"box_id": "b", "channels": {"remote": remote}}).channels.remote \
            .cleartext_warning

    for quiet in ("mqtts://fleet.example.com:8883", "mqtt://127.0.0.1:1883", "mqtt://localhost", "mqtt://[::1]:1883",
                  "mqtt://127.0.0.2"):
        assert warning(quiet) is None, quiet
    said = warning("mqtt://fleet.example.com:1883")
    assert said is not None and "plain mqtt:// to fleet.example.com" in said and "password" in said
    assert "mqtts://" in said and "SMS senders cross" in said
    assert "SMS senders and texts" in str(warning("mqtt://10.0.0.5", forward_sms_text=True))
    off = SecretaryConfig.model_validate({"box_id": "b", "channels": {"remote": {"url": "mqtt://10.0.0.5"}}})
    assert off.channels.remote.cleartext_warning is None  # the bridge is off: nothing goes anywhere


async def test_a_plain_mqtt_link_to_another_host_works_and_says_it_is_in_clear(
    broker: MosquittoBroker, remote: MosquittoBroker, local: aiomqtt.Client, caplog: pytest.LogCaptureFixture,
) -> None:
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to reach the remote broker by")
    caplog.set_level(logging.WARNING, logger="secretary.channels.remote")
    async with TcpGate(remote.port, host=address) as gate, MqttWatch(remote, BASE + "#") as watch:
        assert gate.url.startswith(f"mqtt://{address}:")
        bridge = RemoteBridge(bridge_config(broker.url, {"url": gate.url}), broker.login(REMOTE), None)
        async with running(bridge) as (_, status):
            detail = await status.wait_for("ready", f"bridging to {address}")
            await local.publish(BASE + "sms/event", dumps(SMS), qos=1)
            await watch.wait_for(lambda m: m.topic == BASE + "sms/event")
    print(f"\nservice state: {detail}")
    assert f"WARNING: channels.remote.url is plain mqtt:// to {address}" in detail and "in clear" in detail
    logged = [r for r in caplog.records if r.getMessage() == "remote broker without TLS"]
    assert len(logged) == 1 and address in str(getattr(logged[0], "warning", ""))


def test_config_check_and_doctor_warn_about_a_plain_remote_link(tmp_path: Path, broker: MosquittoBroker) -> None:
    extra = "channels:\n  remote:\n    enabled: true\n    url: mqtt://fleet.example.com:1883\n"
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data", extra=extra)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv in (["config", "check", str(config)], ["doctor", "--config", str(config)]):
        result = subprocess.run([sys.executable, "-m", "daemon.cli", *argv], capture_output=True, text=True, env=env,
                                timeout=60)
        print(result.stdout)
        assert "plain mqtt:// to fleet.example.com" in result.stdout, result.stdout + result.stderr
    assert "WARN remote     channels.remote.url is plain mqtt://" in result.stdout
    quiet = write_config(tmp_path / "quiet.yaml", broker, tmp_path / "data",
                         extra=extra.replace("mqtt://fleet", "mqtts://fleet"))
    checked = subprocess.run([sys.executable, "-m", "daemon.cli", "config", "check", str(quiet)], capture_output=True,
                             text=True, env=env, timeout=60)
    assert checked.returncode == 0 and "warning" not in checked.stdout, checked.stdout
