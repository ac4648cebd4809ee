"""A channel's window on the box: the MQTT bus, and nothing else of the daemon.

``ChannelBus`` keeps one MQTT v5 connection (reconnecting with backoff) with a
persistent session, so QoS 1 events published while the channel was away
(``call/event``, ``sms/event``) are delivered when it returns. Messages on the
subscribed topics reach ``on_message`` in broker order; retained state is also
kept in ``state`` (by topic suffix, e.g. ``modem/state``). ``request`` sends a
``cmd/<verb>`` with a response topic and correlation data and waits for the
reply; a streaming command's partial replies go to ``on_partial``. ``run``
stops when cancelled even if aiomqtt swallowed the cancellation (3.11).

What a peer publishes never escapes ``_dispatch``: a state or event over
``MAX_PAYLOAD_BYTES``, not UTF-8, not JSON (``status`` alone is plain text)
or not a JSON object is not delivered; a reply that is not a JSON object fails
its request with ``bad_payload`` at once. Each is logged once per topic per
interval (``channels/peer_log.py``), and the broker is asked on connect not to
deliver packets bigger than ``CHANNEL_MAX_PACKET_BYTES`` at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels.bus_contract.clients import ANONYMOUS, BusLogin
from channels.bus_contract.limits import CHANNEL_MAX_PACKET_BYTES, MAX_PAYLOAD_BYTES, MAX_REPLY_BYTES, over_limit
from channels.bus_contract.topics import PLAIN_TEXT, Topics, is_state
from channels.firm_cancel import cancelled_firmly
from channels.peer_json import BadJson, parse_peer_json
from channels.peer_log import BadPayloadLog
from config.schema import MqttConfig

log = logging.getLogger("secretary.channels.bus")

NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
SESSION_EXPIRY_S = 7 * 24 * 3600  # events wait for the channel up to a week


class BusUnavailable(Exception):
    """The broker is not reachable right now."""


class CommandFailed(Exception):
    """The box refused or failed a command; ``code`` says why (``unknown_command``, ``invalid``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class _Pending:
    reply: asyncio.Future[dict[str, Any]]
    on_partial: Callable[[Any], None] | None = None
    partials: list[Any] = field(default_factory=list)


class ChannelBus:
    def __init__(
        self,
        mqtt: MqttConfig,
        box_id: str,
        client_id: str,
        subscriptions: list[str],
        on_message: Callable[[str, Any], None],
        *,
        login: BusLogin | None = None,
    ) -> None:
        self.mqtt = mqtt
        self.topics = Topics(mqtt.topic_prefix, box_id)
        self.base = f"{self.topics.base}/"
        self.client_id = client_id
        self.subscriptions = subscriptions
        self.on_message = on_message
        self._login = login or ANONYMOUS  # its user on the box's broker (channels/bus_contract/clients.py)
        self.reply_topic = self.topics.reply(client_id)
        self.state: dict[str, Any] = {}
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._pending: dict[bytes, _Pending] = {}
        self.bad_payloads = BadPayloadLog(log, f"channel bus {client_id}")

    def _connect(self) -> aiomqtt.Client:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.MaximumPacketSize = CHANNEL_MAX_PACKET_BYTES
        cfg = self.mqtt
        return aiomqtt.Client(
            cfg.host, cfg.port, username=self._login.username, password=self._login.password, identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props,
            keepalive=cfg.keepalive_s, timeout=5.0, socket_options=NO_DELAY,
            tls_context=ssl.create_default_context() if cfg.tls else None,
        )

    async def run(self, on_connected: Callable[[], None] | None = None) -> None:
        """Stay connected forever; cancel to stop."""
        await cancelled_firmly(self._stay_connected(on_connected), name=f"bus-{self.client_id}")

    async def _stay_connected(self, on_connected: Callable[[], None] | None) -> None:
        failures = 0
        while True:
            try:
                async with self._connect() as client:
                    for suffix in self.subscriptions:
                        await client.subscribe(self.topics(suffix), qos=1)
                    await client.subscribe(self.reply_topic, qos=1)
                    self._client = client
                    self.connected.set()
                    failures = 0
                    log.info("channel bus connected", extra={"client_id": self.client_id})
                    if on_connected is not None:
                        on_connected()
                    async for message in client.messages:
                        self._dispatch(message)
            except aiomqtt.MqttError as exc:
                failures += 1
                delay = min(0.25 * 2 ** min(failures, 10), self.mqtt.reconnect_max_s)
                log.warning("channel bus disconnected", extra={"error": str(exc), "retry_s": delay})
                await asyncio.sleep(delay)
            finally:
                self._client = None
                self.connected.clear()
                self._fail_pending("the bus connection was lost")

    def _dispatch(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        if topic == self.reply_topic:
            self._on_reply(message, raw)
            return
        suffix = self.topics.suffix(topic)
        if suffix is None:
            return
        payload, problem = _read(raw, MAX_PAYLOAD_BYTES, text=suffix in PLAIN_TEXT)
        if problem is not None:
            self.bad_payloads.bad(suffix, problem)
            return
        if message.retain or is_state(suffix):
            self.state[suffix] = payload
        try:
            self.on_message(suffix, payload)
        except Exception:  # a consumer bug must not cut the connection
            log.exception("channel message handler failed", extra={"topic": suffix})

    def _on_reply(self, message: aiomqtt.Message, raw: bytes) -> None:
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        pending = self._pending.get(correlation) if isinstance(correlation, bytes) else None
        if pending is None:
            log.debug("reply nobody waits for", extra={"topic": self.reply_topic})
            return
        payload, problem = _read(raw, MAX_REPLY_BYTES, text=False)
        if problem is None and payload is None:
            problem = "payload is empty"
        if problem is not None:
            self.bad_payloads.bad(self.reply_topic, problem)
            if not pending.reply.done():
                refused = {"code": "bad_payload", "message": f"the reply's {problem}"}
                pending.reply.set_result({"ok": False, "error": refused})
            return
        if "partial" in payload:
            if pending.on_partial is not None:
                pending.on_partial(payload["partial"])
        elif not pending.reply.done():
            pending.reply.set_result(payload)

    async def request(
        self, verb: str, args: dict[str, Any] | None = None, *, timeout_s: float = 10.0,
        on_partial: Callable[[Any], None] | None = None,
    ) -> Any:
        """Send ``cmd/<verb>`` and return its result; raises CommandFailed, BusUnavailable or TimeoutError."""
        client = self._client
        if client is None:
            raise BusUnavailable("not connected to the broker")
        correlation = uuid.uuid4().bytes
        pending = _Pending(asyncio.get_running_loop().create_future(), on_partial)
        self._pending[correlation] = pending
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = correlation
        try:
            payload = json.dumps(args or {}, ensure_ascii=False).encode("utf-8")
            try:
                await client.publish(self.topics.command(verb), payload, qos=1, properties=props, timeout=5.0)
            except aiomqtt.MqttError as exc:
                raise BusUnavailable(str(exc)) from exc
            async with asyncio.timeout(timeout_s):
                reply = await pending.reply
        finally:
            self._pending.pop(correlation, None)
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        raise CommandFailed(str(error.get("code", "error")), str(error.get("message", "the command failed")))

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.reply.done():
                pending.reply.set_exception(BusUnavailable(reason))


def _read(raw: bytes, limit: int, *, text: bool) -> tuple[Any, str | None]:
    """A message's payload (a JSON object, the text of a plain-text topic, None when empty), or why it is refused."""
    if not raw:
        return None, None  # a retained message cleared
    too_big = over_limit(raw, limit)
    if too_big is not None:
        return None, too_big
    if text:
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError:
            return None, "payload is not UTF-8"
    try:
        payload = parse_peer_json(raw)
    except BadJson as exc:
        return None, f"payload is {exc}"
    if not isinstance(payload, dict):
        return None, f"payload must be a JSON object, got {type(payload).__name__}"
    return payload, None
