"""The website chat widget as a channel: its HTTP/WebSocket server and its bus connection.

``WidgetChannel(config, bus_login).run(status)`` serves
``channels.widget.listen`` until cancelled; ``port`` is the bound port while
it serves. The server keeps serving while the broker is away (the script,
the look, the visitor's history), and reports itself degraded: chat answers
and call-back requests need the bus and say so to the visitor.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiohttp import web

from channels.bus_client import ChannelBus
from channels.bus_contract.clients import WIDGET, BusLogin
from channels.widget.routes import build_app
from channels.widget.widget_context import WidgetContext
from channels.widget.widget_script import WidgetScript
from config.schema import SecretaryConfig, split_host_port

log = logging.getLogger("secretary.channels.widget")

SHUTDOWN_TIMEOUT_S = 1.0
STATUS_POLL_S = 0.2


class StatusSink(Protocol):
    def ready(self, detail: str = "") -> None: ...

    def degraded(self, detail: str) -> None: ...


def _ignore(suffix: str, payload: Any) -> None:
    """The widget subscribes to nothing: it only sends commands and reads their replies."""


class WidgetChannel:
    def __init__(self, config: SecretaryConfig, bus_login: BusLogin | None) -> None:
        self.config = config
        self.bus = ChannelBus(
            config.mqtt, config.box_id, WIDGET.client_id(config.box_id), [], _ignore, login=bus_login,
        )
        self.port: int | None = None  # the bound port, once serving

    async def run(self, status: StatusSink) -> None:
        widgets = self.config.channels.widget
        host, port = split_host_port(widgets.listen)
        script = await asyncio.to_thread(WidgetScript.load)
        ctx = WidgetContext(settings=self.config, bus=self.bus, script=script)
        runner = web.AppRunner(build_app(ctx), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            self.port = _bound_port(runner, port)
            log.info("widget server serving", extra={"listen": widgets.listen, "widgets": sorted(widgets.widgets)})
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.bus.run(), name="widget-bus")
                tasks.create_task(self._report(status), name="widget-status")
        finally:
            await runner.cleanup()
            self.port = None

    async def _report(self, status: StatusSink) -> None:
        widgets = self.config.channels.widget
        serving = f"serving {len(widgets.widgets)} widget(s) on {widgets.listen}"
        last: tuple[bool, str] | None = None
        while True:
            if not widgets.widgets:
                now = (False, f"{serving}: none configured under channels.widget.widgets")
            elif self.bus.connected.is_set():
                now = (True, serving)
            else:
                now = (False, f"{serving}, but not connected to the broker: chat and call-back requests fail")
            if now != last:
                ok, detail = last = now
                (status.ready if ok else status.degraded)(detail)
            await asyncio.sleep(STATUS_POLL_S)


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
