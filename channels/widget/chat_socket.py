"""One visitor's chat connection: the WebSocket protocol of ``/widget/<id>/chat``.

Server to page (JSON text frames):

    {"type": "hello", "session": "<id>", "history": [{"role": "user"|"assistant", "text": ...}]}
    {"type": "delta", "text": "..."}                 a piece of the answer, as the model writes it
    {"type": "done", "text": "...", "handoff": bool} the whole answer (handoff: offer "leave your number")
    {"type": "error", "message": "...", "for": "message"|"callback"|"protocol", "handoff": bool}
    {"type": "rate_limited", "retry_after_s": N, "message": "...", "for": "message"|"callback"}
    {"type": "callback_ok", "id": "..."}

Page to server:

    {"type": "message", "text": "..."}                               at most 1000 characters
    {"type": "callback", "name": ..., "number": ..., "note": ..., "page": location.href}

A bad frame (not JSON, an unknown type, too long) gets an error and the
connection stays. Messages are answered one at a time per visitor session
(two tabs of one visitor take turns), and each counts against the widget's
``messages_per_minute`` for the session and for the visitor's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from channels.bus_client import BusUnavailable, CommandFailed
from channels.bus_contract.verbs import CALLBACK_REQUEST
from channels.peer_json import BadJson, parse_peer_json
from channels.widget.answers import ChatRequest, Reply, ask
from channels.widget.handoff import CallbackForm, InvalidHandoff
from channels.widget.rate_limit import too_fast_message, whole_seconds
from channels.widget.visitor_sessions import VisitorSession
from channels.widget.widget_context import CALLBACKS_PER_HOUR, WidgetContext
from config.widget_schema import WidgetConfig

log = logging.getLogger("secretary.channels.widget")

MAX_MESSAGE_CHARS = 1000
CALLBACK_TIMEOUT_S = 15.0
CALLBACK_FAILED = "Sorry, your number could not be sent just now. Please try again in a few minutes."


def session_tag(session_id: str) -> str:
    """What the box's logs call the session: a digest, since the id itself is the visitor's key to the history."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class ChatSocket:
    def __init__(
        self, ctx: WidgetContext, ws: web.WebSocketResponse, widget_id: str, widget: WidgetConfig,
        session: VisitorSession, address: str, origin: str,
    ) -> None:
        self.ctx = ctx
        self.ws = ws
        self.widget_id = widget_id
        self.widget = widget
        self.session = session
        self.address = address
        self.origin = origin
        self.tag = f"widget:{widget_id}:{session_tag(session.session_id)}"

    @property
    def _keys(self) -> tuple[tuple[str, str, str], ...]:
        return (("session", self.widget_id, self.session.session_id), ("address", self.widget_id, self.address))

    async def run(self) -> None:
        await self._send({"type": "hello", "session": self.session.session_id, "history": self.session.transcript()})
        async for frame in self.ws:
            if frame.type is WSMsgType.TEXT:
                await self._on_frame(frame.data)
            elif frame.type is WSMsgType.BINARY:
                await self._error("protocol", "Send JSON text frames.")
            elif frame.type is WSMsgType.ERROR:
                log.info("widget socket error", extra={"session": self.tag, "error": repr(self.ws.exception())})
                return

    async def _on_frame(self, data: str) -> None:
        try:
            message = parse_peer_json(data)
        except BadJson:
            await self._error("protocol", "That was not a JSON message.")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "message":
                await self._on_message(message)
            elif kind == "callback":
                await self._on_callback(message)
            else:
                await self._error("protocol", 'Unknown message type: use "message" or "callback".')
        except Exception:  # one visitor's bad luck must not end the conversation
            log.exception("widget message failed", extra={"session": self.tag})
            await self._error("message", "Sorry, something went wrong. Please try again.")

    # -- chat ------------------------------------------------------------------------------
    async def _on_message(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            await self._error("message", "Write a message first.")
            return
        if len(text) > MAX_MESSAGE_CHARS:
            await self._error("message", f"That message is too long: at most {MAX_MESSAGE_CHARS} characters.")
            return
        self.ctx.sessions.touch(self.session)
        wait = self.ctx.messages.admit(self._keys, self.widget.messages_per_minute)
        if wait > 0:
            log.info("widget message rate-limited", extra={"session": self.tag, "address": self.address})
            await self._send({"type": "rate_limited", "for": "message", "retry_after_s": whole_seconds(wait),
                              "message": too_fast_message(wait)})
            return
        text = text.strip()
        async with self.session.lock:
            reply = await self._answer(text)
        if reply.answered:
            self.session.add_exchange(text, reply.text)
        if reply.kind == "done":
            await self._send({"type": "done", "text": reply.text, "handoff": reply.handoff})
        else:
            await self._error("message", reply.text, handoff=reply.handoff)

    async def _answer(self, text: str) -> Reply:
        request = ChatRequest(
            persona=self.ctx.persona_of(self.widget), history=self.session.context(self.widget.history_turns),
            text=text, llm=self.widget.llm, session=self.tag,
        )
        deltas: asyncio.Queue[str | None] = asyncio.Queue()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._forward(deltas), name="widget-deltas")
            try:
                reply = await ask(self.ctx.bus, request, deltas.put_nowait)
            finally:
                deltas.put_nowait(None)
        return reply

    async def _forward(self, deltas: asyncio.Queue[str | None]) -> None:
        while (delta := await deltas.get()) is not None:
            await self._send({"type": "delta", "text": delta})

    # -- call-back hand-off ------------------------------------------------------------------
    async def _on_callback(self, message: dict[str, Any]) -> None:
        try:
            form = CallbackForm.parse(message, self.origin)
        except InvalidHandoff as exc:
            await self._error("callback", str(exc))
            return
        wait = self.ctx.callbacks.retry_after(self._keys, CALLBACKS_PER_HOUR)
        if wait > 0:
            await self._send({"type": "rate_limited", "for": "callback", "retry_after_s": whole_seconds(wait),
                              "message": "You have left your number several times already; we will call you back."})
            return
        args = form.bus_args(self.widget_id, self.tag, time.time())
        try:
            result = await self.ctx.bus.request(CALLBACK_REQUEST, args, timeout_s=CALLBACK_TIMEOUT_S)
        except CommandFailed as exc:
            log.warning("callback request refused", extra={"session": self.tag, "code": exc.code, "error": exc.message})
            text = f"Your number could not be sent: {exc.message}" if exc.code == "invalid" else CALLBACK_FAILED
            await self._error("callback", text)
            return
        except (BusUnavailable, TimeoutError) as exc:
            log.warning("callback request: the box is not reachable", extra={"session": self.tag, "error": repr(exc)})
            await self._error("callback", CALLBACK_FAILED)
            return
        self.ctx.callbacks.record(self._keys)
        request_id = result.get("id") if isinstance(result, dict) else None
        log.info("callback request sent", extra={"session": self.tag, "id": request_id})
        await self._send({"type": "callback_ok", "id": request_id})

    # -- sending -------------------------------------------------------------------------------
    async def _error(self, about: str, text: str, *, handoff: bool = False) -> None:
        await self._send({"type": "error", "for": about, "message": text, "handoff": handoff})

    async def _send(self, message: dict[str, Any]) -> None:
        """Send unless the visitor has gone (their answer is still kept in the session)."""
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionResetError):
            await self.ws.send_json(message)
