"""The aiohttp application of the web UI: middlewares (errors, security headers, login, CSRF), static files, pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from daemon.web.auth import auth_middleware, csrf_middleware
from daemon.web.pages import browser_call_page, calls_page, config_page, login_page, status_page, voices_page
from daemon.web.web_context import CONTEXT, WebContext

log = logging.getLogger("secretary.web")
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # a voice upload of a few WAV files
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Readable refusals: an oversized upload says how much is allowed; a crash is logged, not shown."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        message = (f"The upload is too large: at most {MAX_REQUEST_BYTES // (1024 * 1024)} MB per request "
                   "(10 MB per WAV file). Upload fewer or shorter files.")
        return web.json_response({"error": message}, status=413)
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
        remote = request.remote or "unknown"
        if ctx.limiter.retry_after(remote) is not None:
            return False
        ctx.limiter.failed(remote)
        if await ctx.passwords.averify(password):
            ctx.limiter.succeeded(remote)
            return True
        log.warning("metrics scrape with a wrong password", extra={"remote": remote})
        return False

    return verify


def build_app(ctx: WebContext) -> web.Application:
    auth = auth_middleware(ctx.sessions, _basic_verifier(ctx), frozenset({"/metrics"}))
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES,
        middlewares=[errors_middleware, security_headers_middleware, auth, csrf_middleware()],
    )
    app[CONTEXT] = ctx
    static_dir = resources.files("daemon.web") / "static"
    app.router.add_static("/static/", str(static_dir), append_version=False)
    for module in (login_page, status_page, calls_page, config_page, voices_page, browser_call_page):
        app.add_routes(module.routes)
    return app
