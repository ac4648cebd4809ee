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
