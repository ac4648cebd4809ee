"""A RemoteBridge on its own (no daemon): its config, its status handle, a task that runs it."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt

from channels.bus_contract.clients import DAEMON
from channels.remote_bridge.bridge import RemoteBridge
from config.schema import SecretaryConfig
from daemon.tools.private_broker import MosquittoBroker

BOX = "test-box"
BASE = f"secretary/{BOX}/"


def bridge_config(local_url: str, remote: dict[str, Any]) -> SecretaryConfig:
    return SecretaryConfig.model_validate({
        "box_id": BOX,
        "mqtt": {"url": local_url, "keepalive_s": 5, "reconnect_max_s": 0.5},
        "channels": {"remote": {"enabled": True, **remote}},
    })


class RecordingStatus:
    """The ``status`` handle a supervisor would pass: records every change."""

    def __init__(self) -> None:
        self.history: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def ready(self, detail: str = "") -> None:
        self._set("ready", detail)

    def degraded(self, detail: str) -> None:
        self._set("degraded", detail)

    def _set(self, state: str, detail: str) -> None:
        if not self.history or self.history[-1] != (state, detail):
            self.history.append((state, detail))
            self._changed.set()

    @property
    def state(self) -> str:
        return self.history[-1][0] if self.history else "starting"

    async def wait_for(self, state: str, contains: str = "", timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            if self.history and self.history[-1][0] == state and contains in self.history[-1][1]:
                return self.history[-1][1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"status never became {state} ({contains!r}); history: {self.history[-5:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


@asynccontextmanager
async def running(bridge: RemoteBridge) -> AsyncIterator[tuple[asyncio.Task[None], RecordingStatus]]:
    status = RecordingStatus()
    task = asyncio.create_task(bridge.run(status))
    try:
        yield task, status
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # An MQTT client whose connect was cut short sits in a reference cycle with its socket open; collect it
        # while the loop still runs (its finalizer calls into the loop), not after the test closed the loop.
        gc.collect()


@asynccontextmanager
async def local_publisher(broker: MosquittoBroker) -> AsyncIterator[aiomqtt.Client]:
    """Publishes on ``broker`` as the daemon would (``BASE`` + suffix), logged in as the daemon's user."""
    login = broker.login(DAEMON)
    async with aiomqtt.Client("127.0.0.1", broker.port, username=login.username, password=login.password,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        yield client
