"""The web UI as a supervised service: an aiohttp site on ``web.listen`` that reads the box through the bus.

It owns its own bus client (like every consumer: state and events in,
commands out), the status relay and metrics fed from it, the login stores and
the call index (read-only use). At first start, when no password is set, it
makes one and prints it once on stderr; ``secretary web password`` sets another.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from channels.bus_client import ChannelBus
from config.schema import SecretaryConfig
from daemon.records.call_index import CallIndex
from daemon.runtime.service import Service, ServiceStatus
from daemon.voices.samples import VoiceLibrary
from daemon.web.auth import LoginLimiter, PasswordStore, SessionStore
from daemon.web.metrics import BoxMetrics
from daemon.web.status_relay import SUBSCRIPTIONS, StatusRelay
from daemon.web.web_app import build_app
from daemon.web.web_context import BrowserCallRunner, WebContext, template_environment

log = logging.getLogger("secretary.web")
SHUTDOWN_TIMEOUT_S = 1.0
PASSWORD_CHECK_S = 2.0


def password_path(data_dir: Path) -> Path:
    return data_dir / "web" / "password.json"


def voices_dir(data_dir: Path) -> Path:
    return data_dir / "voices"


class WebService(Service):
    name = "web"

    def __init__(
        self,
        config: SecretaryConfig,
        config_path: Path | None,
        mqtt_password: str | None,
        browser_call: Callable[[], BrowserCallRunner | None],
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.mqtt_password = mqtt_password
        self.browser_call = browser_call
        self.sessions = SessionStore()  # kept across restarts of this service: a reload does not sign anyone out
        self.limiter = LoginLimiter()
        self.port: int | None = None  # the bound port, once serving

    def config_slice(self) -> Any:
        c = self.config
        return (c.web, c.mqtt, c.box_id, c.data_dir, self.config_path, self.mqtt_password)

    async def run(self, status: ServiceStatus) -> None:
        cfg = self.config
        passwords = PasswordStore(password_path(cfg.data_dir))
        initial = await asyncio.to_thread(passwords.ensure_initial)
        if initial is not None:
            print(
                f"secretaryd: the web page's password is {initial}\n"
                "secretaryd: it is shown only this once; change it with `secretary web password`",
                file=sys.stderr, flush=True,
            )
            log.warning("a web password was generated and printed once on stderr")
        relay = StatusRelay()
        metrics = BoxMetrics(cfg.box_id, cfg.data_dir)

        def on_message(suffix: str, payload: Any) -> None:
            relay.observe(suffix, payload)
            metrics.observe(suffix, payload)

        bus = ChannelBus(cfg.mqtt, cfg.box_id, f"secretary-web-{cfg.box_id}", SUBSCRIPTIONS, on_message,
                         password=self.mqtt_password)
        index = await asyncio.to_thread(CallIndex, cfg.data_dir / "secretary.db")
        ctx = WebContext(
            settings=cfg, config_path=self.config_path, bus=bus, relay=relay, metrics=metrics, passwords=passwords,
            sessions=self.sessions, limiter=self.limiter, index=index, voices=VoiceLibrary(voices_dir(cfg.data_dir)),
            templates=template_environment(), browser_call=self.browser_call,
        )
        runner = web.AppRunner(build_app(ctx), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, cfg.web.host, cfg.web.port, reuse_address=True)
            await site.start()
            self.port = _bound_port(runner, cfg.web.port)
            log.info("web page serving", extra={"url": f"http://{cfg.web.listen}/"})
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(bus.run(), name="web-bus")
                tasks.create_task(self._watch_bus(bus, relay, status), name="web-bus-watch")
                tasks.create_task(self._watch_password(passwords), name="web-password-watch")
        finally:
            await runner.cleanup()
            await asyncio.to_thread(index.close)
            self.port = None

    async def _watch_bus(self, bus: ChannelBus, relay: StatusRelay, status: ServiceStatus) -> None:
        """The page works without the bus (history, settings) but says the live view is offline."""
        while True:
            if bus.connected.is_set():
                relay.set_bus_connected(True)
                status.ready(f"serving http://{self.config.web.listen}/")
                while bus.connected.is_set():
                    await asyncio.sleep(0.2)
            relay.set_bus_connected(False)
            status.degraded("serving, but not connected to the broker")
            await bus.connected.wait()


    async def _watch_password(self, passwords: PasswordStore) -> None:
        """``secretary web password`` runs in another process: a new password signs every session out."""
        seen = await asyncio.to_thread(lambda: passwords.changed_at)
        while True:
            await asyncio.sleep(PASSWORD_CHECK_S)
            changed = await asyncio.to_thread(lambda: passwords.changed_at)
            if changed != seen:
                seen = changed
                self.sessions.drop_all()
                log.warning("the web password changed: every session is signed out")


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
