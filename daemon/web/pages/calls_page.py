"""Call history: search by number and date, one call's summary, timeline, transcript and both audio tracks, delete.

The call view's timeline is drawn in the browser (``static/call_timeline.js``)
from ``/calls/<id>/timeline.json`` (``call_figures.call_timeline``).

A search the page cannot run (a page number that is not a whole number from
0 to ``MAX_PAGE``, a date that is not a day from ``FIRST_DAY`` to ``LAST_DAY``)
is answered 400 with the form and what to fix, never a 500.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.bus_client import BusUnavailable, CommandFailed
from channels.bus_contract.verbs import CALLS_DELETE
from daemon.records.call_index import CallSummaryRow
from daemon.records.call_record import is_valid_call_id, read_utterances
from daemon.web.pages.call_figures import call_timeline
from daemon.web.web_context import WebContext, context, redirect, render, session_of

routes = web.RouteTableDef()
PAGE_SIZE = 25
MAX_PAGE = 1_000_000
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)  # the day after LAST_DAY still has a timestamp
TRACKS = ("caller", "secretary")


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-11-24, got {value[:40]!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{name} must be a day from {FIRST_DAY} to {LAST_DAY}, got {value}")
    return day


def _page(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > len(str(MAX_PAGE)) or int(value) > MAX_PAGE:
        raise ValueError(f"page must be a whole number from 0 to {MAX_PAGE}, got {value[:40]!r}")
    return int(value)


def _start_of(day: date) -> float:
    return datetime.combine(day, datetime.min.time()).timestamp()


@routes.get("/calls")
async def calls(request: web.Request) -> web.Response:
    ctx = context(request)
    q = {"number": request.query.get("number", "").strip()[:40], "from": request.query.get("from", ""),
         "to": request.query.get("to", "")}
    error = ""
    rows: list[Any] = []
    total = 0
    page = 0
    try:
        page = _page(request.query.get("page", "") or "0")
        since_day, until_day = _day(q["from"], "From"), _day(q["to"], "To")
        since = _start_of(since_day) if since_day else None
        until = _start_of(until_day + timedelta(days=1)) if until_day else None
        number = "".join(ch for ch in q["number"] if ch.isdigit() or ch == "+") or None
        rows, total = await ctx.index.asearch(number, since, until, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    except ValueError as exc:
        error = str(exc)

    def page_url(n: int) -> str:
        return "/calls?" + urlencode({**{k: v for k, v in q.items() if v}, "page": n})

    return render(
        request, "calls.html", title="Calls", active="/calls", status=400 if error else 200, calls=rows, total=total,
        q=q, error=error,
        prev_url=page_url(page - 1) if page > 0 else "", next_url=page_url(page + 1) if (page + 1) * PAGE_SIZE < total else "",
    )


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if not is_valid_call_id(call_id):
        raise web.HTTPNotFound(text="no such call")
    return call_id


async def _call_row(ctx: WebContext, request: web.Request) -> CallSummaryRow:
    """The index row of the call the URL names; 404 when there is none."""
    row = await ctx.index.aget(_call_id(request))
    if row is None:
        raise web.HTTPNotFound(text="no such call")
    return row


@routes.get("/calls/{call_id}")
async def call_detail(request: web.Request) -> web.Response:
    ctx = context(request)
    row = await _call_row(ctx, request)
    record_dir = Path(row.record_dir)
    tracks = [t for t in TRACKS if _track_path(ctx.calls_dir, record_dir, t) is not None]
    timeline = await asyncio.to_thread(call_timeline, record_dir, {}, peaks=False)  # the turns' table, no audio read
    # the record is read once; one it cannot load still shows whatever lines its file holds
    transcript = await asyncio.to_thread(read_utterances, record_dir) if "error" in timeline else timeline["utterances"]
    return render(request, "call.html", title=f"Call {row.call_id}", active="/calls", call=row,
                  transcript=transcript, tracks=tracks, turns=timeline["turns"], timeline_error=timeline.get("error"))


@routes.get("/calls/{call_id}/timeline.json")
async def call_timeline_data(request: web.Request) -> web.Response:
    """What the call view draws: both tracks' peaks, the utterances, each turn's stages (call_figures)."""
    ctx = context(request)
    row = await _call_row(ctx, request)
    record_dir = Path(row.record_dir)
    paths = {t: _track_path(ctx.calls_dir, record_dir, t) for t in TRACKS}
    data = await asyncio.to_thread(call_timeline, record_dir, paths)
    return web.json_response(data, headers={"Cache-Control": "no-store"})


def _track_path(calls_dir: Path, record_dir: Path, track: str) -> Path | None:
    """The WAV of one track, only if it really lies inside data_dir/calls/<call_id>/."""
    if track not in TRACKS:
        return None
    path = (record_dir / f"{track}.wav").resolve()
    if path.parent.parent != calls_dir.resolve() or not path.is_file():
        return None
    return path


@routes.get("/calls/{call_id}/audio/{track}.wav")
async def call_audio(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    row = await ctx.index.aget(_call_id(request))
    path = _track_path(ctx.calls_dir, Path(row.record_dir), request.match_info["track"]) if row else None
    if path is None:
        raise web.HTTPNotFound(text="no such recording")
    response = web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, max-age=3600"})
    return response


@routes.post("/calls/{call_id}/delete")
async def delete_call(request: web.Request) -> web.Response:
    ctx = context(request)
    call_id = _call_id(request)
    session = session_of(request)
    try:
        await ctx.bus.request(CALLS_DELETE, {"call_id": call_id}, timeout_s=10.0)
    except CommandFailed as exc:
        if session is not None:
            ctx.flash(session, "error", f"The call was not deleted: {exc.message}")
        raise redirect(f"/calls/{call_id}") from None
    except (BusUnavailable, TimeoutError):
        if session is not None:
            ctx.flash(session, "error", "The call was not deleted: the daemon did not answer on the bus.")
        raise redirect(f"/calls/{call_id}") from None
    if session is not None:
        ctx.flash(session, "ok", "The call and its recording were deleted.")
    raise redirect("/calls")
