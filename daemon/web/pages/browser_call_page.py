"""The browser test call: the page, and the WebSocket that carries its audio into the call flow."""

from __future__ import annotations

from aiohttp import web

from daemon.web.browser_call_socket import serve_browser_call
from daemon.web.web_context import context, render
from drivers.sim7600.call_model import new_call_id

routes = web.RouteTableDef()


@routes.get("/test-call")
async def call_page(request: web.Request) -> web.Response:
    ctx = context(request)
    persona = ctx.settings.personas[ctx.settings.call.persona]
    return render(request, "browser_call.html", title="Test call", active="/test-call",
                  persona=f"{persona.display_name} ({ctx.settings.call.persona}, {persona.language})")


@routes.get("/ws/test-call")
async def call_socket(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    runner = ctx.browser_call()
    if runner is None:
        return web.json_response({"error": "the call service is not running"}, status=503)
    if ctx.browser_call_active:
        return web.json_response({"error": "a test call is already in progress"}, status=409)
    ctx.browser_call_active = True
    try:
        return await serve_browser_call(request, runner, call_id=f"{new_call_id()}-web",
                                     max_call_s=ctx.settings.call.max_duration_s)
    finally:
        ctx.browser_call_active = False
