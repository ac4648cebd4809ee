"""Claude through Anthropic's Messages API (``POST {base}/v1/messages``, streamed).

Headers ``x-api-key`` (the settings' ``api_key``, which the daemon's secrets
loader resolved, else the variable ``api_key_env`` read from the process
environment at load; missing is ``BackendUnavailable`` naming it) and
``anthropic-version``. The reply streams as server-sent events decoded by
``anthropic_wire``; a stream that ends before ``message_stop`` is an error,
and closing the stream closes the HTTP response.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp

from engines.backend import BackendError, BackendUnavailable
from engines.llm.anthropic_wire import AnthropicEventParser, messages_body
from engines.llm.http_errors import LlmHttpError
from engines.llm.http_response import finish_response, open_response
from engines.llm.interface import ChatDelta, ChatRequest, LlmBackend
from engines.llm.settings import AnthropicSettings
from engines.llm.sse_stream import read_sse_events


class AnthropicMessagesBackend(LlmBackend):
    name = "anthropic"

    def __init__(self, settings: AnthropicSettings) -> None:
        self._settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] = {}

    @property
    def device(self) -> str:
        return "remote"

    @property
    def model(self) -> str:
        return self._settings.model

    @property
    def source(self) -> str:
        return f"anthropic ({self.base_url})"

    async def load(self) -> None:
        key = (self._settings.api_key or "").strip() or os.environ.get(self._settings.api_key_env, "").strip()
        if not key:
            raise BackendUnavailable(
                f"anthropic: the API key variable ${self._settings.api_key_env} is not set "
                "(neither in the environment nor in the secrets file)"
            )
        self._headers = {
            "x-api-key": key,
            "anthropic-version": self._settings.anthropic_version,
            "Accept": "text/event-stream",
        }
        self._session = aiohttp.ClientSession()

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        session = self._session
        if session is None:
            raise BackendError(f"{self.source}: backend is not loaded")
        body = messages_body(request, model=self._settings.model, default_max_tokens=self._settings.default_max_tokens)
        response = await open_response(
            session,
            "POST",
            self.base_url + "/v1/messages",
            source=self.source,
            body=body,
            headers=self._headers,
            connect_timeout_s=self._settings.connect_timeout_s,
            idle_timeout_s=self._settings.idle_timeout_s,
            key_env=self._settings.api_key_env,
        )
        parser = AnthropicEventParser(self.source)
        complete = False
        try:
            events = read_sse_events(response, source=self.source, idle_timeout_s=self._settings.idle_timeout_s)
            async with contextlib.aclosing(events):
                async for event in events:
                    delta = parser.parse(event.event, event.data)
                    if delta is not None:
                        yield delta
                    if parser.done:
                        break
            if not parser.done:
                raise LlmHttpError(f"{self.source}: reply cut short (the stream ended before message_stop)")
            complete = True
        finally:
            await finish_response(response, complete=complete)
        yield parser.final_delta()

    async def close(self) -> None:
        session, self._session = self._session, None
        self._headers = {}
        if session is not None:
            await session.close()
