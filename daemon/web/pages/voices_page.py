"""Cloned voices: upload reference samples (checked before they are kept), listen, delete, give a voice to a persona, preview."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from channels.bus_client import BusUnavailable, CommandFailed
from channels.bus_contract.box_payloads import EngineState
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.topics import engine_state
from channels.bus_contract.verbs import SPEAK
from channels.peer_json import BadJson, parse_peer_json
from config.errors import ConfigError
from daemon.voices.samples import MAX_UPLOAD_BYTES, SampleRejected, VoiceLibrary
from daemon.web.auth import MULTIPART_KEY
from daemon.web.config_editor import ConfigEditor
from daemon.web.pages.config_page import apply_by_reload
from daemon.web.transport.limits import too_large
from daemon.web.web_context import context, redirect, render, session_of

log = logging.getLogger("secretary.web")
routes = web.RouteTableDef()
MAX_FILES_PER_UPLOAD = 10
UPLOAD_PATH = "/voices/upload"
MAX_UPLOAD_REQUEST_BYTES = 32 * 1024 * 1024  # one upload of a few WAV files, counted as it streams in
STREAMED_PATHS = frozenset({UPLOAD_PATH})  # read here part by part, past the app's small body limit
_UPLOAD_CHUNK_BYTES = 64 * 1024
_MAX_FIELD_BYTES = 1024
PREVIEW_TIMEOUT_S = 60.0


def _voice_rows(library: VoiceLibrary, configured: dict[str, Any], personas: dict[str, Any]) -> list[dict[str, Any]]:
    names = sorted(set(library.voices()) | set(configured))
    rows = []
    for name in names:
        rows.append({
            "name": name,
            "samples": library.samples(name) if name in library.voices() else [],
            "configured": name in configured,
            "personas": sorted(p for p, cfg in personas.items() if cfg.voice.name == name),
        })
    return rows


def _serving_backend(report: Any) -> str | None:
    """The backend an engine says it serves with; None until it reports (or if the report does not fit)."""
    try:
        return EngineState.decode(report).backend if report is not None else None
    except PayloadError:
        return None


@routes.get("/voices")
async def voices(request: web.Request, rejected: list[tuple[str, list[str]]] | None = None,
                 selected_voice: str = "", status: int = 200) -> web.Response:
    ctx = context(request)
    settings = ctx.settings
    tts = settings.engines.tts
    rows = await asyncio.to_thread(_voice_rows, ctx.voices, dict(tts.xtts.voices), dict(settings.personas))
    return render(
        request, "voices.html", title="Voices", active="/voices", status=status, voices=rows,
        min_samples=VoiceLibrary.MIN_SAMPLES, xtts_configured="xtts" in tts.chain,
        tts_backend=_serving_backend(ctx.relay.state.get(engine_state("tts"))),
        persona_ids=sorted(settings.personas), rejected=rejected or [], selected_voice=selected_voice,
    )


class _UploadTooLarge(Exception):
    pass


async def _read_upload(request: web.Request) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The form's fields and its ``samples`` files, streamed part by part with the total counted.

    Runs after login (the auth middleware) and the CSRF check, which may have
    read the first part already; _UploadTooLarge past MAX_UPLOAD_REQUEST_BYTES.
    A file is kept up to one byte over MAX_UPLOAD_BYTES, so the library's check
    says it is too long.
    """
    if request.content_length is not None and request.content_length > MAX_UPLOAD_REQUEST_BYTES:
        raise _UploadTooLarge
    reader = request.get(MULTIPART_KEY) or await request.multipart()
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ValueError("a nested multipart body")
        keep = MAX_UPLOAD_BYTES + 1 if part.filename is not None else _MAX_FIELD_BYTES
        data = bytearray()
        while chunk := await part.read_chunk(_UPLOAD_CHUNK_BYTES):
            total += len(chunk)
            if total > MAX_UPLOAD_REQUEST_BYTES:
                raise _UploadTooLarge
            if len(data) < keep:
                data += chunk[: keep - len(data)]
        if part.filename is None:
            fields.setdefault(part.name or "", data.decode("utf-8", "replace"))
        elif part.name == "samples" and (part.filename or data):
            files.append((part.filename, bytes(data)))
    return fields, files


@routes.post(UPLOAD_PATH)
async def upload(request: web.Request) -> web.Response:
    ctx = context(request)
    if request.content_type != "multipart/form-data":
        return await voices(request, [("(no file)", ["Send the samples as a multipart/form-data upload."])],
                            status=400)
    try:
        form, files = await _read_upload(request)
    except _UploadTooLarge:
        return too_large(MAX_UPLOAD_REQUEST_BYTES, "upload")
    except ValueError:
        return await voices(request, [("(upload)", ["The upload was cut off or malformed; try again."])], status=400)
    voice = form.get("voice", "").strip()
    rejected: list[tuple[str, list[str]]] = []
    try:
        ctx.voices.voice_dir(voice)
    except ValueError:
        rejected.append((voice or "(no name)", ["A voice name is a short id of lowercase letters, digits, '_' or '-', starting with a letter."]))
        return await voices(request, rejected, status=400)
    if not files:
        return await voices(request, [("(no file)", ["Choose one or more WAV files to upload."])], voice, status=400)
    if len(files) > MAX_FILES_PER_UPLOAD:
        return await voices(request, [(f"{len(files)} files", [f"Upload at most {MAX_FILES_PER_UPLOAD} files at once."])],
                            voice, status=400)
    added = []
    for filename, data in files:
        try:
            name, _ = await asyncio.to_thread(ctx.voices.add, voice, data, filename)
            added.append(name)
        except SampleRejected as exc:
            rejected.append((filename or "upload", list(exc.check.problems)))
    log.info("voice samples uploaded", extra={"voice": voice, "added": len(added), "rejected": len(rejected)})
    session = session_of(request)
    if rejected:
        return await voices(request, rejected, voice, status=400 if not added else 200)
    if session is not None:
        count = len(await asyncio.to_thread(ctx.voices.samples, voice))
        more = VoiceLibrary.MIN_SAMPLES - count
        ctx.flash(session, "ok", f"Added {len(added)} sample{'s' if len(added) != 1 else ''} to {voice}."
                  + (f" Add {more} more to use it." if more > 0 else ""))
    raise redirect(f"/voices#voice-{voice}")


def _sample(request: web.Request) -> Path:
    try:
        return context(request).voices.sample_path(request.match_info["voice"], request.match_info["name"])
    except (ValueError, FileNotFoundError):
        raise web.HTTPNotFound(text="no such sample") from None


@routes.get("/voices/{voice}/samples/{name}")
async def sample_audio(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(_sample(request), headers={"Content-Type": "audio/wav", "Cache-Control": "private"})


@routes.post("/voices/{voice}/samples/{name}/delete")
async def delete_sample(request: web.Request) -> web.Response:
    ctx = context(request)
    _sample(request)
    voice, name = request.match_info["voice"], request.match_info["name"]
    await asyncio.to_thread(ctx.voices.delete, voice, name)
    session = session_of(request)
    if session is not None:
        ctx.flash(session, "ok", f"Deleted sample {name} of {voice}.")
    raise redirect(f"/voices#voice-{voice}")


@routes.post("/voices/{voice}/use")
async def use_voice(request: web.Request) -> web.Response:
    """Register the samples as an XTTS voice and give it to a persona, through the config file and a reload."""
    ctx = context(request)
    session = session_of(request)
    voice = request.match_info["voice"]
    persona = str((await request.post()).get("persona", ""))

    def fail(text: str) -> web.HTTPSeeOther:
        if session is not None:
            ctx.flash(session, "error", text)
        return redirect("/voices")

    try:
        voice_dir = ctx.voices.voice_dir(voice)
    except ValueError:
        raise web.HTTPNotFound(text="no such voice") from None
    if len(await asyncio.to_thread(ctx.voices.samples, voice)) < VoiceLibrary.MIN_SAMPLES:
        raise fail(f"{voice} needs at least {VoiceLibrary.MIN_SAMPLES} samples first.")
    if ctx.config_path is None:
        raise fail("The daemon runs on embedded defaults: there is no config file to save the voice in.")
    editor = ConfigEditor(ctx.config_path)
    try:
        data, loaded = await asyncio.to_thread(editor.load)
    except ConfigError as exc:
        raise fail(f"The config file is not valid: {exc.issues[0]}") from None
    if persona not in loaded.settings.personas:
        raise fail(f"There is no persona {persona!r}.")
    engines = _mapping(data, "engines")
    tts = _mapping(engines, "tts")
    xtts = _mapping(tts, "xtts")
    voices_map = _mapping(xtts, "voices")
    voices_map[voice] = [str(voice_dir)]
    personas = _mapping(data, "personas")
    if persona not in personas or personas[persona] is None:  # a bundled persona: write it out in full first
        personas[persona] = loaded.settings.personas[persona].model_dump(mode="json", exclude_defaults=True)
    _mapping(personas[persona], "voice")["name"] = voice
    try:
        await asyncio.to_thread(editor.save, data, {})
    except ConfigError as exc:
        raise fail(f"Not saved: {exc.issues[0]}") from None
    message = await apply_by_reload(request, None)
    if session is not None:
        ctx.flash(session, "ok", f"{persona} now speaks with the cloned voice {voice}. {message}")
    raise redirect("/voices")


def _mapping(parent: Any, key: str) -> Any:
    if parent.get(key) is None:
        parent[key] = {}
    return parent[key]


@routes.post("/api/voices/preview")
async def preview(request: web.Request) -> web.Response:
    """A phrase in the persona's voice with the current TTS backend (the daemon speaks it into its spool)."""
    ctx = context(request)
    try:
        body = parse_peer_json(await request.read())  # bounded by the app's client_max_size
    except BadJson as exc:
        return web.json_response({"error": f"expected JSON {{persona, text}}: the body is {exc}"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "expected JSON {persona, text}"}, status=400)
    try:
        result = await ctx.bus.request(SPEAK, {"persona": body.get("persona"), "text": body.get("text")},
                                       timeout_s=PREVIEW_TIMEOUT_S)
    except CommandFailed as exc:
        return web.json_response({"error": exc.message}, status=400 if exc.code == "invalid" else 503)
    except (BusUnavailable, TimeoutError):
        return web.json_response({"error": "the daemon did not answer on the bus"}, status=503)
    spool = (ctx.settings.data_dir / "spool" / "chat").resolve()
    path = Path(str(result.get("audio_file", ""))).resolve() if isinstance(result, dict) else spool
    if path.parent != spool or path.suffix != ".wav":
        return web.json_response({"error": "the daemon answered with an unexpected file"}, status=502)
    try:
        audio = await asyncio.to_thread(path.read_bytes)
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink)
    headers = {"X-TTS-Backend": str(result.get("backend") or "")}
    return web.Response(body=audio, content_type="audio/wav", headers=headers)
