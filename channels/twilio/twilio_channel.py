"""The Twilio channel: the webhook server Twilio reaches through ``public_url``, and its bus connection.

It serves ``channels.twilio.listen`` (a reverse proxy or tunnel forwards the
public URL to it) until cancelled. Every request must carry Twilio's
signature for the auth token read from ``auth_token_env``; without that token
the channel reports itself degraded and answers every request 503. The bus
carries the fallback conversation's ``cmd/chat`` and the voicemail hand-offs;
Media Streams calls need only the daemon's line socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from aiohttp import web

from channels.bus_client import ChannelBus
from channels.bus_contract.clients import TWILIO, BusLogin
from channels.line_protocol import socket_path
from channels.twilio.calls import CallRegistry
from channels.twilio.handoff import Handoffs
from channels.twilio.media_stream import MediaStreams
from channels.twilio.signature import TwilioSignature, signature_middleware
from channels.twilio.stream_grants import StreamGrants
from channels.twilio.webhooks import STREAM_PATH, TwilioWebhooks
from config.schema import SecretaryConfig, split_host_port

log = logging.getLogger("secretary.channels.twilio")

SHUTDOWN_TIMEOUT_S: Final = 3.0
STATUS_INTERVAL_S: Final = 0.5


class StatusSink(Protocol):
    def ready(self, detail: str = "") -> None: ...

    def degraded(self, detail: str) -> None: ...


class TwilioChannel:
    def __init__(self, config: SecretaryConfig, secret: Callable[[str], str | None], bus_login: BusLogin | None) -> None:
        self.config = config
        tw = config.channels.twilio
        self.signature = TwilioSignature(secret(tw.auth_token_env), tw.public_url, tw.auth_token_env)
        self.bus = ChannelBus(config.mqtt, config.box_id, TWILIO.client_id(config.box_id), [], _ignore,
                              login=bus_login)
        self.calls = CallRegistry()
        self.handoffs = Handoffs(config.data_dir / "spool" / "twilio", self.bus)
        self.grants = StreamGrants()  # a signed /twilio/voice -> the one media stream it allows
        self.webhooks = TwilioWebhooks(config, self.calls, self.bus, self.handoffs, self.grants)
        self.streams = MediaStreams(config, self.calls, socket_path(config.data_dir), self.grants)
        self.port: int | None = None

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[signature_middleware(self.signature)])
        app.add_routes([*self.webhooks.routes(), web.get(STREAM_PATH, self.streams.handle)])

        async def on_shutdown(_app: web.Application) -> None:
            await self.streams.close_all("the Twilio channel is stopping")

        app.on_shutdown.append(on_shutdown)
        return app

    async def run(self, status: StatusSink) -> None:
        tw = self.config.channels.twilio
        host, port = split_host_port(tw.listen)
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            self.port = _bound_port(runner, port)
            log.info("twilio webhooks serving", extra={"listen": tw.listen, "public_url": tw.public_url,
                                                       "media_streams": tw.media_streams})
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.bus.run(), name="twilio-bus")
                tasks.create_task(self.handoffs.run(), name="twilio-handoffs")
                tasks.create_task(self._report(status), name="twilio-status")
        finally:
            await runner.cleanup()
            self.port = None

    def problems(self) -> list[str]:
        problems = []
        if self.signature.unavailable:
            problems.append(self.signature.unavailable)
        if not self.bus.connected.is_set():
            problems.append("bus not connected: " + (
                "voicemail hand-offs wait" if self.config.channels.twilio.media_streams
                else "callers are asked to leave a voicemail, which waits for the bus"))
        return problems

    async def _report(self, status: StatusSink) -> None:
        tw = self.config.channels.twilio
        mode = "media streams" if tw.media_streams else "gather fallback"
        last = None
        while True:
            problems = self.problems()
            line = "; ".join(problems) if problems else f"answering Twilio calls at {tw.public_url} ({mode})"
            if line != last:
                (status.degraded if problems else status.ready)(line)
                last = line
            await asyncio.sleep(STATUS_INTERVAL_S)


def _ignore(_suffix: str, _payload: Any) -> None:
    """The channel subscribes to nothing but its command replies."""


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
