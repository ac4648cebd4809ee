"""The MQTT bus: how the daemon tells the world what happens and takes commands.

``Bus`` is what services use. Publishing never blocks and never fails: the
message goes to the outbox, and ``BusConnection`` (a supervised service)
delivers it when the broker is there. ``BusConnection`` owns the broker
connection: last will ``offline`` on ``status``, ``online`` on every connect,
all retained state republished after a reconnect, ``cmd/#`` dispatched with
MQTT v5 request/response, ``offline`` published on a clean stop. A stop
always stops it, even one aiomqtt swallowed (Python 3.11's ``wait_for``):
see ``channels/firm_cancel.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels.bus_contract.box_payloads import BoxStatus
from channels.bus_contract.clients import ANONYMOUS, BusLogin
from channels.bus_contract.limits import DAEMON_MAX_PACKET_BYTES
from channels.bus_contract.topics import CALL_EVENT, Topics, command
from channels.firm_cancel import raise_if_cancel_lost, stop_firmly
from config.schema import MqttConfig
from daemon.bus.commands import CommandHandler, CommandRouter, StreamingHandler, is_peer_fault
from daemon.bus.outbox import OutboundMessage, Outbox
from daemon.runtime.service import Service, ServiceStatus

log = logging.getLogger("secretary.bus")

PUBLISH_TIMEOUT_S = 5.0
# paho leaves Nagle on: a reply written right after an ACK then waits ~40 ms for
# the peer's delayed ACK. Commands and events are small and latency-bound.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
GOODBYE_BUDGET_S = 1.5
ONLINE = BoxStatus(online=True).encode().encode("utf-8")
OFFLINE = BoxStatus(online=False).encode().encode("utf-8")


def encode(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Bus:
    """The daemon's publishing and command API. Safe to use while disconnected."""

    def __init__(self, topics: Topics, max_queued_events: int = 10_000) -> None:
        self.topics = topics
        self.outbox = Outbox(max_queued_events)
        self.commands = CommandRouter()
        self.connected = False
        self.connections = 0  # successful broker sessions so far

    def publish_state(self, suffix: str, payload: Any) -> None:
        """Retained state under ``<prefix>/<box_id>/<suffix>``; newest wins."""
        self.outbox.put_state(self.topics(suffix), encode(payload))

    def publish_event(self, suffix: str, payload: Any) -> None:
        """A non-retained event; kept in order until the broker has it."""
        self.outbox.put_event(OutboundMessage(self.topics(suffix), encode(payload)))

    def call_event(self, event_type: str, call_id: str, **fields: Any) -> None:
        """A raw ``call/event`` ``{type, call_id, ts, ...}`` for tools and tests that stage one.

        The daemon's own call events all come from ``daemon/call/announcer.py``.
        """
        self.publish_event(CALL_EVENT, {"type": event_type, "call_id": call_id, "ts": round(time.time(), 3), **fields})

    def register_command(
        self, verb: str, handler: CommandHandler | StreamingHandler, *, streaming: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        self.commands.register(verb, handler, streaming=streaming, timeout_s=timeout_s)


class BusConnection(Service):
    name = "bus"

    def __init__(self, bus: Bus, config: MqttConfig, login: BusLogin = ANONYMOUS) -> None:
        self.bus = bus
        self.config = config
        self._login = login  # the daemon's user (channels/bus_contract/clients.py)
        self._handlers: asyncio.TaskGroup | None = None

    def config_slice(self) -> Any:
        return (self.config, self._login)

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        status = self.bus.topics.status
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=self._login.username,
            password=self._login.password,
            identifier=cfg.client_id or f"secretaryd-{self.bus.topics.box_id}",
            protocol=aiomqtt.ProtocolVersion.V5,
            properties=_connect_properties(),
            will=aiomqtt.Will(status, OFFLINE, qos=1, retain=True),
            keepalive=cfg.keepalive_s,
            timeout=PUBLISH_TIMEOUT_S,
            tls_context=ssl.create_default_context() if cfg.tls else None,
            socket_options=NO_DELAY,
        )

    async def run(self, status: ServiceStatus) -> None:
        failures = 0
        async with asyncio.TaskGroup() as handlers:
            self._handlers = handlers
            while True:
                raise_if_cancel_lost()  # a stop that landed as a connection attempt failed
                try:
                    async with self._client() as client:
                        failures = 0
                        await self._serve(client, status)
                except aiomqtt.MqttError as exc:
                    self.bus.connected = False
                    failures += 1
                    delay = min(0.25 * 2 ** min(failures, 10), self.config.reconnect_max_s)
                    detail = f"broker {self.config.host}:{self.config.port} unreachable ({exc}); retry in {delay:.1f} s, {len(self.bus.outbox)} queued"
                    status.degraded(detail)
                    log.warning("mqtt disconnected", extra={"error": str(exc), "retry_s": delay, "queued": len(self.bus.outbox)})
                    await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client, status: ServiceStatus) -> None:
        topics = self.bus.topics
        # Subscribe first: whoever sees "online" may send a command right away.
        await client.subscribe(topics.command_filter, qos=1)
        await client.publish(topics.status, ONLINE, qos=1, retain=True)
        self.bus.outbox.requeue_retained()
        self.bus.connected = True
        self.bus.connections += 1
        status.ready(f"connected to {self.config.host}:{self.config.port}")
        log.info("mqtt connected", extra={"broker": f"{self.config.host}:{self.config.port}", "queued": len(self.bus.outbox)})
        try:
            raise_if_cancel_lost()  # a stop that landed as the broker answered above
            await _first_failure(self._send_loop(client), self._receive_loop(client))
        except asyncio.CancelledError:
            await self._goodbye(client)
            raise

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        outbox = self.bus.outbox
        while True:
            await outbox.wait()
            message = outbox.peek()
            if message is None:
                continue
            await _deliver(client, message, PUBLISH_TIMEOUT_S)
            outbox.ack(message)

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            verb = self.bus.topics.command_verb(str(message.topic))
            if verb is None:
                continue
            assert self._handlers is not None
            self._handlers.create_task(self._handle_command(verb, message))

    async def _handle_command(self, verb: str, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else encode(message.payload or b"")
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        if response_topic and not self.bus.topics.is_reply(response_topic):  # a command may not aim the daemon elsewhere
            self.bus.commands.bad_payloads.bad(str(response_topic), f"{command(verb)} refused: not a reply topic of this box")
            return

        def emit(partial: Any) -> None:
            if response_topic:
                self.bus.outbox.put_event(
                    OutboundMessage(response_topic, encode({"ok": True, "partial": partial}), correlation_data=correlation)
                )

        reply = await self.bus.commands.dispatch(verb, payload, self.config.command_timeout_s, emit,
                                                 peer=response_topic or None)
        if not is_peer_fault(reply):  # those the router logged, once per peer per interval
            log.info("command", extra={"verb": verb, "ok": reply["ok"], "replied": bool(response_topic)})
        if not response_topic:
            if not reply["ok"] and not is_peer_fault(reply):
                log.warning("command failed and has no response topic", extra={"verb": verb, "error": reply["error"]})
            return
        self.bus.outbox.put_event(
            OutboundMessage(response_topic, encode(reply), correlation_data=correlation)
        )

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """On a clean stop: flush what is queued, then say offline (bounded time)."""
        deadline = time.monotonic() + GOODBYE_BUDGET_S
        try:
            while (message := self.bus.outbox.peek()) is not None and time.monotonic() < deadline:
                await _deliver(client, message, max(deadline - time.monotonic(), 0.05))
                self.bus.outbox.ack(message)
            await client.publish(self.bus.topics.status, OFFLINE, qos=1, retain=True, timeout=1.0)
            log.info("mqtt offline published")
        except aiomqtt.MqttError as exc:
            log.warning("could not say goodbye to the broker", extra={"error": str(exc)})
        finally:
            self.bus.connected = False


def _connect_properties() -> Properties:
    """MQTT v5 CONNECT properties: the broker drops, rather than delivers, packets over the commands' limit."""
    props = Properties(PacketTypes.CONNECT)
    props.MaximumPacketSize = DAEMON_MAX_PACKET_BYTES
    return props


def request_properties(response_topic: str, correlation: bytes) -> Properties:
    """MQTT v5 PUBLISH properties of a ``cmd/*`` request: where to reply and the id to echo."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


async def _deliver(client: aiomqtt.Client, message: OutboundMessage, timeout: float) -> None:
    """Publish one outbox message; returns once the broker acknowledged it (QoS 1)."""
    props = None
    if message.correlation_data is not None:
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = message.correlation_data
    await client.publish(
        message.topic, message.payload, qos=message.qos, retain=message.retain, properties=props, timeout=timeout
    )


async def _first_failure(*coroutines: Awaitable[None]) -> None:
    """Run coroutines together; when one ends or fails (or this is cancelled), stop the rest and re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        await stop_firmly(tasks)
