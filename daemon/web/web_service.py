"""The web UI as a supervised service: an aiohttp site on ``web.listen`` that reads the box through the bus.

It owns its own bus client (like every consumer: state and events in,
commands out), the status relay and metrics fed from it, the login stores and
the call index (read-only use). At first start, when no password is set, it
makes one and prints it once on stderr, unless stderr is the journal (a
password must not sit in logs): then it says to set one with ``secretary web
password``. It serves HTTPS unless ``web.listen`` is loopback (``web.tls``),
making its self-signed certificate when there is none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from channels.bus_client import ChannelBus
from channels.bus_contract.clients import WEB, BusLogin
from config.schema import SecretaryConfig
from daemon.records.call_index import CallIndex
from daemon.runtime.service import Service, ServiceStatus
from daemon.voices.samples import VoiceLibrary
from daemon.web.auth import PasswordStore, SessionStore
from daemon.web.metrics import BoxMetrics
from daemon.web.status_relay import SUBSCRIPTIONS, StatusRelay
from daemon.web.transport.certificate import CertificateError, ensure_certificate, server_context
from daemon.web.transport.client_address import LoginThrottle
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
        bus_login: BusLogin | None,
        browser_call: Callable[[], BrowserCallRunner | None],
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.bus_login = bus_login
        self.browser_call = browser_call
        self.sessions = SessionStore()  # kept across restarts of this service: a reload does not sign anyone out
        self.limiter = LoginThrottle()
        self.port: int | None = None  # the bound port, once serving

    def config_slice(self) -> Any:
        c = self.config
        return (c.web, c.mqtt, c.box_id, c.data_dir, self.config_path, self.bus_login)

    @property
    def url(self) -> str:
        scheme = "https" if self.config.web.tls_enabled else "http"
        return f"{scheme}://{self.config.web.listen}/"

    async def run(self, status: ServiceStatus) -> None:
        cfg = self.config
        passwords = PasswordStore(password_path(cfg.data_dir))
        initial = await asyncio.to_thread(passwords.ensure_initial)
        if initial is not None:
            _show_initial_password(initial)
        tls = await asyncio.to_thread(_tls_context, cfg) if cfg.web.tls_enabled else None
        relay = StatusRelay()
        metrics = BoxMetrics(cfg.box_id, cfg.data_dir)

        def on_message(suffix: str, payload: Any) -> None:
            relay.observe(suffix, payload)
            metrics.observe(suffix, payload)

        bus = ChannelBus(cfg.mqtt, cfg.box_id, WEB.client_id(cfg.box_id), SUBSCRIPTIONS, on_message,
                         login=self.bus_login)
        index = await asyncio.to_thread(CallIndex, cfg.data_dir / "secretary.db")
        ctx = WebContext(
            settings=cfg, config_path=self.config_path, bus=bus, relay=relay, metrics=metrics, passwords=passwords,
            sessions=self.sessions, limiter=self.limiter, index=index, voices=VoiceLibrary(voices_dir(cfg.data_dir)),
            templates=template_environment(), browser_call=self.browser_call, secure_cookies=tls is not None, tls=tls,
        )
        runner = web.AppRunner(build_app(ctx), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, cfg.web.host, cfg.web.port, reuse_address=True, ssl_context=tls)
            await site.start()
            self.port = _bound_port(runner, cfg.web.port)
            log.info("web page serving", extra={"url": self.url})
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
                status.ready(f"serving {self.url}")
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


def _tls_context(cfg: SecretaryConfig) -> ssl.SSLContext:
    """The served certificate (made when missing) in a server context; a RuntimeError that says what to fix."""
    cert_path, key_path = cfg.web.tls_files(cfg.data_dir)
    try:
        info = ensure_certificate(cfg)
        context = server_context(cert_path, key_path)
    except (CertificateError, ssl.SSLError, OSError) as exc:
        raise RuntimeError(f"the web page cannot serve HTTPS: {exc}. Fix web.tls.cert_file/key_file, or remove "
                           "them to use the box's own self-signed certificate") from exc
    days = info.days_left()
    extra = {"fingerprint_sha256": info.fingerprint, "expires": info.not_after.isoformat(), "file": str(cert_path)}
    if days < 0:
        log.error("the web page's TLS certificate has expired: upload a new one in Settings", extra=extra)
    elif days < 30:
        log.warning("the web page's TLS certificate expires in %d days", int(days), extra=extra)
    else:
        log.info("web page TLS certificate", extra=extra)
    return context


def _stderr_is_journal() -> bool:
    """Whether stderr is systemd's journal: it sets JOURNAL_STREAM to the stream's device:inode."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return bool(stream) and stream == f"{info.st_dev}:{info.st_ino}"


def _show_initial_password(password: str) -> None:
    """The generated password once on stderr (a terminal, ``secretary demo``), never into the journal."""
    if _stderr_is_journal():
        log.warning("a web password was generated but is not shown, as stderr is the journal: "
                    "set your own with `secretary web password`")
        return
    print(
        f"secretaryd: the web page's password is {password}\n"
        "secretaryd: it is shown only this once; change it with `secretary web password`",
        file=sys.stderr, flush=True,
    )
    log.warning("a web password was generated and printed once on stderr")


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
