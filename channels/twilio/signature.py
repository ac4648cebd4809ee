"""Only Twilio gets in: every webhook and the Media Streams upgrade carry a valid ``X-Twilio-Signature``.

Twilio signs with the account's auth token over the URL it requested, which
is the public one (the box sits behind a proxy or tunnel): ``public_url`` +
the request's path and query. Form webhooks add their POST parameters; the
WebSocket upgrade is signed over its ``wss://`` URL alone, the same for every
call (``stream_grants.py`` ties each stream to its signed ``/twilio/voice``).
Unsigned or wrongly signed requests get 403; without an auth token nothing is
accepted (503).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

log = logging.getLogger("secretary.channels.twilio")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def websocket_base(public_url: str) -> str:
    """``https://box.example.com/x`` -> ``wss://box.example.com/x`` (``http`` -> ``ws``)."""
    scheme, _, rest = public_url.partition("://")
    return ("wss" if scheme == "https" else "ws") + "://" + rest


def is_websocket_upgrade(request: web.Request) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


class TwilioSignature:
    """Checks requests against the auth token; ``unavailable`` says why every request is refused, if it is."""

    def __init__(self, token: str | None, public_url: str | None, token_env: str) -> None:
        self.public_url = public_url
        self._validator = RequestValidator(token) if token else None
        self.unavailable: str | None = None
        if not token:
            self.unavailable = f"the Twilio auth token env var {token_env} is not set: every webhook answers 503"
        elif not public_url:
            self.unavailable = "channels.twilio.public_url is not set: no webhook can be checked, every one answers 503"

    def signed_url(self, request: web.Request) -> str:
        """The URL Twilio requested and signed (``raw_path`` keeps the path and query as sent)."""
        assert self.public_url is not None
        base = websocket_base(self.public_url) if is_websocket_upgrade(request) else self.public_url
        return base + request.raw_path

    async def refusal(self, request: web.Request) -> web.Response | None:
        """None when the request is Twilio's; else the response that refuses it."""
        if self._validator is None or self.unavailable:
            return web.Response(status=503, text=f"Twilio channel unavailable: {self.unavailable}")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            log.warning("unsigned Twilio request refused", extra={"path": request.path, "peer": request.remote})
            return web.Response(status=403, text="missing X-Twilio-Signature")
        params: MultiDict[str] = MultiDict()
        if request.method == "POST":
            form = await request.post()
            params = MultiDict((k, v) for k, v in form.items() if isinstance(v, str))
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        url = self.signed_url(request)
        if not self._validator.validate(url, params, signature, algorithm):
            log.warning("Twilio signature mismatch", extra={"path": request.path, "url": url, "peer": request.remote})
            return web.Response(status=403, text="invalid X-Twilio-Signature")
        return None


def signature_middleware(check: TwilioSignature) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = await check.refusal(request)
        return refused if refused is not None else await handler(request)

    return middleware
