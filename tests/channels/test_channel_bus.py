"""``ChannelBus.run`` stops when cancelled, wherever the cancellation lands (Python 3.11's ``wait_for`` in aiomqtt)."""

from __future__ import annotations

import asyncio
import random

from channels.bus_client import ChannelBus
from config.schema import MqttConfig
from daemon.tools.private_broker import MosquittoBroker


async def test_a_stop_during_connect_or_subscribe_always_ends(broker: MosquittoBroker) -> None:
    chance = random.Random(11)
    stopped_connected = 0
    for attempt in range(60):
        bus = ChannelBus(MqttConfig(url=broker.url), "stop-test", f"stop-test-{attempt}",
                         [f"sub/{n}" for n in range(8)], lambda topic, payload: None)
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

    base = "secretary/nest-test"
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="nest-publisher") as publisher:
        await publisher.publish(f"{base}/modem/state", b"[" * 5000, qos=1, retain=True)
        heard: list[tuple[str, object]] = []
        bus = ChannelBus(MqttConfig(url=broker.url), "nest-test", "nest-test-reader", ["modem/state", "call/state"],
                         lambda topic, payload: heard.append((topic, payload)))
        running = asyncio.create_task(bus.run())
        try:
            async with asyncio.timeout(10):
                while not any(topic == "modem/state" for topic, _ in heard):
                    await asyncio.sleep(0.02)
                assert isinstance(dict(heard)["modem/state"], str)  # delivered as text that is not JSON
                await publisher.publish(f"{base}/call/state", b'{"state": "idle"}', qos=1, retain=True)
                while not any(topic == "call/state" for topic, _ in heard):
                    await asyncio.sleep(0.02)
            assert not running.done()  # still running, and the next message came through
            assert dict(heard)["call/state"] == {"state": "idle"}
        finally:
            running.cancel()
            await asyncio.wait({running}, timeout=5)
            await publisher.publish(f"{base}/modem/state", b"", qos=1, retain=True)
            await publisher.publish(f"{base}/call/state", b"", qos=1, retain=True)
