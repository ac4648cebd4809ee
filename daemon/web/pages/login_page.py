"""Sign in and out: the password check is rate-limited per client (and overall) and never runs on the loop.

The throttle is asked before the form's body is read, so a client that must
wait costs the box no more than its headers.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from daemon.web.auth import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from daemon.web.transport.client_address import bucket, client_ip
from daemon.web.web_context import context, redirect, render, session_of

log = logging.getLogger("secretary.web")
routes = web.RouteTableDef()


def _safe_next(value: object) -> str:
    """Only a path on this site: no scheme, host or protocol-relative '//' (an open redirect otherwise)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    if session_of(request) is None and context(request).sessions.get(request.cookies.get(SESSION_COOKIE)) is not None:
        raise redirect(_safe_next(request.query.get("next")))
    return render(request, "login.html", title="Sign in", next=_safe_next(request.query.get("next")), error="")


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    ctx = context(request)
    remote = client_ip(request, ctx.settings.web.trusted_proxies)
    key = bucket(remote)
    wait = ctx.limiter.retry_after(key)
    if wait is not None:  # before the body is read
        log.warning("login refused: too many attempts", extra={"remote": remote, "retry_after_s": round(wait)})
        response = render(
            request, "login.html", title="Sign in", next="/", status=429,
            error=f"Too many failed attempts. Try again in {max(1, round(wait))} seconds.",
        )
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    ctx.limiter.failed(key)  # counted before the body and the slow check, so parallel guesses cannot slip through
    form = await request.post()  # at most the app's client_max_size
    next_path = _safe_next(form.get("next"))
    password = form.get("password")
    if not isinstance(password, str) or not await ctx.passwords.averify(password):
        log.warning("login failed", extra={"remote": remote})
        return render(request, "login.html", title="Sign in", next=next_path, status=401, error="Wrong password.")
    ctx.limiter.succeeded(key)
    session = ctx.sessions.create(remote)
    log.info("signed in", extra={"remote": remote})
    response = web.HTTPSeeOther(next_path)
    set_session_cookie(response, session, ctx.secure_cookies)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    if session is not None:
        context(request).sessions.drop(session.token)
    response = web.HTTPSeeOther("/login")
    clear_session_cookie(response)
    raise response
