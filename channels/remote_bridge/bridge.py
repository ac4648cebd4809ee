"""The remote bridge: the box's bus, republished on a remote broker, with Home Assistant discovery.

Two connections. The local one is a ``ChannelBus`` subscribed to the
configured ``topics`` (and ``status``). The remote one is the bridge's own
MQTT v5 client (``remote_client.py``), reconnecting with backoff forever.

Every local message the selection carries goes to the outbox under the same
suffix of the remote base (``<remote_prefix>/<box_id>/``): state retained,
newest per topic; events (``call/event``, ``sms/event``) not retained, QoS 1,
in order, at most ``MAX_QUEUED_EVENTS`` waiting (the oldest are dropped and
counted). An SMS goes without its text unless ``forward_sms_text`` is on
(``sms_privacy.py``). The remote ``status`` follows the box: ``online`` while the local
bus is connected and the box says ``online``; ``offline`` otherwise, on a
clean stop, and (last will) when the box dies. On every remote connection the
bridge publishes ``status``, then everything retained it holds (discovery
configs, bridged state, ``last_call``), then what waited in the outbox.

From the remote side only ``<base>ha/<command>`` for the configured
``commands`` is accepted (payload ``PRESS``, not retained); it becomes the
local ``cmd/<command>``. The status handle reports ``degraded`` while either
side is down; with a plain ``mqtt://`` url to another host the bridge works,
and its state and log say what crosses the network in clear.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import random
from typing import Any, Protocol

import aiomqtt

from channels.bus_client import BusUnavailable, ChannelBus, CommandFailed
from channels.bus_contract.box_payloads import BoxStatus
from channels.bus_contract.clients import REMOTE, BusLogin
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.topics import (
    CALL_EVENT,
    CALL_STATE,
    LAST_CALL,
    MODEM_STATE,
    SMS_EVENT,
    STATUS,
    engine_name,
    is_event,
    remote_command,
)
from channels.firm_cancel import cancelled_firmly
from channels.remote_bridge.ha_discovery import (
    PAYLOAD_PRESS,
    DiscoveryContext,
    box_entities,
    device_name,
    engine_entity,
)
from channels.remote_bridge.last_call import LastCall, next_last_call
from channels.remote_bridge.outbox import Outgoing, RemoteOutbox
from channels.remote_bridge.remote_client import OFFLINE, ONLINE, remote_client
from channels.remote_bridge.sms_privacy import without_text
from channels.remote_bridge.topics import TopicSelection
from config.schema import SecretaryConfig

log = logging.getLogger("secretary.channels.remote")

MAX_QUEUED_EVENTS = 1000
PUBLISH_TIMEOUT_S = 10.0
GOODBYE_TIMEOUT_S = 2.0
LOCAL_POLL_S = 0.25
BACKOFF_INITIAL_S = 0.5
STABLE_SESSION_S = 10.0  # a remote session this long resets the backoff
DISTRIBUTION = "ai-secretary-box"


class StatusSink(Protocol):
    def ready(self, detail: str = "") -> None: ...

    def degraded(self, detail: str) -> None: ...


def encode(payload: Any) -> bytes:
    """A parsed local payload back to its bytes: JSON as the box writes it, plain strings as they were."""
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _says_online(status: Any) -> bool:
    """Whether the box's ``status`` says online (anything that does not fit the contract does not)."""
    try:
        return BoxStatus.decode(status).online
    except PayloadError:
        return False


def software_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class RemoteBridge:
    def __init__(self, config: SecretaryConfig, local_login: BusLogin | None, remote_password: str | None) -> None:
        self.config = config
        self.remote = remote = config.channels.remote
        prefix = remote.topic_prefix or config.mqtt.topic_prefix
        self.base = f"{prefix}/{config.box_id}/"
        self.status_topic = f"{self.base}{STATUS}"
        self.identifier = remote.client_id or f"secretary-bridge-{config.box_id}"
        self.selection = TopicSelection(remote.topics)
        self.outbox = RemoteOutbox(MAX_QUEUED_EVENTS)
        self.retained: dict[str, bytes] = {}  # remote topic -> payload: all the remote should hold but status
        self.engines: list[str] = []
        self.last_call: LastCall | None = None
        self.remote_connected = False
        self.remote_error = "connecting"
        self._session_started: float | None = None  # when the current remote session got past CONNACK
        self.connect_attempts = 0
        self.command_topics = {f"{self.base}{remote_command(verb)}": verb for verb in remote.commands}
        self._remote_password = remote_password
        self._status_payload: bytes | None = None  # the status last queued for the remote
        self._running_commands: set[str] = set()
        self._tasks: asyncio.TaskGroup | None = None
        self._sink: StatusSink | None = None
        ha = remote.home_assistant
        self.discovery: DiscoveryContext | None = DiscoveryContext(
            ha.discovery_prefix, config.box_id, self.base, device_name(config.box_id, ha.node_name), software_version(),
        ) if ha.enabled else None
        if self.discovery is not None:
            for entity in box_entities(
                self.discovery, modem=self.selection.carries(MODEM_STATE),
                call_state=self.selection.carries(CALL_STATE), last_call=self.selection.carries(CALL_EVENT),
                commands=list(remote.commands),
            ):
                self.retained[entity.topic] = entity.payload
        self.bus = ChannelBus(
            config.mqtt, config.box_id, REMOTE.client_id(config.box_id), self.selection.subscriptions,
            self._on_local, login=local_login,
        )

    async def run(self, status: StatusSink) -> None:
        """Bridge until cancelled; on cancellation the remote hears ``status`` = ``offline`` first."""
        self._sink = status
        if self.remote.cleartext_warning:
            log.warning("remote broker without TLS", extra={"url": self.remote.url,
                                                            "warning": self.remote.cleartext_warning})
        if self.loops_back:
            status.degraded("channels.remote names the local broker and the same topic prefix: the bridge would "
                            "republish its own messages; set channels.remote.topic_prefix or another url")
            await asyncio.get_running_loop().create_future()  # nothing to do until reconfigured (cancelled)
        self._report()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(self.bus.run(on_connected=self._on_local_connected), name="remote-local-bus")
            tasks.create_task(self._watch_local(), name="remote-local-watch")
            tasks.create_task(cancelled_firmly(self._remote_loop(), name="remote-broker"))

    @property
    def loops_back(self) -> bool:
        local = self.config.mqtt
        return (self.remote.host, self.remote.port, self.base) == (local.host, local.port, self.bus.base)

    # -- local bus -> outbox ---------------------------------------------------------
    def _on_local(self, suffix: str, payload: Any) -> None:
        if suffix == STATUS:
            self._update_status()
            return
        if not self.selection.carries(suffix):
            return
        topic = self.base + suffix
        if suffix == SMS_EVENT and not self.remote.forward_sms_text:
            payload = without_text(payload)
            if payload is None:
                log.warning("SMS event not bridged: not a received SMS whose text can be withheld",
                            extra={"topic": SMS_EVENT})
                return
        if is_event(suffix):
            self._put_event(Outgoing(topic, encode(payload), retain=False))
            if suffix == CALL_EVENT:
                self._track_last_call(payload)
            return
        engine = engine_name(suffix)
        if engine is not None and engine not in self.engines:
            self.engines.append(engine)
            if self.discovery is not None:
                entity = engine_entity(self.discovery, engine)
                self._put_retained(entity.topic, entity.payload)
        self._put_retained(topic, encode(payload))

    def _put_retained(self, topic: str, payload: bytes) -> None:
        if topic in self.retained and self.retained[topic] == payload:
            return  # the same state again (a local reconnect redelivers every retained message)
        if payload:
            self.retained[topic] = payload
        else:
            self.retained.pop(topic, None)  # an empty retained message clears the topic: forward that too
        self.outbox.put(Outgoing(topic, payload, retain=True))

    def _put_event(self, message: Outgoing) -> None:
        before = self.outbox.dropped
        self.outbox.put(message)
        if self.outbox.dropped != before and self.outbox.dropped % 100 == 1:
            log.warning("remote bridge queue full: dropping the oldest events",
                        extra={"dropped": self.outbox.dropped, "max_events": self.outbox.max_events})

    def _track_last_call(self, event: Any) -> None:
        updated = next_last_call(self.last_call, event)
        if updated is not None:
            self.last_call = updated
            self._put_retained(self.base + LAST_CALL, encode(updated))

    def _box_status(self) -> bytes:
        online = self.bus.connected.is_set() and _says_online(self.bus.state.get(STATUS))
        return ONLINE if online else OFFLINE

    def _update_status(self) -> None:
        status = self._box_status()
        if status != self._status_payload:
            self._status_payload = status
            self.outbox.put(Outgoing(self.status_topic, status, retain=True))

    def _on_local_connected(self) -> None:
        self._update_status()
        self._report()

    async def _watch_local(self) -> None:
        """The local bus says when it connects, not when it drops: look every ``LOCAL_POLL_S``."""
        connected = self.bus.connected.is_set()
        while True:
            await asyncio.sleep(LOCAL_POLL_S)
            if self.bus.connected.is_set() != connected:
                connected = not connected
                self._update_status()
                self._report()

    # -- the remote broker -----------------------------------------------------------
    async def _remote_loop(self) -> None:
        failures = 0
        while True:
            self._session_started = None
            self.connect_attempts += 1
            error: BaseException | None = None
            try:
                await self._remote_session()
            except* (aiomqtt.MqttError, OSError) as group:
                error = group.exceptions[0]
            started = self._session_started
            stable = started is not None and asyncio.get_running_loop().time() - started >= STABLE_SESSION_S
            failures = 1 if stable else failures + 1
            delay = min(BACKOFF_INITIAL_S * 2 ** min(failures - 1, 10), self.config.mqtt.reconnect_max_s)
            delay *= random.uniform(0.8, 1.0)
            self.remote_connected = False
            reason = f"{type(error).__name__}: {error}" if error is not None else "disconnected"
            self.remote_error = f"{reason}; retrying"
            quiet = failures > 1 and failures % 10 != 0  # say it once, then every tenth try
            log.log(logging.DEBUG if quiet else logging.WARNING, "remote broker unavailable",
                    extra={"url": self.remote.url, "error": reason, "retry_s": round(delay, 2), "failures": failures})
            self._report()
            await asyncio.sleep(delay)

    async def _remote_session(self) -> None:
        client = remote_client(self.remote, self.identifier, self._remote_password, self.status_topic,
                               self.config.mqtt.keepalive_s)
        async with client:
            self._session_started = asyncio.get_running_loop().time()
            try:
                for topic in self.command_topics:
                    await client.subscribe(topic, qos=1, timeout=PUBLISH_TIMEOUT_S)
                await self._greet(client)
                self.remote_connected = True
                log.info("remote broker connected", extra={"url": self.remote.url, "client_id": self.identifier})
                self._report()
                async with asyncio.TaskGroup() as session:
                    session.create_task(cancelled_firmly(self._pump(client), name="remote-pump"))
                    session.create_task(self._listen(client), name="remote-listen")
            except asyncio.CancelledError:
                await self._goodbye(client)
                raise

    async def _greet(self, client: aiomqtt.Client) -> None:
        """A fresh connection gets the whole picture: status, then every retained message the bridge holds."""
        self.outbox.drop_retained()
        self._status_payload = self._box_status()
        await client.publish(self.status_topic, self._status_payload, qos=1, retain=True, timeout=PUBLISH_TIMEOUT_S)
        for topic, payload in list(self.retained.items()):
            await client.publish(topic, payload, qos=1, retain=True, timeout=PUBLISH_TIMEOUT_S)

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            key, message = await self.outbox.next()
            await client.publish(message.topic, message.payload, qos=1, retain=message.retain,
                                 timeout=PUBLISH_TIMEOUT_S)
            self.outbox.done(key, message)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._on_remote(message)
        raise aiomqtt.MqttError("the remote broker stopped delivering messages")

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        try:
            await client.publish(self.status_topic, OFFLINE, qos=1, retain=True, timeout=GOODBYE_TIMEOUT_S)
        except aiomqtt.MqttError as exc:
            log.warning("could not tell the remote broker we are going", extra={"error": str(exc)})

    # -- remote commands -> local bus ------------------------------------------------
    def _on_remote(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        verb = self.command_topics.get(topic)
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        if verb is None or message.retain or payload != PAYLOAD_PRESS.encode():
            log.warning("remote message ignored", extra={"topic": topic, "retained": bool(message.retain),
                                                         "payload": payload[:40].decode("utf-8", "replace")})
            return
        if verb in self._running_commands:
            log.info("remote command already running", extra={"command": verb})
            return
        assert self._tasks is not None
        self._running_commands.add(verb)
        self._tasks.create_task(cancelled_firmly(self._command(verb), name=f"remote-cmd-{verb}"))

    async def _command(self, verb: str) -> None:
        try:
            result = await self.bus.request(verb, {}, timeout_s=self.config.mqtt.command_timeout_s)
            log.info("remote command done", extra={"command": verb, "result": result})
        except CommandFailed as exc:
            log.warning("remote command refused", extra={"command": verb, "code": exc.code, "error": exc.message})
        except (BusUnavailable, TimeoutError) as exc:
            log.warning("remote command failed", extra={"command": verb, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            self._running_commands.discard(verb)

    # -- health ----------------------------------------------------------------------
    def _report(self) -> None:
        if self._sink is None:
            return
        where = f"{self.remote.host}:{self.remote.port}"
        problems = []
        if not self.bus.connected.is_set():
            problems.append("the local bus is not connected")
        if not self.remote_connected:
            problems.append(f"the remote broker {where} is not connected: {self.remote_error}")
        dropped = f"; {self.outbox.dropped} event(s) dropped while away" if self.outbox.dropped else ""
        clear = f"; WARNING: {self.remote.cleartext_warning}" if self.remote.cleartext_warning else ""
        if problems:
            self._sink.degraded("; ".join(problems) + dropped + clear)
        else:
            self._sink.ready(f"bridging to {where}{dropped}{clear}")
