"""The box's broker users and ACL (daemon/tools/broker_users.py) on the real mosquitto: who is refused what."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from channels.bus_contract.clients import CLI, DAEMON, MAX_PACKET_BYTES, ROLES, TELEGRAM, WIDGET, Role
from channels.bus_contract.topics import Topics
from daemon.tools.broker_users import hash_matches, password_hash, write_broker_users
from daemon.tools.private_broker import MosquittoBroker

BASE = "secretary/test-box"


@contextlib.asynccontextmanager
async def client(broker: MosquittoBroker, role: Role, name: str) -> AsyncIterator[aiomqtt.Client]:
    login = broker.login(role)
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=name, username=login.username,
                              password=login.password, protocol=aiomqtt.ProtocolVersion.V5) as connected:
        yield connected


async def received(c: aiomqtt.Client, settle_s: float = 0.5) -> list[tuple[str, bytes]]:
    seen: list[tuple[str, bytes]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(settle_s):
            async for message in c.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                seen.append((str(message.topic), payload))
    return seen


def test_the_files_are_private_and_a_second_run_keeps_every_password(tmp_path: Path) -> None:
    topics = Topics("secretary", "box-1")
    first = write_broker_users(tmp_path / "mqtt", topics, tmp_path / "etc" / "credentials.env")
    assert set(first.created) == {role.name for role in ROLES}
    assert stat.S_IMODE(first.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o640
    assert stat.S_IMODE(first.acl_file.stat().st_mode) == 0o640
    files = [first.password_file.read_bytes(), first.acl_file.read_bytes(), first.credentials_file.read_bytes()]
    again = write_broker_users(tmp_path / "mqtt", topics, tmp_path / "etc" / "credentials.env")
    assert again.created == () and again.passwords == first.passwords
    assert [again.password_file.read_bytes(), again.acl_file.read_bytes(), again.credentials_file.read_bytes()] == files
    for role in ROLES:
        assert f"{role.password_env}={first.password(role)}" in first.credentials_file.read_text()
        assert len(first.password(role)) >= 32
    rotated = write_broker_users(tmp_path / "mqtt", topics, tmp_path / "etc" / "credentials.env", rotate=True)
    assert all(rotated.passwords[r.name] != first.passwords[r.name] for r in ROLES)
    assert "user secretary-widget\ntopic read secretary/box-1/reply/secretary-widget-box-1\n" in rotated.acl_file.read_text()


def test_the_password_hash_is_mosquittos() -> None:
    hashed = password_hash("s3cret")
    assert hashed.startswith("$7$101$") and hash_matches(hashed, "s3cret") and not hash_matches(hashed, "s3cret!")
    # What `mosquitto_passwd -b` wrote for u1 / secret1:
    known = "$7$101$fE+gC4U2kr4bF/Cz$DjY+xRN+ghoa4VeSF30bkvcHaUTQttCLE50pImwhRHBtq7/lKhLur1fhHO7FOUedyrZqbQ60bnIY++5ZJNX3+g=="
    assert hash_matches(known, "secret1")


async def test_an_anonymous_client_and_a_wrong_password_are_refused(broker: MosquittoBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="anonymous", timeout=3):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="guess", username=WIDGET.username,
                                  password="guess", timeout=3):
            pass


async def test_the_widget_may_chat_and_nothing_more(broker: MosquittoBroker) -> None:
    async with client(broker, DAEMON, "daemon") as daemon, client(broker, WIDGET, WIDGET.client_id("test-box")) as widget:
        await daemon.subscribe(f"{BASE}/cmd/#", qos=1)
        for suffix in ("cmd/#", "sms/event", "call/event", f"reply/{TELEGRAM.client_id('test-box')}",
                       f"reply/{WIDGET.client_id('test-box')}"):
            await widget.subscribe(f"{BASE}/{suffix}", qos=1)
        for verb in ("dial", "sms/send", "calls/delete", "calls/list", "reload", "chat"):
            await widget.publish(f"{BASE}/cmd/{verb}", b"{}", qos=1)
        await widget.publish(f"{BASE}/call/state", b'{"state": "idle"}', qos=1, retain=True)
        assert await received(daemon) == [(f"{BASE}/cmd/chat", b"{}")]  # the only verb it sent that it may
        await daemon.publish(f"{BASE}/sms/event", b'{"text": "your code is 1234"}', qos=1)
        await daemon.publish(f"{BASE}/reply/{TELEGRAM.client_id('test-box')}", b'{"ok": true}', qos=1)
        await daemon.publish(f"{BASE}/reply/{WIDGET.client_id('test-box')}", b'{"ok": true, "mine": 1}', qos=1)
        assert await received(widget) == [(f"{BASE}/reply/{WIDGET.client_id('test-box')}", b'{"ok": true, "mine": 1}')]


async def test_only_the_daemon_writes_the_box_state(broker: MosquittoBroker) -> None:
    async with client(broker, CLI, "owner") as owner, client(broker, TELEGRAM, "tg") as telegram, \
            client(broker, DAEMON, "daemon") as daemon:
        await owner.subscribe(f"{BASE}/#", qos=1)
        await telegram.publish(f"{BASE}/call/state", b'{"state": "active"}', qos=1, retain=True)
        await telegram.publish(f"{BASE}/status", b"offline", qos=1, retain=True)
        await telegram.publish(f"{BASE}/cmd/reload", b"{}", qos=1)  # not a verb the Telegram channel sends
        await daemon.publish(f"{BASE}/call/state", b'{"state": "idle"}', qos=1, retain=True)
        await daemon.publish(f"{BASE}/cmd/dial", b"{}", qos=1)  # the daemon answers commands, it sends none
        assert await received(owner) == [(f"{BASE}/call/state", b'{"state": "idle"}')]


async def test_a_packet_over_the_limit_is_refused_by_the_broker(broker: MosquittoBroker) -> None:
    async with client(broker, DAEMON, "daemon") as daemon:
        await daemon.subscribe(f"{BASE}/cmd/#", qos=1)
        async with client(broker, CLI, "owner") as owner:
            await owner.publish(f"{BASE}/cmd/chat", b"x" * (MAX_PACKET_BYTES - 1024), qos=1)
            with contextlib.suppress(aiomqtt.MqttError):  # mosquitto drops the connection that sent it
                await owner.publish(f"{BASE}/cmd/chat", b"y" * (MAX_PACKET_BYTES + 1), qos=1, timeout=3)
        seen = await received(daemon)
    assert [len(payload) for _, payload in seen] == [MAX_PACKET_BYTES - 1024]
