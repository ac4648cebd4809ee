"""The status page (with the last day's voice-to-voice from the call records), its live feed (Server-Sent Events
relayed from the bus), /healthz and /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from typing import Any

from aiohttp import web

from daemon.runtime.systemd_units import BOX_UNITS, unit_states
from daemon.web.pages.call_figures import TARGET_P50_MS, TARGET_P95_MS, DayFigures, last_day
from daemon.web.status_relay import FellBehind
from daemon.web.web_context import context, render

log = logging.getLogger("secretary.web")
routes = web.RouteTableDef()
KEEPALIVE_S = 15.0


@routes.get("/")
async def status_page(request: web.Request) -> web.Response:
    units = await unit_states(list(BOX_UNITS), timeout_s=1.0)  # systemd over D-Bus; None where there is none
    rows = [(name.removesuffix(".service"), state.describe() if state else None, state.failed if state else False)
            for name, state in units.items()]
    ctx = context(request)
    try:
        day: DayFigures | None = await last_day(ctx.index, time.time())
    except (RuntimeError, sqlite3.Error, OSError) as exc:  # the index is closed or its disk fails: say so
        log.warning("the day's voice-to-voice could not be read", extra={"error": str(exc)})
        day = None
    return render(request, "status.html", title="Status", active="/", snapshot=ctx.relay.snapshot(),
                  units=rows, day=day, targets=(TARGET_P50_MS, TARGET_P95_MS))


@routes.get("/api/state")
async def state(request: web.Request) -> web.Response:
    return web.json_response(context(request).relay.snapshot())


def _sse(event: str, data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n".encode()


@routes.get("/api/events")
async def events(request: web.Request) -> web.StreamResponse:
    """One page's live feed: a snapshot, then every change; a comment every 15 s keeps proxies from closing it."""
    relay = context(request).relay
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n" + _sse("snapshot", relay.snapshot()))
    subscription = relay.subscribe()
    try:
        while True:
            try:
                event = await subscription.next(KEEPALIVE_S)
            except FellBehind:
                break  # the browser reconnects and gets a fresh snapshot
            if event is None:
                await response.write(b": keepalive\n\n")
            else:
                await response.write(_sse(event.kind, event.data))
    except ConnectionResetError:
        pass  # the page went away
    finally:
        subscription.close()
    return response


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """For load balancers and systemd: the web service runs; the bus link is reported, not required."""
    ctx = context(request)
    return web.json_response({"status": "ok", "box_id": ctx.settings.box_id, "bus": ctx.relay.bus_connected})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body, content_type = await asyncio.to_thread(context(request).metrics.render)
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
