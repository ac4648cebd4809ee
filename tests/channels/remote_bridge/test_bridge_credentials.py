"""The bridge on a remote broker that wants TLS (a private CA) and a username and password."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from channels.bus_contract.clients import REMOTE
from channels.remote_bridge.bridge import RemoteBridge
from daemon.tools.private_broker import BrokerUnavailable, MosquittoBroker
from tests.channels.remote_bridge.bridge_harness import BASE, bridge_config, local_publisher, running
from tests.channels.remote_bridge.secure_broker import SecureBroker

USER, PASSWORD = "box-bridge", "s3cret-Пароль"


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureBroker]:
    workdir = tmp_path / "secure-broker"
    workdir.mkdir()
    try:
        broker = SecureBroker(workdir, USER, PASSWORD)
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    with broker:
        yield broker


async def _retained_over_tls(secure: SecureBroker, topic: str) -> dict[str, bytes]:
    context = ssl.create_default_context(cafile=str(secure.ca_file))
    seen: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", secure.port, username=USER, password=PASSWORD, tls_context=context,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(0.5):
                async for message in client.messages:
                    seen[str(message.topic)] = message.payload if isinstance(message.payload, bytes) else b""
        except TimeoutError:
            pass
    return seen


async def test_tls_with_a_ca_file_and_credentials(broker: MosquittoBroker, secure: SecureBroker) -> None:
    async with local_publisher(broker) as local:
        await local.publish(BASE + "status", b"online", qos=1, retain=True)
        await local.publish(BASE + "call/state", b'{"state":"idle","call_id":null,"caller":null,"since":1.0}', qos=1,
                            retain=True)
    remote = {"url": secure.url, "username": USER, "ca_file": str(secure.ca_file), "client_id": "fleet-box-7"}
    bridge = RemoteBridge(bridge_config(broker.url, remote), broker.login(REMOTE), PASSWORD)
    async with running(bridge) as (_, status):
        assert "127.0.0.1" in await status.wait_for("ready", timeout=10)
        await asyncio.sleep(0.2)
        seen = await _retained_over_tls(secure, "#")
    assert seen[BASE + "status"] == b"online"
    assert seen[BASE + "call/state"].startswith(b'{"state":"idle"')
    assert "homeassistant/sensor/secretary_test-box/call_state/config" in seen


async def test_a_wrong_password_degrades_and_keeps_retrying(broker: MosquittoBroker, secure: SecureBroker) -> None:
    remote = {"url": secure.url, "username": USER, "ca_file": str(secure.ca_file)}
    bridge = RemoteBridge(bridge_config(broker.url, remote), broker.login(REMOTE), "wrong")
    async with running(bridge) as (task, status):
        detail = await status.wait_for("degraded", "Not authorized", timeout=10)
        assert "retrying" in detail
        before = bridge.connect_attempts
        await asyncio.sleep(2.0)
        assert bridge.connect_attempts >= before + 3  # backoff (capped by mqtt.reconnect_max_s), never gives up
        assert not task.done() and status.state == "degraded"


async def test_an_unknown_ca_is_refused(broker: MosquittoBroker, secure: SecureBroker) -> None:
    remote = {"url": secure.url, "username": USER}  # no ca_file: the system CAs do not know the private CA
    bridge = RemoteBridge(bridge_config(broker.url, remote), broker.login(REMOTE), PASSWORD)
    async with running(bridge) as (task, status):
        await status.wait_for("degraded", "CERTIFICATE_VERIFY_FAILED", timeout=10)
        assert not task.done()
    missing = {"url": secure.url, "username": USER, "ca_file": "/nonexistent/ca.pem"}
    bridge = RemoteBridge(bridge_config(broker.url, missing), broker.login(REMOTE), PASSWORD)
    async with running(bridge) as (task, status):
        await status.wait_for("degraded", "FileNotFoundError", timeout=10)
        assert not task.done()
