"""The widget server's HTTP side: ``/widget.js``, ``/widget/<id>/config``, ``/widget/<id>/chat``, ``/healthz``.

``/widget/<id>/config`` is what the script draws (title, greeting, colours,
position). It answers cross-origin requests only from the widget's
``allowed_origins`` (``Access-Control-Allow-Origin`` names the origin,
``Vary: Origin``); anyone else gets 403 and no CORS header, so a browser on
another site cannot read it. The chat WebSocket checks the ``Origin`` header
the same way before it upgrades, since browsers let any page open a
WebSocket anywhere; its protocol is in ``chat_socket``. A chat resumes the
session whose server-issued id it names (``?session=``); any other id gets a
new session, at most ``NEW_SESSIONS_PER_HOUR`` per address and widget (then
429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, hdrs, web

from channels.widget.chat_socket import ChatSocket
from channels.widget.client_address import client_address
from channels.widget.origins import origin_allowed
from channels.widget.rate_limit import whole_seconds
from channels.widget.visitor_sessions import VisitorSession
from channels.widget.widget_context import CONTEXT, NEW_SESSIONS_PER_HOUR, WidgetContext, context

log = logging.getLogger("secretary.channels.widget")

SCRIPT_MAX_AGE_S = 300
CONFIG_MAX_AGE_S = 60
HEARTBEAT_S = 30.0
CLOSE_TIMEOUT_S = 2.0  # how long a closing socket waits for the page's close frame
MAX_FRAME_BYTES = 64 * 1024  # a 1000-character message, JSON-escaped, with room to spare

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refusal(status: int, error: str) -> web.Response:
    response = web.json_response({"error": error}, status=status)
    response.headers[hdrs.VARY] = "Origin"
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


async def widget_script(request: web.Request) -> web.StreamResponse:
    script = context(request).script
    headers = {
        hdrs.CACHE_CONTROL: f"public, max-age={SCRIPT_MAX_AGE_S}",
        hdrs.ETAG: script.etag,
        hdrs.VARY: "Accept-Encoding",
        "Cross-Origin-Resource-Policy": "cross-origin",  # sites that isolate themselves may still load it
    }
    if request.headers.get(hdrs.IF_NONE_MATCH) == script.etag:
        return web.Response(status=304, headers=headers)
    response = web.Response(body=script.body, headers={**headers, hdrs.CONTENT_TYPE: "application/javascript; charset=utf-8"})
    response.enable_compression()  # gzip or deflate when the browser accepts it
    return response


async def widget_config(request: web.Request) -> web.Response:
    ctx = context(request)
    widget_id = request.match_info["widget"]
    widget = ctx.widget(widget_id)
    if widget is None:
        return _refusal(404, "unknown widget")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not origin_allowed(origin, widget.allowed_origins):
        log.info("widget config refused", extra={"widget": widget_id, "origin": origin})
        return _refusal(403, "origin not allowed")
    persona = ctx.settings.personas[ctx.persona_of(widget)]
    body = {
        "id": widget_id,
        "title": widget.title,
        "name": persona.display_name,
        "language": persona.language,
        "greeting": widget.greeting or persona.greeting,
        "primary_color": widget.primary_color,
        "text_color": widget.text_color,
        "position": widget.position,
        "max_chars": 1000,
    }
    response = web.json_response(body)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.VARY] = "Origin"
    response.headers[hdrs.CACHE_CONTROL] = f"private, max-age={CONFIG_MAX_AGE_S}"
    return response


async def chat(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    widget_id = request.match_info["widget"]
    widget = ctx.widget(widget_id)
    if widget is None:
        return _refusal(404, "unknown widget")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not origin_allowed(origin, widget.allowed_origins):
        log.info("widget chat refused", extra={"widget": widget_id, "origin": origin})
        return _refusal(403, "origin not allowed")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES, timeout=CLOSE_TIMEOUT_S)
    if not ws.can_prepare(request).ok:
        return _refusal(400, "expected a WebSocket upgrade")
    address = client_address(request)
    if not ctx.connections.try_open(address):
        return _refusal(503, "too many chat connections; try again later")
    try:
        session = ctx.sessions.find(widget_id, request.query.get("session")) or _new_session(ctx, widget_id, address)
        if not isinstance(session, VisitorSession):
            return session  # the refusal: too many new sessions from this address
        await ws.prepare(request)
        ctx.sockets.add(ws)
        await ChatSocket(ctx, ws, widget_id, widget, session, address, origin).run()
    finally:
        ctx.connections.close(address)
        ctx.sockets.discard(ws)
    return ws


def _new_session(ctx: WidgetContext, widget_id: str, address: str) -> VisitorSession | web.Response:
    """A new session for a visitor at ``address``, or 429 past ``NEW_SESSIONS_PER_HOUR`` from there."""
    wait = ctx.new_sessions.admit((("address", widget_id, address),), NEW_SESSIONS_PER_HOUR)
    if wait > 0:
        log.info("widget session creation rate-limited", extra={"widget": widget_id, "address": address})
        refusal = _refusal(429, f"too many new chats from your address; try again in {whole_seconds(wait)} s")
        refusal.headers[hdrs.RETRY_AFTER] = str(whole_seconds(wait))
        return refusal
    return ctx.sessions.create(widget_id)


async def healthz(request: web.Request) -> web.Response:
    """The server runs; whether it reaches the box (chat needs the bus) is reported, not required."""
    ctx = context(request)
    return web.json_response({
        "status": "ok", "bus": ctx.bus.connected.is_set(),
        "widgets": sorted(ctx.settings.channels.widget.widgets), "chats": len(ctx.connections),
    })


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, tell open chats the server is going (the script reconnects later), all at once."""
    async with asyncio.TaskGroup() as closing:
        for ws in list(app[CONTEXT].sockets):
            closing.create_task(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down"))


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def build_app(ctx: WidgetContext) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
    app[CONTEXT] = ctx
    app.router.add_get("/widget.js", widget_script)
    app.router.add_get("/widget/{widget}/config", widget_config)
    app.router.add_get("/widget/{widget}/chat", chat)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(_close_sockets)
    return app
