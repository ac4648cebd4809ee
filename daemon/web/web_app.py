"""The aiohttp application of the web UI: middlewares (errors, security headers, Host, body size, login, CSRF),
static files, pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from daemon.web.auth import auth_middleware, csrf_middleware
from daemon.web.pages import (
    browser_call_page,
    calls_page,
    config_page,
    login_page,
    security_page,
    status_page,
    voices_page,
)
from daemon.web.transport.client_address import bucket, client_ip
from daemon.web.transport.host_check import HostGuard, host_middleware
from daemon.web.transport.limits import MAX_BODY_BYTES, body_limit_middleware, transport_headers
from daemon.web.web_context import CONTEXT, WebContext

log = logging.getLogger("secretary.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A crash is logged, not shown."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web request failed", extra={"path": request.path})
        return web.json_response({"error": "internal error; see the daemon's log"}, status=500)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _basic_verifier(ctx: WebContext) -> Callable[[web.Request, str], Awaitable[bool]]:
    """HTTP Basic for a metrics scraper: the web password, under the same rate limit as the login form."""
    async def verify(request: web.Request, password: str) -> bool:
        remote = client_ip(request, ctx.settings.web.trusted_proxies)
        key = bucket(remote)
        if ctx.limiter.retry_after(key) is not None:
            return False
        ctx.limiter.failed(key)
        if await ctx.passwords.averify(password):
            ctx.limiter.succeeded(key)
            return True
        log.warning("metrics scrape with a wrong password", extra={"remote": remote})
        return False

    return verify


def build_app(ctx: WebContext) -> web.Application:
    auth = auth_middleware(ctx.sessions, _basic_verifier(ctx), frozenset({"/metrics"}))
    hosts = host_middleware(HostGuard(ctx.settings.web))
    bodies = body_limit_middleware(MAX_BODY_BYTES, voices_page.STREAMED_PATHS)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[errors_middleware, security_headers_middleware, hosts, bodies, auth,
                     csrf_middleware(voices_page.STREAMED_PATHS)],
    )
    app.on_response_prepare.append(transport_headers)
    app[CONTEXT] = ctx
    static_dir = resources.files("daemon.web") / "static"
    app.router.add_static("/static/", str(static_dir), append_version=False)
    for module in (login_page, status_page, calls_page, config_page, security_page, voices_page, browser_call_page):
        app.add_routes(module.routes)
    return app
