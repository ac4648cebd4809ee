"""Security: whether the page is on HTTPS, its certificate (fingerprint, expiry) and uploading the owner's own."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from daemon.web.transport.certificate import CertificateError, CertificateInfo, install_pair, read_certificate
from daemon.web.web_context import context, redirect, render, session_of

routes = web.RouteTableDef()


def _field_bytes(form: Any, name: str) -> bytes:
    """A form field as bytes, whether a file was chosen or the PEM text pasted."""
    value = form.get(name)
    if isinstance(value, web.FileField):
        return value.file.read()
    return value.encode("utf-8") if isinstance(value, str) else b""


@routes.get("/security")
async def security(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    ctx = context(request)
    web_cfg = ctx.settings.web
    cert_path, _ = web_cfg.tls_files(ctx.settings.data_dir)
    info: CertificateInfo | None = None
    problem = ""
    try:
        info = await asyncio.to_thread(read_certificate, cert_path)
    except CertificateError as exc:
        problem = str(exc)
    passwords_generated = await asyncio.to_thread(lambda: ctx.passwords.generated)
    return render(
        request, "security.html", title="Security", active="/security", status=status, tls=ctx.tls is not None,
        mode=web_cfg.tls.mode, listen=web_cfg.listen, cert_path=str(cert_path), info=info, problem=problem,
        days_left=int(info.days_left()) if info else None, generated=passwords_generated is True, error=error,
    )


@routes.post("/security/certificate")
async def upload_certificate(request: web.Request) -> web.Response:
    """Replace the served certificate by the owner's PEM pair, checked first; new connections get it at once."""
    ctx = context(request)
    form = await request.post()  # a few KB; bounded by the app's client_max_size
    cert_pem = await asyncio.to_thread(_field_bytes, form, "certificate")  # aiohttp spools file fields to disk
    key_pem = await asyncio.to_thread(_field_bytes, form, "key")
    cert_path, key_path = ctx.settings.web.tls_files(ctx.settings.data_dir)
    try:
        info = await asyncio.to_thread(install_pair, cert_path, key_path, cert_pem, key_pem)
    except CertificateError as exc:
        return await security(request, error=f"Not installed: {exc}", status=400)
    except OSError as exc:
        return await security(request, error=f"Not installed: cannot write {cert_path}: {exc.strerror}", status=500)
    if ctx.tls is not None:
        await asyncio.to_thread(ctx.tls.load_cert_chain, cert_path, key_path)
    session = session_of(request)
    if session is not None:
        served = "served from now on" if ctx.tls is not None else "kept for when HTTPS is on (web.tls.mode)"
        ctx.flash(session, "ok", f"Certificate for {info.subject} installed and {served}; "
                                 f"SHA-256 {info.fingerprint}.")
    raise redirect("/security")
