"""Nothing a peer publishes takes a reader down, over the real broker: commands, retained state, events, replies.

For every kind of topic a reader subscribes to, a peer publishes a nesting
``json.loads`` cannot take, truncated JSON, bad UTF-8, JSON of the wrong type,
a payload over the bus limit and one of 2 MB. The reader stays up, answers
``bad_payload`` where a reply is due, handles the next good message, and logs
one line per peer, not one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels.bus_client import ChannelBus, CommandFailed
from channels.bus_contract.clients import DAEMON, WEB
from channels.bus_contract.limits import DAEMON_MAX_PACKET_BYTES, MAX_PAYLOAD_BYTES, MAX_REPLY_BYTES
from channels.bus_contract.topics import CALL_EVENT, MODEM_STATE
from channels.bus_contract.verbs import SPEAK
from config.schema import MqttConfig
from daemon.bus.connection import Bus, BusConnection
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from daemon.tools.private_broker import MosquittoBroker
from tests.support.mqtt_watch import MqttWatch

REPEATS = 20
TWO_MB = b'{"text": "' + b"a" * (2 * 1024 * 1024) + b'"}'
BAD = {
    "nested": b"[" * 5000,
    "truncated": b'{"number": "+7916',
    "bad UTF-8": b'{"text": "\xff\xfe"}',
    "wrong type": b"[1, 2, 3]",
    "over the payload limit": b'{"text": "' + b"a" * MAX_PAYLOAD_BYTES + b'"}',
}


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= logging.WARNING]


async def publish_too_big_for_the_broker(broker: MosquittoBroker, topic: str, *, retain: bool = False) -> None:
    """2 MB: over the broker's max_packet_size, so mosquitto drops the publisher; that is all that may happen."""
    login = broker.login(DAEMON)
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
        async with asyncio.timeout(5), aiomqtt.Client(
            "127.0.0.1", broker.port, username=login.username, password=login.password,
            protocol=aiomqtt.ProtocolVersion.V5, identifier="test-flooder",
        ) as flooder:
            await flooder.publish(topic, TWO_MB, qos=1, retain=retain)


@contextlib.asynccontextmanager
async def daemon_bus(broker: MosquittoBroker) -> AsyncIterator[Bus]:
    bus = Bus(broker.topics)

    async def echo(args: dict[str, Any]) -> dict[str, Any]:
        return args

    bus.register_command("test/echo", echo)
    supervisor = Supervisor(RestartPolicy(0.2, 2, 60), stop_timeout_s=5)
    supervisor.add(BusConnection(bus, MqttConfig(url=broker.url), broker.login(DAEMON)))
    running = asyncio.create_task(supervisor.run())
    try:
        async with asyncio.timeout(10):
            while not bus.connected:
                await asyncio.sleep(0.02)
        yield bus
    finally:
        supervisor.stop()
        await asyncio.wait({running}, timeout=10)


async def test_commands_answer_bad_payload_and_log_once_per_peer(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "secretary")
    command = broker.topics("cmd/test/echo")
    async with daemon_bus(broker) as bus, MqttWatch(broker, broker.topics("status")) as requester:
        for _ in range(REPEATS):
            for name, payload in BAD.items():
                reply = await requester.request(command, payload)
                assert reply["ok"] is False and reply["error"]["code"] == "bad_payload", (name, reply)
        # Between the payload limit and the packet limit the router refuses it; past the packet limit the
        # broker drops it on the way to the daemon (Maximum Packet Size), and past its own limit it drops
        # the publisher: no reply, and nothing else happens.
        with pytest.raises(AssertionError, match="no matching message"):
            await requester.request(command, b'{"text": "' + b"a" * DAEMON_MAX_PACKET_BYTES + b'"}', timeout=1.0)
        await publish_too_big_for_the_broker(broker, command)
        await requester.publish(command, b"[" * 5000)  # no response topic: refused, logged under the topic
        good = await requester.request(command, json.dumps({"number": "112"}).encode())
        assert good == {"ok": True, "result": {"number": "112"}}
        assert bus.connected and bus.connections == 1  # never dropped or restarted

    refused = warnings_from(caplog, "secretary.bus.commands")
    assert len(refused) == 2, refused  # 100 bad requests: one line for the requester, one for the bare topic
    assert requester.reply_topic in refused[0] and "bad_payload" in refused[0]
    assert refused[1].startswith("command: bad payload from cmd/test/echo ignored: cmd/test/echo: bad_payload")
    handled = [r for r in caplog.records if r.name == "secretary.bus" and r.getMessage() == "command"]
    assert len(handled) == 1  # the good one; the refused ones are not logged one by one


async def test_state_and_events_that_break_the_contract_are_not_delivered(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "secretary")
    heard: list[tuple[str, Any]] = []
    reader = ChannelBus(MqttConfig(url=broker.url), broker.topics.box_id, WEB.client_id(broker.topics.box_id),
                        [MODEM_STATE, CALL_EVENT], lambda suffix, payload: heard.append((suffix, payload)),
                        login=broker.login(WEB))
    running = asyncio.create_task(reader.run())
    login = broker.login(DAEMON)
    try:
        async with asyncio.timeout(10):
            await reader.connected.wait()
        async with aiomqtt.Client("127.0.0.1", broker.port, username=login.username, password=login.password,
                                  protocol=aiomqtt.ProtocolVersion.V5, identifier="test-peer") as peer:
            for _ in range(REPEATS):
                for payload in BAD.values():
                    await peer.publish(broker.topics(MODEM_STATE), payload, qos=1, retain=True)
                    await peer.publish(broker.topics(CALL_EVENT), payload, qos=1)
        await publish_too_big_for_the_broker(broker, broker.topics(MODEM_STATE), retain=True)
        await publish_too_big_for_the_broker(broker, broker.topics(CALL_EVENT))
        async with aiomqtt.Client("127.0.0.1", broker.port, username=login.username, password=login.password,
                                  protocol=aiomqtt.ProtocolVersion.V5, identifier="test-peer") as peer:
            await peer.publish(broker.topics(MODEM_STATE), b'{"state": "ready"}', qos=1, retain=True)
            await peer.publish(broker.topics(CALL_EVENT), b'{"type": "ringing", "call_id": "c1"}', qos=1)
            async with asyncio.timeout(10):
                while len(heard) < 2:
                    await asyncio.sleep(0.02)
        assert not running.done()
        assert heard == [(MODEM_STATE, {"state": "ready"}), (CALL_EVENT, {"type": "ringing", "call_id": "c1"})]
        assert reader.state[MODEM_STATE] == {"state": "ready"}
    finally:
        running.cancel()
        await asyncio.wait({running}, timeout=5)
    refused = warnings_from(caplog, "secretary.channels.bus")
    assert len(refused) == 2, refused  # 200 bad messages: one line per topic
    assert {MODEM_STATE, CALL_EVENT} == {r.peer for r in caplog.records if hasattr(r, "peer")}  # type: ignore[attr-defined]


async def test_a_bad_reply_fails_its_request_at_once_with_bad_payload(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "secretary")
    # a reply may be bigger than a command (calls/list): past MAX_REPLY_BYTES it is refused too
    malformed = [payload for name, payload in BAD.items() if name != "over the payload limit"]
    replies = [*malformed, b'{"ok": true, "result": "' + b"a" * MAX_REPLY_BYTES + b'"}', b""] * 3
    replies.append(b'{"ok": true, "result": {"spoken": true}}')
    login = broker.login(DAEMON)
    requester = ChannelBus(MqttConfig(url=broker.url), broker.topics.box_id, WEB.client_id(broker.topics.box_id),
                           [], lambda suffix, payload: None, login=broker.login(WEB))

    async def bad_daemon(ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port, username=login.username, password=login.password,
                                  protocol=aiomqtt.ProtocolVersion.V5, identifier="test-bad-daemon") as daemon:
            await daemon.subscribe(broker.topics("cmd/#"), qos=1)
            ready.set()
            async for message in daemon.messages:
                props = message.properties
                answer = Properties(PacketTypes.PUBLISH)
                answer.CorrelationData = props.CorrelationData  # type: ignore[union-attr]
                await daemon.publish(props.ResponseTopic, replies.pop(0), qos=1, properties=answer)  # type: ignore[union-attr]

    ready = asyncio.Event()
    serving = asyncio.create_task(bad_daemon(ready))
    running = asyncio.create_task(requester.run())
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(ready.wait(), requester.connected.wait())
        for n in range(len(replies) - 1):
            with pytest.raises(CommandFailed) as failed:
                await requester.request(SPEAK, {"text": "hello"}, timeout_s=3)
            assert failed.value.code == "bad_payload", n
        assert await requester.request(SPEAK, {"text": "hello"}, timeout_s=3) == {"spoken": True}
        assert not running.done()
    finally:
        for task in (serving, running):
            task.cancel()
        await asyncio.wait({serving, running}, timeout=5)
    refused = warnings_from(caplog, "secretary.channels.bus")
    assert len(refused) == 1 and requester.reply_topic in refused[0], refused
