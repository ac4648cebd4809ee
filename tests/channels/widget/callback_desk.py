"""The box's side of ``cmd/notify/callback_request``, stood in by the test: records requests and replies.

A plain MQTT v5 client on the broker, logged in as the daemon (the one user
that may read commands and write replies), subscribed to the command topic; it
answers each request on its response topic with the same correlation data,
as the daemon's command router does (``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"code", "message"}}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels.bus_contract.clients import DAEMON
from channels.bus_contract.verbs import CALLBACK_REQUEST
from daemon.tools.private_broker import MosquittoBroker


class CallbackDesk:
    def __init__(self, broker: MosquittoBroker) -> None:
        self.port = broker.port
        self.login = broker.login(DAEMON)
        self.topic = broker.topics.command(CALLBACK_REQUEST)
        self.requests: list[dict[str, Any]] = []
        self.reply: dict[str, Any] | None = None  # None: {"ok": true, "result": {"id": "cb-<n>"}}
        self.subscribed = asyncio.Event()

    async def serve(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier=f"test-desk-{uuid.uuid4().hex[:8]}",
                                  username=self.login.username, password=self.login.password,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(self.topic, qos=1)
            self.subscribed.set()
            async for message in client.messages:
                props = message.properties
                response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
                correlation = getattr(props, "CorrelationData", None) if props is not None else None
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                self.requests.append(json.loads(payload))
                reply = self.reply or {"ok": True, "result": {"id": f"cb-{len(self.requests)}"}}
                if response_topic:
                    reply_props = Properties(PacketTypes.PUBLISH)
                    reply_props.CorrelationData = correlation
                    await client.publish(response_topic, json.dumps(reply).encode(), qos=1, properties=reply_props)

    async def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the desk got {len(self.requests)} callback request(s), expected {count}")
            await asyncio.sleep(0.05)
        return self.requests


@contextlib.asynccontextmanager
async def callback_desk(broker: MosquittoBroker) -> AsyncIterator[CallbackDesk]:
    desk = CallbackDesk(broker)
    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(desk.serve(), name="callback-desk")
        try:
            await asyncio.wait_for(desk.subscribed.wait(), 5)
            yield desk
        finally:
            serving.cancel()
