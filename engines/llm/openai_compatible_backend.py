"""Cloud and remote LLMs over the OpenAI chat-completions protocol.

Presets name the base URL, the key's environment variable and a default
model of OpenAI, DeepSeek, OpenRouter and Gemini (Google's OpenAI
compatibility endpoint); ``custom`` is any base URL, which is also how a
remote vLLM cluster or another box's llama.cpp server is reached. The key is
the settings' ``api_key`` (the daemon's secrets loader resolved it), else the
variable read from the process environment at load; a preset whose key is
missing is ``BackendUnavailable`` naming the variable. A custom server without a model
name serves the first model its ``/models`` lists.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp

from engines.backend import BackendError, BackendUnavailable
from engines.llm.interface import ChatDelta, ChatRequest, LlmBackend
from engines.llm.openai_chat_client import OpenAiChatClient
from engines.llm.provider_presets import PRESETS, key_env_of
from engines.llm.settings import OpenAiCompatibleSettings


class OpenAiCompatibleBackend(LlmBackend):
    name = "openai_compatible"

    def __init__(self, settings: OpenAiCompatibleSettings) -> None:
        preset = PRESETS[settings.provider]
        self._settings = settings
        self.base_url = (settings.base_url or preset.base_url).rstrip("/")
        self.key_env = key_env_of(settings.provider, settings.api_key_env)
        self._model = settings.model or preset.default_model
        self._session: aiohttp.ClientSession | None = None
        self._client: OpenAiChatClient | None = None

    @property
    def device(self) -> str:
        return "remote"

    @property
    def model(self) -> str:
        return self._model

    @property
    def source(self) -> str:
        return f"{self._settings.provider} ({self.base_url})"

    async def load(self) -> None:
        api_key = (self._settings.api_key or "").strip() or None
        if api_key is None and self.key_env:
            api_key = os.environ.get(self.key_env, "").strip() or None
            if api_key is None:
                raise BackendUnavailable(
                    f"{self._settings.provider}: the API key variable ${self.key_env} is not set "
                    "(neither in the environment nor in the secrets file)"
                )
        self._session = aiohttp.ClientSession()
        self._client = OpenAiChatClient(
            self._session,
            self.base_url,
            source=self.source,
            api_key=api_key,
            key_env=self.key_env,
            headers=self._settings.headers,
            connect_timeout_s=self._settings.connect_timeout_s,
            idle_timeout_s=self._settings.idle_timeout_s,
            include_usage=self._settings.include_usage,
            default_max_tokens=self._settings.default_max_tokens,
        )
        try:
            if not self._model or self._settings.probe_at_load:
                models = await self._client.list_models()
                if not self._model:
                    if not models:
                        raise BackendError(f"{self.source}: /models lists no model and settings name none")
                    self._model = models[0]
        except BaseException:
            await self.close()
            raise

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        if self._client is None:
            raise BackendError(f"{self.source}: backend is not loaded")
        async with contextlib.aclosing(self._client.stream_chat(request, model=self._model)) as deltas:
            async for delta in deltas:
                yield delta

    async def close(self) -> None:
        session, self._session = self._session, None
        self._client = None
        if session is not None:
            await session.close()
