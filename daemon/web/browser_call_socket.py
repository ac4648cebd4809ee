"""The WebSocket of the page's "Test call" button: the browser's microphone runs the call flow.

Wire protocol (one call per socket):

* server -> client, first: text ``{"type": "ready", "call_id": ..., "sample_rate": 8000,
  "frame_ms": 20, "format": "s16le"}``.
* client -> server: binary messages of caller audio (PCM16 little-endian, 8 kHz mono, any
  length) and text ``{"type": "hangup"}``.
* server -> client: binary reply frames (320 bytes = 20 ms each), text events from the call
  flow (``{"type": "utterance", "role": ..., "text": ...}`` and the like), then
  ``{"type": "ended", "reason": ...}`` and a close.
* a malformed text message (not JSON, not an object, unknown type) earns a text
  ``{"type": "error", "message": ...}`` and the call goes on; a message larger than
  ``max_message_bytes`` closes the socket (aiohttp's limit, close code 1009).

One ``asyncio.TaskGroup`` owns every task of a call: the runner (the call flow
on a ``StreamLineSession``), the frame sender, the event sender and the
reader. When the browser hangs up or goes away, or the call reaches
``max_call_s``, the session is closed and the runner gets ``runner_grace_s``
to finish before it is cancelled. When the runner ends, the reply audio
already queued is sent, then ``ended``, then the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from channels.peer_json import BadJson, parse_peer_json
from daemon.bus.commands import CommandError
from daemon.call.stream_line import StreamLineSession

log = logging.getLogger("secretary.web")

SAMPLE_RATE: Final = 8000
FRAME_MS: Final = 20

CallRunner = Callable[[StreamLineSession, Callable[[dict[str, Any]], None]], Awaitable[str]]
"""Runs the whole call on the session and returns the end reason; reports what happens through ``on_event``."""

# End causes decided on this side of the socket (the runner's own reason wins when it returns in time).
HANGUP: Final = "hangup"
DISCONNECTED: Final = "disconnected"
MAX_DURATION: Final = "max_duration"
ERROR: Final = "error"


class _SocketCall:
    """One test call: the tasks that join a ``StreamLineSession`` to its WebSocket."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        session: StreamLineSession,
        runner: CallRunner,
        *,
        max_call_s: float,
        runner_grace_s: float,
        drain_timeout_s: float,
    ) -> None:
        self.ws = ws
        self.session = session
        self.runner = runner
        self.max_call_s = max_call_s
        self.runner_grace_s = runner_grace_s
        self.drain_timeout_s = drain_timeout_s
        self._send_lock = asyncio.Lock()
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._events_open = True

    # ------------------------------------------------------------------ main

    async def run(self) -> str:
        await self._send_json(
            {
                "type": "ready",
                "call_id": self.session.call_id,
                "sample_rate": SAMPLE_RATE,
                "frame_ms": FRAME_MS,
                "format": "s16le",
            }
        )
        call_id = self.session.call_id
        async with asyncio.TaskGroup() as tg:
            runner_task = tg.create_task(self._run_runner(), name=f"test-call-{call_id}-runner")
            frames_task = tg.create_task(self._send_frames(), name=f"test-call-{call_id}-frames")
            events_task = tg.create_task(self._send_events(), name=f"test-call-{call_id}-events")
            reader_task = tg.create_task(self._read(), name=f"test-call-{call_id}-reader")
            reason = await self._wait_for_end(runner_task, reader_task)
            self.session.close()
            self._end_events()
            await self._wait_or_cancel({frames_task, events_task}, self.drain_timeout_s, "sending the last replies")
            await self._send_json({"type": "ended", "reason": reason})
            await self.ws.close()
            if not reader_task.done():  # the close wakes a waiting reader; this is a safety net
                await self._wait_or_cancel({reader_task}, self.drain_timeout_s, "reading")
        return reason

    async def _wait_for_end(self, runner_task: asyncio.Task[str], reader_task: asyncio.Task[str]) -> str:
        """The end reason, once the runner returned (asked to end first if the browser left or time ran out)."""
        done, _ = await asyncio.wait({runner_task, reader_task}, timeout=self.max_call_s, return_when=asyncio.FIRST_COMPLETED)
        if runner_task in done:
            return runner_task.result()
        if reader_task in done:
            cause = DISCONNECTED if reader_task.cancelled() else reader_task.result()
        else:
            cause = MAX_DURATION
            log.info("test call %s: reached the %.0f s limit", self.session.call_id, self.max_call_s)
        self.session.close()  # the runner notices session.closed and winds the call down
        if not await self._wait_or_cancel({runner_task}, self.runner_grace_s, "ending the call"):
            return cause
        return cause if cause == MAX_DURATION else runner_task.result()

    async def _wait_or_cancel(self, tasks: set[asyncio.Task[Any]], timeout_s: float, doing: str) -> bool:
        """Wait for ``tasks``; True if they finished in time, else cancel them (and wait for that)."""
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        if not pending:
            return True
        log.warning("test call %s: still %s after %.1f s; cancelling", self.session.call_id, doing, timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        return False

    # ---------------------------------------------------------------- tasks

    async def _run_runner(self) -> str:
        try:
            reason = await self.runner(self.session, self.on_event)
        except CommandError as exc:  # refused before it began, e.g. the engines are still loading
            log.warning("test call %s refused: %s", self.session.call_id, exc.message)
            return f"refused: {exc.message}"
        except Exception:
            log.exception("test call %s: the call flow failed", self.session.call_id)
            return ERROR
        finally:
            self.session.close()
        return str(reason)

    async def _send_frames(self) -> None:
        async with contextlib.aclosing(self.session.outgoing()) as frames:
            async for frame in frames:
                if not await self._send(frame):
                    return

    async def _send_events(self) -> None:
        while (event := await self._events.get()) is not None:
            try:
                text = json.dumps(event)
            except (TypeError, ValueError):
                log.warning("test call %s: event %r is not JSON; dropped", self.session.call_id, event)
                continue
            if not await self._send(text):
                return

    async def _read(self) -> str:
        """Feed caller audio to the session until the browser hangs up (``hangup``) or goes away (``disconnected``)."""
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.BINARY:
                    self.session.deliver(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    if await self._on_text(msg.data):
                        return HANGUP
                elif msg.type is WSMsgType.ERROR:
                    log.info("test call %s: socket error: %s", self.session.call_id, msg.data)
                    break
        except Exception:
            log.exception("test call %s: reading the socket failed", self.session.call_id)
        return DISCONNECTED

    async def _on_text(self, text: str) -> bool:
        """Handle one control message; True when it is the hangup."""
        try:
            message = parse_peer_json(text)
        except BadJson:
            await self._send_error("not JSON")
            return False
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "hangup":
            log.info("test call %s: the browser hung up", self.session.call_id)
            return True
        await self._send_error(f"unknown message type {kind!r}" if isinstance(message, dict) else "not a JSON object")
        return False

    # -------------------------------------------------------------- sending

    def on_event(self, event: dict[str, Any]) -> None:
        """The runner's callback: queue an event for the browser (ignored once the call has ended)."""
        if self._events_open:
            self._events.put_nowait(dict(event))

    def _end_events(self) -> None:
        if self._events_open:
            self._events_open = False
            self._events.put_nowait(None)

    async def _send_error(self, message: str) -> None:
        log.info("test call %s: bad message from the browser: %s", self.session.call_id, message)
        await self._send_json({"type": "error", "message": message})

    async def _send_json(self, message: dict[str, Any]) -> bool:
        return await self._send(json.dumps(message))

    async def _send(self, data: str | bytes) -> bool:
        """Send one message; False once the socket can no longer carry it."""
        if self.ws.closed:
            return False
        try:
            async with self._send_lock:
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data)
        except ConnectionError as exc:
            log.debug("test call %s: send failed: %s", self.session.call_id, exc)
            return False
        return True


async def serve_browser_call(
    request: web.Request,
    runner: CallRunner,
    *,
    call_id: str,
    max_call_s: float = 600.0,
    heartbeat_s: float = 10.0,
    max_message_bytes: int = 64_000,
    runner_grace_s: float = 10.0,
    drain_timeout_s: float = 5.0,
) -> web.WebSocketResponse:
    """Answer the page's test-call WebSocket and run one call on it (see the module docstring)."""
    ws = web.WebSocketResponse(heartbeat=heartbeat_s, max_msg_size=max_message_bytes)
    await ws.prepare(request)
    session = StreamLineSession(call_id)
    call = _SocketCall(
        ws,
        session,
        runner,
        max_call_s=max_call_s,
        runner_grace_s=runner_grace_s,
        drain_timeout_s=drain_timeout_s,
    )
    log.info("test call %s: started from %s", call_id, request.remote)
    try:
        reason = await call.run()
    except asyncio.CancelledError:
        log.info("test call %s: cancelled (server shutting down or the browser left)", call_id)
        raise
    finally:
        session.close()
    log.info(
        "test call %s: ended (%s); %d caller frames in (%d dropped), %d reply frames out (%d dropped)",
        call_id,
        reason,
        session.rx_frames,
        session.rx_dropped_frames,
        session.tx_frames,
        session.tx_dropped_frames,
    )
    return ws
