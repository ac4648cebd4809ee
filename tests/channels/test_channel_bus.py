"""``ChannelBus.run`` stops when cancelled, wherever the cancellation lands (Python 3.11's ``wait_for`` in aiomqtt)."""

from __future__ import annotations

import asyncio
import random

from channels.bus_client import ChannelBus
from channels.bus_contract.clients import CLI, DAEMON
from config.schema import MqttConfig
from daemon.tools.private_broker import MosquittoBroker


async def test_a_stop_during_connect_or_subscribe_always_ends(broker: MosquittoBroker) -> None:
    chance = random.Random(11)
    stopped_connected = 0
    for attempt in range(60):
        bus = ChannelBus(MqttConfig(url=broker.url), broker.topics.box_id, f"stop-test-{attempt}",
                         list(CLI.reads), lambda topic, payload: None, login=broker.login(CLI))  # 9 subscriptions
        running = asyncio.create_task(bus.run())
        await asyncio.sleep(chance.uniform(0, 0.03))  # somewhere in connect, the subscribes, or the message loop
        stopped_connected += bus.connected.is_set()
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=3)
        assert done, f"stop {attempt + 1} hung: the channel bus is still running"
        assert not bus.connected.is_set()
    assert 0 < stopped_connected < 60  # the stops fell both before and after the connection was up


async def test_a_retained_nested_payload_does_not_take_the_channel_down(broker: MosquittoBroker) -> None:
    """``"[" * 5000`` makes ``json.loads`` raise RecursionError; retained, it once kept a channel in a crash loop."""
    import aiomqtt

    base = broker.topics.base
    daemon = broker.login(DAEMON)  # the publisher of the box's state
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="nest-publisher", username=daemon.username,
                              password=daemon.password) as publisher:
        await publisher.publish(f"{base}/modem/state", b"[" * 5000, qos=1, retain=True)
        heard: list[tuple[str, object]] = []
        bus = ChannelBus(MqttConfig(url=broker.url), broker.topics.box_id, "nest-test-reader",
                         ["modem/state", "call/state"], lambda topic, payload: heard.append((topic, payload)),
                         login=broker.login(CLI))
        running = asyncio.create_task(bus.run())
        try:
            async with asyncio.timeout(10):
                await bus.connected.wait()
                await publisher.publish(f"{base}/call/state", b'{"state": "idle"}', qos=1, retain=True)
                while not any(topic == "call/state" for topic, _ in heard):
                    await asyncio.sleep(0.02)
            assert not running.done()  # still running, and the next message came through
            assert dict(heard)["call/state"] == {"state": "idle"}
            assert "modem/state" not in dict(heard) and "modem/state" not in bus.state  # refused, not delivered
        finally:
            running.cancel()
            await asyncio.wait({running}, timeout=5)
            await publisher.publish(f"{base}/modem/state", b"", qos=1, retain=True)
            await publisher.publish(f"{base}/call/state", b"", qos=1, retain=True)
