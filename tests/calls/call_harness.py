"""A box without the broker: the simulator-backed modem service, real CPU engines and the call service.

``CallBox`` runs ``ModemService`` (built-in simulator) and ``CallService``
under the real supervisor, with engines built from config through the
daemon's own wiring. Bus messages stay in the outbox, where tests read the
``call/event`` stream exactly as it would be published.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from channels.bus_contract.topics import Topics
from config.loader import parse_config_text
from config.schema import SecretaryConfig
from daemon.bus.connection import Bus
from daemon.call.service import CallService
from daemon.engine_host.engine_wiring import engine_services
from daemon.modem.modem_service import ModemService
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from drivers.sim7600 import ModemEvent
from drivers.sim7600.event_hub import EventHub

CALLER = "+79161234567"


def box_config(data_dir: Path, **overrides: Any) -> SecretaryConfig:
    data: dict[str, Any] = {
        "box_id": "test-box",
        "data_dir": str(data_dir),
        "modem": {"driver": "simulator", "answer_after_rings": 1},
        "engines": {"models_dir": str(data_dir.parent / "models"), "retry_initial_s": 0.5},
    }
    for key, value in overrides.items():
        _merge(data, key.split("__"), value)
    return parse_config_text(yaml.safe_dump(data, allow_unicode=True), "test").settings


def cloud_llm(url: str, *, first_token_timeout_s: float = 5) -> dict[str, Any]:
    """``engines.llm`` with one conversational backend: an OpenAI-protocol server at ``url``."""
    return {
        "chain": ["cloud"],
        "first_token_timeout_s": first_token_timeout_s,
        "backends": {"cloud": {"kind": "openai_compatible", "base_url": f"{url}/v1", "model": "standin"}},
    }


def _merge(data: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


class RecordingBus(Bus):
    """The real bus (messages go to the outbox) that also keeps every event for the test to read."""

    def __init__(self, topics: Topics) -> None:
        super().__init__(topics)
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish_event(self, suffix: str, payload: Any) -> None:
        super().publish_event(suffix, payload)
        if isinstance(payload, dict):
            self.published.append((suffix, json.loads(json.dumps(payload))))


@dataclass
class CallBox:
    config: SecretaryConfig
    bus: Bus
    supervisor: Supervisor
    modem_service: ModemService
    calls: CallService

    @property
    def sim(self) -> Any:
        return self.modem_service.simulator

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        assert isinstance(self.bus, RecordingBus)
        return [p for s, p in self.bus.published if s == "call/event" and (kind is None or p["type"] == kind)]

    async def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for payload in self.events():
                if predicate(payload):
                    return payload
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching call event within {timeout} s; seen: {[(e['type'], e.get('text')) for e in self.events()]}")
            await asyncio.sleep(0.02)

    async def wait_secretary_turns(self, count: int, timeout: float = 60) -> dict[str, Any]:
        def enough(_: dict[str, Any]) -> bool:
            turns = [e for e in self.events("utterance") if e["role"] == "secretary"]
            return len(turns) >= count or bool(self.events("ended"))

        await self.wait_event(enough, timeout)
        turns = [e for e in self.events("utterance") if e["role"] == "secretary"]
        return turns[-1] if turns else {}

    async def wait_ended(self, timeout: float = 60) -> dict[str, Any]:
        return await self.wait_event(lambda e: e["type"] == "ended", timeout)

    async def ring(self, caller: str = CALLER) -> str:
        await self.sim.incoming_call(caller)
        answered = await self.wait_event(lambda e: e["type"] == "answered", 15)
        return str(answered["call_id"])


@contextlib.asynccontextmanager
async def call_box(config: SecretaryConfig) -> AsyncIterator[CallBox]:
    bus = RecordingBus(Topics("secretary", config.box_id))
    relay: EventHub[ModemEvent] = EventHub()
    modem = ModemService(bus, config.modem, None, config.data_dir, relay=relay)
    engines = {s.name: s for s in engine_services(bus, config.engines, config.data_dir)}
    calls = CallService(bus, config, relay, lambda: modem.modem, engines.get)
    supervisor = Supervisor(RestartPolicy(0.5, 5, 60), stop_timeout_s=10)
    for service in (modem, *engines.values(), calls):
        supervisor.add(service)
    running = asyncio.create_task(supervisor.run())
    box = CallBox(config, bus, supervisor, modem, calls)
    try:
        async with asyncio.timeout(300):
            while modem.modem is None or not modem.modem.connected:
                await asyncio.sleep(0.05)
            await calls.phrases_ready.wait()
        yield box
    finally:
        supervisor.stop()
        await running
