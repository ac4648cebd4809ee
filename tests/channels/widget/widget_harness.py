"""The widget channel in front of a box on a real broker.

The daemon side runs the real pieces that answer ``cmd/chat`` (bus
connection, the LLM engine service, the chat service) under the real
supervisor, with the LLM pointed at an OpenAI-protocol stand-in. That
daemon subscribes to ``cmd/chat`` only: ``cmd/notify/callback_request``
belongs to the test's ``CallbackDesk`` (the daemon would otherwise answer
it ``unknown_command`` first). The widget channel runs in a task of its own
and reaches the daemon only through mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from channels.bus_contract.clients import DAEMON, WIDGET
from channels.bus_contract.topics import Topics
from channels.widget.widget_channel import WidgetChannel
from config.schema import SecretaryConfig
from daemon.bus.connection import Bus, BusConnection
from daemon.dialogue.chat_service import ChatService
from daemon.engine_host.engine_wiring import engine_services
from daemon.runtime.service import ServiceState
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from daemon.tools.private_broker import MosquittoBroker
from tests.calls.call_harness import box_config
from tests.daemon.web.web_daemon import free_port
from tests.engines.llm_standins import open_sse, openai_text_stream
from tests.support.bus_logins import config_login, config_mqtt

SITE = "https://example.com"
ANSWER = ("Hello! ", "Alex is out until five.")


def widget_config(
    data_dir: Path, broker: MosquittoBroker | str, widgets: dict[str, Any], **overrides: Any,
) -> SecretaryConfig:
    """A box config on ``broker`` (or a bare URL) with the widget server on a free loopback port and ``widgets``."""
    return box_config(
        data_dir, mqtt=config_mqtt(broker),
        channels__widget={"listen": f"127.0.0.1:{free_port()}", "widgets": widgets}, **overrides,
    )


def no_conversational_llm(url: str) -> dict[str, Any]:
    """``engines.llm`` whose only backend is up but cannot chat: ``cmd/chat`` refuses with ``no_llm``."""
    return {
        "chain": ["cloud"],
        "backends": {"cloud": {"kind": "openai_compatible", "base_url": f"{url}/v1", "model": "standin",
                               "conversational": False}},
    }


@dataclass(frozen=True)
class ChatOnlyTopics(Topics):
    """The daemon side of these tests serves ``cmd/chat`` and nothing else."""

    @property
    def command_filter(self) -> str:
        return self("cmd/chat")


class RecordedStatus:
    """What ``run(status)`` reported, in order."""

    def __init__(self) -> None:
        self.history: list[tuple[str, str]] = []

    def ready(self, detail: str = "") -> None:
        self.history.append(("ready", detail))

    def degraded(self, detail: str) -> None:
        self.history.append(("degraded", detail))

    @property
    def last(self) -> tuple[str, str] | None:
        return self.history[-1] if self.history else None


@dataclass
class StreamedAnswers:
    """The OpenAI-protocol stand-in's answer: a few pieces, streamed; ``hold`` pauses after the first piece."""

    pieces: tuple[str, ...] = ANSWER
    hold: asyncio.Event | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        self.bodies.append(body)
        response = await open_sse(request)
        for index, piece in enumerate(openai_text_stream(list(self.pieces))):
            await response.write(piece)
            if index == 1 and self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(0.02)
        return response


@dataclass
class WidgetBox:
    config: SecretaryConfig
    channel: WidgetChannel
    status: RecordedStatus
    supervisor: Supervisor | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.channel.port}"

    def chat_url(self, widget: str = "site", session: str | None = None) -> str:
        query = f"?session={session}" if session is not None else ""
        return f"ws://127.0.0.1:{self.channel.port}/widget/{widget}/chat{query}"


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def widget_box(config: SecretaryConfig, *, daemon: bool = True, ready: bool = True) -> AsyncIterator[WidgetBox]:
    """The widget channel (and, with ``daemon``, the daemon's chat side); ``ready``: wait for the bus too."""
    supervisor = None
    if daemon:
        bus = Bus(ChatOnlyTopics(config.mqtt.topic_prefix, config.box_id))
        supervisor = Supervisor(RestartPolicy(0.2, 2, 60), stop_timeout_s=10)
        supervisor.add(BusConnection(bus, config.mqtt, config_login(config, DAEMON)))
        engines = {s.name: s for s in engine_services(bus, config.engines, config.data_dir)}
        supervisor.add(engines["llm"])  # text chat needs no speech engines
        supervisor.add(ChatService(bus, config, engines.get))
    channel = WidgetChannel(config, config_login(config, WIDGET))
    status = RecordedStatus()
    box = WidgetBox(config, channel, status, supervisor)
    async with asyncio.TaskGroup() as tasks:
        served = tasks.create_task(channel.run(status), name="widget-channel")
        if supervisor is not None:
            tasks.create_task(supervisor.run(), name="supervisor")
        try:
            await wait_for(lambda: channel.port is not None, 10, "the widget server")
            if ready:
                await wait_for(lambda: status.last is not None and status.last[0] == "ready", 10, "the widget's bus")
            if supervisor is not None:
                for name in ("bus", "llm", "chat"):
                    await wait_for(lambda n=name: supervisor.reports()[n].state is ServiceState.RUNNING, 60, name)
            yield box
        finally:
            served.cancel()
            if supervisor is not None:
                supervisor.stop()


async def receive_until(ws: aiohttp.ClientWebSocketResponse, *kinds: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Messages up to and including the first of type ``kinds``."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive()
            assert frame.type is aiohttp.WSMsgType.TEXT, f"the socket ended: {frame}"
            message = json.loads(frame.data)
            seen.append(message)
            if message.get("type") in kinds:
                return seen
