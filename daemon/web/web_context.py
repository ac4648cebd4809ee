"""What every page handler of the web UI shares: the running config, the bus, the stores, the templates."""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from channels.bus_client import ChannelBus
from config.schema import SecretaryConfig
from daemon.call.stream_line import StreamLineSession
from daemon.records.call_index import CallIndex
from daemon.voices.samples import VoiceLibrary
from daemon.web.auth import SESSION_KEY, PasswordStore, Session, SessionStore
from daemon.web.metrics import BoxMetrics
from daemon.web.status_relay import StatusRelay
from daemon.web.transport.client_address import LoginThrottle

# Runs a test call on a browser line until it ends; returns the end reason (the app runs it as
# CallService.line_call on the call service taking calls now).
BrowserCallRunner = Callable[[StreamLineSession, Callable[[dict[str, Any]], None]], Awaitable[str]]


@dataclass
class WebContext:
    settings: SecretaryConfig
    config_path: Path | None
    bus: ChannelBus
    relay: StatusRelay
    metrics: BoxMetrics
    passwords: PasswordStore
    sessions: SessionStore
    limiter: LoginThrottle
    index: CallIndex
    voices: VoiceLibrary
    templates: jinja2.Environment
    browser_call: Callable[[], BrowserCallRunner | None]
    secure_cookies: bool = False
    tls: ssl.SSLContext | None = None  # the served TLS context (an uploaded certificate is loaded into it)
    started_at: float = field(default_factory=time.time)
    flashes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    browser_call_active: bool = False

    @property
    def calls_dir(self) -> Path:
        return self.settings.data_dir / "calls"

    def flash(self, session: Session, kind: str, text: str) -> None:
        """A one-time message shown on the next page this session renders (kind: ok | warn | error)."""
        queue = self.flashes.setdefault(session.token, [])
        queue.append((kind, text))
        del queue[:-5]

    def take_flashes(self, session: Session | None) -> list[tuple[str, str]]:
        return self.flashes.pop(session.token, []) if session is not None else []


CONTEXT: web.AppKey[WebContext] = web.AppKey("context", WebContext)


def context(request: web.Request) -> WebContext:
    return request.app[CONTEXT]


def session_of(request: web.Request) -> Session | None:
    return request.get(SESSION_KEY)


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("daemon.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    return env


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def render(
    request: web.Request, template: str, *, title: str, active: str = "", status: int = 200, **values: Any,
) -> web.Response:
    ctx = context(request)
    session = session_of(request)
    html = ctx.templates.get_template(template).render(
        title=title, active=active, box_id=ctx.settings.box_id, csrf=session.csrf if session else "",
        flashes=ctx.take_flashes(session), **values,
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)
