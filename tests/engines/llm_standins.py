"""Local stand-ins for cloud LLM APIs we cannot reach from tests (OpenAI protocol, Anthropic Messages).

Each stand-in is a real aiohttp server on a loopback port; a test sets
``reply`` to a coroutine that writes the HTTP answer (SSE bytes, error
bodies, stalls) and reads back what the client sent from ``requests``.
Helpers write the exact wire format of each API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Reply = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StandIn:
    """A loopback HTTP server whose answers the test scripts."""

    reply: Reply | None = None
    requests: list[Seen] = field(default_factory=list)
    disconnects: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that goes away cancels the handler (as it would upstream).
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.can_read_body:
            body = await request.json()
        self.requests.append(Seen(request.path, dict(request.headers), body))
        if request.method == "GET" and request.path.endswith("/models"):
            return web.json_response({"object": "list", "data": [{"id": "standin-model", "object": "model"}]})
        assert self.reply is not None, "the test did not script a reply"
        try:
            return await self.reply(request, body)
        except ConnectionResetError:  # the client went away while we wrote
            self.disconnects += 1
            return web.Response(status=499)
        except asyncio.CancelledError:  # the client went away while we waited
            self.disconnects += 1
            raise


async def open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    return response


def sse_reply(payload: Sequence[bytes], *, delay_s: float = 0.0, hold_open_s: float = 0.0) -> Reply:
    """Send raw event-stream bytes (one write per item), optionally slowly or then stall."""

    async def reply(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await open_sse(request)
        for piece in payload:
            await response.write(piece)
            if delay_s:
                await asyncio.sleep(delay_s)
        if hold_open_s:
            await asyncio.sleep(hold_open_s)
        return response

    return reply


def json_error(status: int, payload: dict[str, Any]) -> Reply:
    async def reply(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(payload, status=status)

    return reply


# -- OpenAI chat-completions wire ---------------------------------------------


def openai_chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
    chunk = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "standin-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        **extra,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def openai_text_stream(pieces: Sequence[str], finish_reason: str = "stop", *, usage: bool = False) -> list[bytes]:
    out = [openai_chunk({"role": "assistant", "content": ""})]
    out += [openai_chunk({"content": piece}) for piece in pieces]
    out.append(openai_chunk({}, finish_reason))
    if usage:
        out.append(
            b"data: "
            + json.dumps({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "choices": [],
                          "usage": {"prompt_tokens": 11, "completion_tokens": len(pieces), "total_tokens": 11 + len(pieces)}}).encode()
            + b"\n\n"
        )
    out.append(b"data: [DONE]\n\n")
    return out


def openai_error(status: int, message: str, kind: str, code: str | None = None) -> Reply:
    return json_error(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


# -- Anthropic Messages wire -------------------------------------------------------


def anthropic_event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


def anthropic_message_start(input_tokens: int = 25) -> bytes:
    return anthropic_event(
        "message_start",
        {"message": {"id": "msg_standin", "type": "message", "role": "assistant", "content": [],
                     "model": "claude-standin", "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": input_tokens, "output_tokens": 1}}},
    )


def anthropic_text_stream(pieces: Sequence[str], stop_reason: str = "end_turn") -> list[bytes]:
    out = [
        anthropic_message_start(),
        anthropic_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        anthropic_event("ping", {}),
    ]
    out += [anthropic_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    out += [
        anthropic_event("content_block_stop", {"index": 0}),
        anthropic_event("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                          "usage": {"output_tokens": len(pieces)}}),
        anthropic_event("message_stop", {}),
    ]
    return out


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    return json_error(status, {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_standin"})
