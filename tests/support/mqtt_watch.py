"""A bus consumer for tests: subscribes like Home Assistant would and records everything."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels.bus_contract.clients import CLI, Role
from daemon.bus.connection import NO_DELAY, request_properties
from daemon.tools.private_broker import MosquittoBroker


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float
    correlation: bytes | None = None

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttWatch:
    def __init__(self, broker: MosquittoBroker, topic: str = "#", session: str | None = None, role: Role = CLI) -> None:
        """``session``: a client id for a persistent session (QoS 1 messages queued while away).

        It logs in as ``role``: by default the owner's tools (every state and event, every command); a test
        that stands in for the daemon (reads ``cmd/#``, publishes state) passes ``DAEMON``.
        """
        self.port = broker.port
        self.login = broker.login(role)
        self.reply_topic = role.reply_topic(broker.topics)
        self.session = session
        self.topic = topic
        self.seen: list[Seen] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._subscribed = asyncio.Event()

    async def __aenter__(self) -> "MqttWatch":
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._subscribed.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        connect_props = None
        if self.session:
            connect_props = Properties(PacketTypes.CONNECT)
            connect_props.SessionExpiryInterval = 3600
        async with aiomqtt.Client(
            "127.0.0.1", self.port, identifier=self.session or f"test-watch-{uuid.uuid4().hex[:8]}",
            username=self.login.username, password=self.login.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False if self.session else True,
            properties=connect_props,
            socket_options=NO_DELAY,
        ) as client:
            self._client = client
            await client.subscribe(self.topic, qos=1)
            self._subscribed.set()
            async for message in client.messages:
                props = message.properties
                correlation = getattr(props, "CorrelationData", None) if props is not None else None
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                self.seen.append(Seen(str(message.topic), payload, bool(message.retain), time.monotonic(), correlation))
                self._changed.set()

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.seen if m.topic == topic]

    async def wait_for(self, predicate: Callable[[Seen], bool], timeout: float = 5.0, after: int = 0) -> Seen:
        """The first message (from index ``after``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.seen[after:]:
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                topics = [(m.topic, m.payload[:80]) for m in self.seen[-15:]]
                raise AssertionError(f"no matching message within {timeout} s; last seen: {topics}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def request(self, topic: str, payload: bytes, timeout: float = 5.0) -> Any:
        """MQTT v5 request/response: publish with a response topic, await the correlated reply."""
        assert self._client is not None
        correlation = uuid.uuid4().bytes
        response_topic = self.reply_topic  # the one the broker lets this role read; the correlation tells replies apart
        await self._client.subscribe(response_topic, qos=1)
        props = request_properties(response_topic, correlation)
        start = len(self.seen)
        await self._client.publish(topic, payload, qos=1, properties=props)
        reply = await self.wait_for(lambda m: m.topic == response_topic and m.correlation == correlation, timeout, after=start)
        return reply.json()

    async def publish(self, topic: str, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1)
