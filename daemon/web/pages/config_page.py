"""Settings: the config file's sections as forms, checked by the daemon's own typed config, saved atomically, applied by reload.

A save is also held to the page's own rules (``daemon/web/settings``): a change
that moves a stored secret needs it typed again, and the fields naming
programs the daemon starts cannot be changed here.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import re
from typing import Any

from aiohttp import web

from channels.bus_client import BusUnavailable, CommandFailed
from channels.bus_contract.verbs import RELOAD
from config.errors import ConfigError, ConfigIssue
from config.schema import SecretaryConfig
from daemon.web.config_editor import ConfigEditor
from daemon.web.config_forms import (
    SECTIONS,
    FormField,
    FormSection,
    apply_form,
    build_form,
    field_errors,
    typed_secrets,
)
from daemon.web.settings.secret_binding import rebinding_issues
from daemon.web.web_context import WebContext, context, redirect, render, session_of

log = logging.getLogger("secretary.web")
routes = web.RouteTableDef()
RELOAD_TIMEOUT_S = 60.0
_PERSONA_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _editor(ctx: WebContext) -> ConfigEditor | None:
    return ConfigEditor(ctx.config_path) if ctx.config_path is not None else None


def _section(request: web.Request) -> str:
    section = request.match_info["section"]
    if section not in SECTIONS:
        raise web.HTTPNotFound(text=f"no settings section {section!r}")
    return section


@routes.get("/config")
async def config_home(request: web.Request) -> web.Response:
    raise redirect(f"/config/{SECTIONS[0]}")


def _with_posted_values(form: FormSection, posted: dict[str, str]) -> FormSection:
    """Show what the owner typed (not the old value) next to its error."""
    def field(f: FormField) -> FormField:
        if f.kind == "checkbox":
            return dataclasses.replace(f, value=f.path in posted) if f"present:{f.path}" in posted else f
        return dataclasses.replace(f, value=posted[f.path]) if f.path in posted else f

    return dataclasses.replace(
        form, fields=tuple(field(f) for f in form.fields),
        sections=tuple(_with_posted_values(s, posted) for s in form.sections),
    )


async def _page(
    request: web.Request, section: str, *, posted: dict[str, str] | None = None,
    issues: list[ConfigIssue] | None = None, status: int = 200,
) -> web.Response:
    ctx = context(request)
    editor = _editor(ctx)
    settings, secret_is_set = ctx.settings, (lambda name: False)
    reason = ""
    if editor is None:
        reason = "The daemon runs on embedded defaults (no --config file), so there is nothing to save to."
    else:
        try:
            _, loaded = await asyncio.to_thread(editor.load)
            settings = loaded.settings
            secret_is_set = lambda name: loaded.secret(name) is not None  # noqa: E731
        except ConfigError as exc:
            issues = [*(issues or []), *exc.issues]
            reason = f"{editor.path} is not valid on disk; fix it by hand or restore {editor.backup_path.name}."
            editor = None
    form = build_form(settings, section, secret_is_set)
    if posted:
        form = _with_posted_values(form, posted)
    errors = field_errors(issues or [])
    return render(
        request, "config.html", title="Settings", active="/config", status=status, section=section, sections=SECTIONS,
        form=form, errors=errors, error_count=len(issues or []), editable=editor is not None,
        not_editable_reason=reason, config_path=str(ctx.config_path or ""),
        backup_name=editor.backup_path.name if editor is not None else "", persona_ids=sorted(settings.personas),
        widget_snippets=_widget_snippets(settings) if section == "channels" else [],
    )


def _widget_snippets(settings: Any) -> list[tuple[str, str]]:
    """The one line a site adds to embed each widget."""
    widgets = settings.channels.widget
    base = widgets.public_url or f"http://{widgets.listen}"
    return [(wid, f'<script src="{base}/widget.js" data-widget="{wid}" async></script>') for wid in sorted(widgets.widgets)]


@routes.get("/config/{section}")
async def config_section(request: web.Request) -> web.Response:
    return await _page(request, _section(request))


async def apply_by_reload(request: web.Request, loaded_settings: Any) -> str:
    """Ask the daemon to reload; the message for the owner."""
    try:
        result = await context(request).bus.request(RELOAD, {}, timeout_s=RELOAD_TIMEOUT_S)
    except (BusUnavailable, CommandFailed, TimeoutError) as exc:
        return f"Saved. The daemon did not confirm the reload ({exc or 'no answer'}); it applies at the next restart."
    if not isinstance(result, dict) or not result.get("applied", False):
        errors = result.get("errors") if isinstance(result, dict) else None
        return f"Saved, but the daemon refused to reload: {'; '.join(map(str, errors or [])) or 'no reason given'}"
    restarted = result.get("restarted") or []
    return "Saved and applied" + (f" (restarted: {', '.join(map(str, restarted))})." if restarted else ".")


@routes.post("/config/{section}")
async def save_section(request: web.Request) -> web.Response:
    ctx = context(request)
    section = _section(request)
    editor = _editor(ctx)
    if editor is None:
        raise web.HTTPConflict(text="started with embedded defaults: there is no config file to save")
    raw = await request.post()
    posted = {k: v for k, v in raw.items() if isinstance(v, str) and k != "_csrf"}
    try:
        data, loaded = await asyncio.to_thread(editor.load)
    except ConfigError as exc:
        return await _page(request, section, posted=posted, issues=list(exc.issues), status=409)
    secrets, issues = apply_form(data, section, posted, loaded.settings)
    if issues:
        return await _page(request, section, posted=posted, issues=issues, status=400)
    retyped = typed_secrets(posted)

    def bound(new_settings: SecretaryConfig) -> list[ConfigIssue]:
        return rebinding_issues(loaded.settings, new_settings, retyped, lambda name: loaded.secret(name) is not None)

    try:
        new = await asyncio.to_thread(editor.save, data, secrets, bound)
    except ConfigError as exc:
        return await _page(request, section, posted=posted, issues=list(exc.issues), status=400)
    log.info("config saved from the web page", extra={"section": section, "secrets": sorted(secrets)})
    message = await apply_by_reload(request, new.settings)
    session = session_of(request)
    if session is not None:
        ctx.flash(session, "ok" if message.startswith("Saved and applied") else "warn", message)
    raise redirect(f"/config/{section}")


@routes.post("/config/channels/widgets/add")
async def add_widget(request: web.Request) -> web.Response:
    """A new website widget for one site (its origin); the rest is edited in the channels form."""
    ctx = context(request)
    editor = _editor(ctx)
    if editor is None:
        raise web.HTTPConflict(text="started with embedded defaults: there is no config file to save")
    form = await request.post()
    widget_id, origin = str(form.get("id", "")).strip(), str(form.get("origin", "")).strip().rstrip("/")
    session = session_of(request)
    data, loaded = await asyncio.to_thread(editor.load)
    problem = ""
    if not _PERSONA_ID.fullmatch(widget_id):
        problem = "A widget id is a short name of lowercase letters, digits, '_' or '-', starting with a letter."
    elif widget_id in loaded.settings.channels.widget.widgets:
        problem = f"There is already a widget {widget_id!r}."
    if not problem:
        channels = data.get("channels") if data.get("channels") is not None else {}
        data["channels"] = channels
        widget = channels.get("widget") if channels.get("widget") is not None else {}
        channels["widget"] = widget
        widgets = widget.get("widgets") if widget.get("widgets") is not None else {}
        widget["widgets"] = widgets
        widgets[widget_id] = {"allowed_origins": [origin]}
        try:
            await asyncio.to_thread(editor.save, data, {})
        except ConfigError as exc:
            problem = f"Not added: {exc.issues[0]}"
    if problem:
        if session is not None:
            ctx.flash(session, "error", problem)
        raise redirect("/config/channels")
    message = await apply_by_reload(request, None)
    if session is not None:
        ctx.flash(session, "ok", f"Widget {widget_id} added for {origin}. {message}")
    raise redirect(f"/config/channels#s-channels-widget-widgets-{widget_id}")


@routes.post("/config/personas/add")
async def add_persona(request: web.Request) -> web.Response:
    ctx = context(request)
    editor = _editor(ctx)
    if editor is None:
        raise web.HTTPConflict(text="started with embedded defaults: there is no config file to save")
    form = await request.post()
    new_id, source = str(form.get("id", "")).strip(), str(form.get("from", ""))
    session = session_of(request)
    data, loaded = await asyncio.to_thread(editor.load)
    problem = ""
    if not _PERSONA_ID.fullmatch(new_id):
        problem = "A persona id is a short name of lowercase letters, digits, '_' or '-', starting with a letter."
    elif new_id in loaded.settings.personas:
        problem = f"There is already a persona {new_id!r}."
    elif source not in loaded.settings.personas:
        problem = f"There is no persona {source!r} to copy."
    if problem:
        if session is not None:
            ctx.flash(session, "error", problem)
        raise redirect("/config/personas")
    if "personas" not in data or data["personas"] is None:
        data["personas"] = {}
    data["personas"][new_id] = copy.deepcopy(loaded.settings.personas[source].model_dump(mode="json", exclude_defaults=True))
    try:
        await asyncio.to_thread(editor.save, data, {})
    except ConfigError as exc:
        if session is not None:
            ctx.flash(session, "error", f"Not added: {exc.issues[0]}")
        raise redirect("/config/personas") from None
    message = await apply_by_reload(request, None)
    if session is not None:
        ctx.flash(session, "ok", f"Persona {new_id} added as a copy of {source}. {message}")
    raise redirect(f"/config/personas#s-personas-{new_id}")
