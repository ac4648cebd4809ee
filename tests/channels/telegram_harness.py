"""A box on a real broker with the Telegram channel pointed at the Bot API stand-in.

The daemon side runs the real services (bus connection, modem service with
the built-in simulator, and, when asked, the CPU engines, the call service and
the chat service) under the real supervisor; the Telegram channel runs as its
supervised service and reaches them only through mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from channels.bus_contract.clients import DAEMON, TELEGRAM
from channels.bus_contract.topics import Topics
from config.schema import SecretaryConfig
from daemon.bus.connection import Bus, BusConnection
from daemon.call.service import CallService
from daemon.channel_host import TelegramService
from daemon.dialogue.chat_service import ChatService
from daemon.engine_host.engine_wiring import engine_services
from daemon.modem.modem_service import ModemService
from daemon.records.callback_requests import CallbackRequests
from daemon.runtime.service import ServiceState
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from daemon.tools.private_broker import MosquittoBroker
from drivers.sim7600 import ModemEvent
from drivers.sim7600.event_hub import EventHub
from tests.calls.call_harness import box_config
from tests.support.bus_logins import config_login, config_mqtt
from tests.support.telegram_bot_api import FakeTelegram

OWNER = 1001
OTHER_OWNER = 1002
STRANGER = 6666
TOKEN = "123456:TEST-token-owner"
TOKEN_ENV = "SECRETARY_TEST_TELEGRAM_TOKEN"


def telegram_config(data_dir: Path, broker: MosquittoBroker, tg: FakeTelegram, **overrides: Any) -> SecretaryConfig:
    telegram = {
        "api_url": tg.url, "poll_timeout_s": 1, "request_timeout_s": 3, "retry_initial_s": 0.05, "retry_max_s": 0.4,
        "bots": {"owner": {"token_env": TOKEN_ENV, "users": [OWNER, OTHER_OWNER], "notify": [OWNER]}},
    }
    return box_config(data_dir, mqtt=config_mqtt(broker), channels__telegram=telegram, **overrides)


@dataclass
class TelegramBox:
    config: SecretaryConfig
    bus: Bus
    supervisor: Supervisor
    modem: ModemService
    tg: FakeTelegram
    calls: CallService | None

    @property
    def sim(self) -> Any:
        return self.modem.simulator

    def new_channel(self) -> TelegramService:
        bots = self.config.channels.telegram.bots
        tokens = {b: os.environ.get(c.token_env) for b, c in bots.items()}
        return TelegramService(self.config, tokens, config_login(self.config, TELEGRAM))

    async def restart_channel(self) -> None:
        await self.supervisor.replace(self.new_channel())
        started = (ServiceState.RUNNING, ServiceState.DEGRADED)  # degraded while Telegram is down
        await wait_for(lambda: self.supervisor.reports()["telegram"].state in started, 20, "the channel")

    async def stop_channel(self) -> None:
        await self.supervisor.remove("telegram")

    def start_channel(self) -> None:
        self.supervisor.add(self.new_channel())

    def texts(self, chat_id: int = OWNER) -> list[str]:
        return [str(s.get("text") or "") for s in self.tg.sent(TOKEN, chat_id) if s["method"] in ("sendMessage", "editMessageText")]


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
async def telegram_box(
    config: SecretaryConfig, tg: FakeTelegram, *, engines: bool = False, calls: bool = False,
) -> AsyncIterator[TelegramBox]:
    bus = Bus(Topics(config.mqtt.topic_prefix, config.box_id))
    relay: EventHub[ModemEvent] = EventHub()
    modem = ModemService(bus, config.modem, None, config.data_dir, relay=relay)
    supervisor = Supervisor(RestartPolicy(0.2, 2, 60), stop_timeout_s=10)
    supervisor.add(BusConnection(bus, config.mqtt, config_login(config, DAEMON)))
    supervisor.add(modem)
    supervisor.add(CallbackRequests(bus))
    call_service = None
    if engines or calls:
        engine_map = {s.name: s for s in engine_services(bus, config.engines, config.data_dir)}
        for service in engine_map.values():
            supervisor.add(service)
        supervisor.add(ChatService(bus, config, engine_map.get))
        if calls:
            call_service = CallService(bus, config, relay, lambda: modem.modem, engine_map.get)
            supervisor.add(call_service)
    box = TelegramBox(config, bus, supervisor, modem, tg, call_service)
    box.start_channel()
    running = asyncio.create_task(supervisor.run())
    try:
        await wait_for(lambda: modem.modem is not None and modem.modem.connected, 30, "the modem")
        await wait_for(lambda: bus.connected, 10, "the broker")
        await wait_for(lambda: supervisor.reports()["telegram"].state is ServiceState.RUNNING, 30, "the channel")
        if engines:
            await wait_for(lambda: supervisor.reports()["chat"].state is ServiceState.RUNNING, 120, "chat")
            for name in ("stt", "tts"):
                await wait_for(lambda n=name: supervisor.reports()[n].state is ServiceState.RUNNING, 180, name)
        if call_service is not None:
            await asyncio.wait_for(call_service.phrases_ready.wait(), 180)
        yield box
    finally:
        supervisor.stop()
        await running
