"""One streaming OpenAI chat-completions client over aiohttp.

It serves every OpenAI-protocol server the engine talks to: the cloud
(OpenAI, DeepSeek, OpenRouter, Gemini), a vLLM server (local or a remote
cluster) and the llama.cpp server. It posts ``{base_url}/chat/completions``
with ``stream: true`` and yields ``ChatDelta`` as the server's SSE chunks
arrive; the finish reason (and usage, when the server sends it) comes as the
last delta. A reply that ends without a finish reason is an error (the
server died or was interrupted), never a silently short reply.

Timeouts are explicit: ``connect_timeout_s`` for the TCP/TLS connect,
``idle_timeout_s`` for the response headers and between events. Errors are
classified for the fallback chain (see ``http_errors``). Closing the stream
closes the HTTP response, so the server sees the disconnect and stops
generating.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from engines.llm.http_errors import LlmHttpError, LlmProtocolError
from engines.llm.http_response import finish_response, open_response, read_json
from engines.llm.interface import ChatDelta, ChatRequest
from engines.llm.openai_wire import OpenAiChunkParser, chat_completion_body
from engines.llm.sse_stream import read_sse_events


class OpenAiChatClient:
    """A client of one OpenAI-compatible base URL (``.../v1``); the session is the caller's."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        source: str,
        api_key: str | None = None,
        key_env: str | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout_s: float = 5.0,
        idle_timeout_s: float = 30.0,
        include_usage: bool = False,
        default_max_tokens: int | None = None,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self.source = source
        self._key_env = key_env
        self._headers = dict(headers or {})
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.include_usage = include_usage
        self.default_max_tokens = default_max_tokens

    async def list_models(self) -> list[str]:
        """The model ids of ``GET /models``."""
        data = await self.request_json("GET", "/models")
        models = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(models, list):
            raise LlmProtocolError(f"{self.source}: /models did not return a model list")
        return [str(m["id"]) for m in models if isinstance(m, Mapping) and m.get("id")]

    async def request_json(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """``method {base_url}{path}`` and its JSON answer, errors classified like chat."""
        response = await self._open(method, path, body, accept="application/json")
        complete = False
        try:
            data = await read_json(response, source=self.source, idle_timeout_s=self.idle_timeout_s)
            complete = True
            return data
        finally:
            await finish_response(response, complete=complete)

    async def stream_chat(self, request: ChatRequest, *, model: str | None) -> AsyncIterator[ChatDelta]:
        """Stream the reply to ``request`` from ``model``."""
        body = chat_completion_body(
            request, model=model, include_usage=self.include_usage, default_max_tokens=self.default_max_tokens
        )
        response = await self._open("POST", "/chat/completions", body, accept="text/event-stream")
        complete = False
        try:
            if response.headers.get("Content-Type", "").startswith("application/json"):
                # A server that ignores stream=true answers with one whole completion.
                parser = OpenAiChunkParser(self.source)
                delta = parser.parse(await read_json(response, source=self.source, idle_timeout_s=self.idle_timeout_s))
                complete = True
                if parser.finish_reason is None:
                    raise LlmHttpError(f"{self.source}: the completion has no finish_reason")
                if delta is not None:
                    yield delta
                yield parser.final_delta()
                return
            async with contextlib.aclosing(self._deltas(response)) as deltas:
                async for delta in deltas:
                    yield delta
            complete = True
        finally:
            await finish_response(response, complete=complete)

    async def _deltas(self, response: aiohttp.ClientResponse) -> AsyncIterator[ChatDelta]:
        parser = OpenAiChunkParser(self.source)
        done = False
        events = read_sse_events(response, source=self.source, idle_timeout_s=self.idle_timeout_s)
        async with contextlib.aclosing(events):
            async for event in events:
                if event.event == "error":
                    raise LlmHttpError(f"{self.source}: error event mid-stream: {event.data[:300]}")
                data = event.data.strip()
                if not data:
                    continue
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    raise LlmProtocolError(f"{self.source}: malformed JSON in the stream: {data[:120]!r}") from None
                delta = parser.parse(chunk)
                if delta is not None:
                    yield delta
        if parser.finish_reason is None:
            how = "[DONE] came without a finish_reason" if done else "the stream ended before [DONE]"
            raise LlmHttpError(f"{self.source}: reply cut short ({how})")
        yield parser.final_delta()

    async def _open(
        self, method: str, path: str, body: Mapping[str, Any] | None, *, accept: str
    ) -> aiohttp.ClientResponse:
        return await open_response(
            self._session,
            method,
            self.base_url + path,
            source=self.source,
            body=body,
            headers={"Accept": accept, **self._headers},
            connect_timeout_s=self.connect_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            key_env=self._key_env,
        )
