"""The box under test as its bus shows it: every message under ``<prefix>/<box_id>/`` and ``cmd/*`` requests.

A rig watches the box the way Home Assistant would: it subscribes to the
box's topics on the box's broker and keeps everything it saw, in order, with
the time it arrived (``time.monotonic()``), so a test can wait for a
``call/event`` or ``modem/event`` and measure when it came. Commands go out
as MQTT v5 requests (response topic + correlation data) and their final
reply is returned (``{"ok": false}`` raises ``BoxCommandError``).

On the box's broker the rig is the owner's tool, the ``cli`` role of
``channels/bus_contract/clients.py``: it logs in as ``username``, else the
URL's user, else ``secretary-cli`` (the box's broker has no anonymous
access), and its replies come back on that role's reply topic,
``<prefix>/<box_id>/reply/secretary-cli-<box_id>``: the one the broker lets
it read and the daemon agrees to answer on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels.bus_contract.clients import CLI
from channels.bus_contract.topics import Topics

NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BoxMessage:
    suffix: str  # the topic under <prefix>/<box_id>/, e.g. "call/event"
    payload: Any  # decoded JSON, else the text
    retained: bool
    at: float  # time.monotonic() when the rig received it


class BoxCommandError(RuntimeError):
    def __init__(self, verb: str, code: str, message: str) -> None:
        super().__init__(f"cmd/{verb} refused: {code}: {message}")
        self.code = code


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected a broker URL like mqtt://host:1883 or mqtts://host:8883, got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls, parts.username or None)


class BoxBus:
    def __init__(self, url: str, topics: Topics, *, username: str | None = None, password: str | None = None) -> None:
        """The box ``topics`` on the broker at ``url``, logged in as ``username`` and ``password`` (see above)."""
        self.address = BrokerAddress.parse(url)
        self.base = topics.base
        self._username = username or self.address.username or CLI.username
        self._password = password
        self.messages: list[BoxMessage] = []
        self._changed = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._reply_topic = CLI.reply_topic(topics)  # the correlation data tells this rig's replies apart
        self._pending: dict[bytes, asyncio.Future[Any]] = {}

    async def __aenter__(self) -> BoxBus:
        self._task = asyncio.create_task(self._run(), name="hil-box-bus")
        waiter = asyncio.ensure_future(self._subscribed.wait())
        done, _ = await asyncio.wait({waiter, self._task}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task in done:
            self._task.result()  # the connection failed: raise why
        if not self._subscribed.is_set():
            await self._stop()
            raise TimeoutError(f"no connection to the box's broker {self.address.host}:{self.address.port}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    async def _run(self) -> None:
        address = self.address
        async with aiomqtt.Client(
            address.host, address.port, identifier=f"hil-rig-{uuid.uuid4().hex[:8]}",
            username=self._username, password=self._password, protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=ssl.create_default_context() if address.tls else None, socket_options=NO_DELAY,
        ) as client:
            self._client = client
            await client.subscribe(f"{self.base}/#", qos=1)
            await client.subscribe(self._reply_topic, qos=1)
            self._subscribed.set()
            async for message in client.messages:
                self._receive(message)

    def _receive(self, message: aiomqtt.Message) -> None:
        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        try:
            payload: Any = json.loads(raw)
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        topic = str(message.topic)
        if topic == self._reply_topic:
            props = message.properties
            correlation = getattr(props, "CorrelationData", None) if props is not None else None
            future = self._pending.get(correlation) if correlation is not None else None
            final = not (isinstance(payload, dict) and payload.get("ok") and "partial" in payload)
            if future is not None and final and not future.done():
                future.set_result(payload)
            return
        suffix = topic.removeprefix(f"{self.base}/")
        self.messages.append(BoxMessage(suffix, payload, bool(message.retain), time.monotonic()))
        self._changed.set()

    # -- what was seen --------------------------------------------------------------
    def mark(self) -> int:
        """An index into ``messages``: pass it as ``after`` to look only at what comes next."""
        return len(self.messages)

    def seen(self, suffix: str, after: int = 0) -> list[BoxMessage]:
        return [m for m in self.messages[after:] if m.suffix == suffix]

    def events(self, suffix: str, kind: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Payloads of events on ``suffix`` (of ``type`` ``kind`` if given)."""
        return [
            m.payload for m in self.seen(suffix, after)
            if isinstance(m.payload, dict) and (kind is None or m.payload.get("type") == kind)
        ]

    def latest(self, suffix: str) -> Any | None:
        found = self.seen(suffix)
        return found[-1].payload if found else None

    async def wait_for(
        self, suffix: str, predicate: Callable[[Any], bool] = lambda _: True, *, timeout: float, after: int = 0
    ) -> BoxMessage:
        """The first message on ``suffix`` from index ``after`` whose payload satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            for message in self.messages[index:]:
                if message.suffix == suffix and predicate(message.payload):
                    return message
            index = len(self.messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [(m.suffix, str(m.payload)[:100]) for m in self.messages[-8:]]
                raise TimeoutError(f"the box published no matching {suffix} within {timeout:g} s; last seen: {recent}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_event(self, suffix: str, kind: str, *, timeout: float, after: int = 0, **fields: Any) -> BoxMessage:
        """The first event of ``type`` ``kind`` on ``suffix`` whose payload has all of ``fields``."""

        def matches(payload: Any) -> bool:
            return (isinstance(payload, dict) and payload.get("type") == kind
                    and all(payload.get(k) == v for k, v in fields.items()))

        return await self.wait_for(suffix, matches, timeout=timeout, after=after)

    async def wait_state(self, suffix: str, predicate: Callable[[Any], bool], *, timeout: float) -> Any:
        """Wait until the newest payload on a retained topic satisfies ``predicate``; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            payload = self.latest(suffix)
            if payload is not None and predicate(payload):
                return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the box's {suffix} is {payload!r}, not the state waited for, after {timeout:g} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    # -- commands -------------------------------------------------------------------
    async def request(self, verb: str, args: dict[str, Any] | None = None, *, timeout: float = 15.0) -> Any:
        """``cmd/<verb>`` with ``args``; the result of its final reply."""
        client = self._client
        if client is None:
            raise RuntimeError("not connected to the box's broker")
        correlation = uuid.uuid4().bytes
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self._reply_topic
        props.CorrelationData = correlation
        try:
            await client.publish(f"{self.base}/cmd/{verb}", json.dumps(args or {}), qos=1, properties=props)
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"no reply to cmd/{verb} within {timeout:g} s") from None
        finally:
            self._pending.pop(correlation, None)
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error", {}) if isinstance(reply, dict) else {}
            raise BoxCommandError(verb, str(error.get("code")), str(error.get("message")))
        return reply.get("result")
