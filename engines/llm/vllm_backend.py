"""The GPU backend: a supervised local vLLM server with persona LoRA adapters.

``load`` starts ``vllm serve`` (see ``vllm_process``) and checks it serves
the configured model; ``warm_up`` runs one short completion. A request whose
``persona`` names a loaded adapter is sent with ``model=<adapter name>``,
which is how vLLM selects a LoRA; any other request uses the base model.
While the server restarts after a crash a request waits up to
``ready_wait_s`` (the chain's first-token deadline usually moves on sooner).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from engines.backend import BackendError, BackendUnavailable
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, LlmBackend
from engines.llm.settings import VllmSettings
from engines.llm.vllm_process import VllmProcess

_WARM_UP = ChatRequest(messages=(ChatMessage("user", "Hello"),), max_tokens=4, temperature=0.0)


class VllmBackend(LlmBackend):
    name = "vllm"
    caches_prompt = True  # automatic prefix caching (--enable-prefix-caching)

    def __init__(self, settings: VllmSettings, models_dir: Path) -> None:
        self._settings = settings
        self._models_dir = models_dir
        self._session: aiohttp.ClientSession | None = None
        self._process: VllmProcess | None = None

    @property
    def device(self) -> str:
        return "cuda"

    @property
    def model(self) -> str:
        return self._settings.served_name

    @property
    def context_window(self) -> int:
        return self._settings.max_model_len  # counted by the estimate: the tokenizer lives in vLLM's process

    @property
    def default_reply_tokens(self) -> int:
        return self._settings.default_max_tokens

    @property
    def process(self) -> VllmProcess | None:
        return self._process

    async def load(self) -> None:
        if shutil.which(self._settings.executable) is None:
            raise BackendUnavailable(f"vllm executable {self._settings.executable!r} not found (set vllm.executable)")
        self._session = aiohttp.ClientSession()
        self._process = VllmProcess(self._settings, self._models_dir, self._session)
        try:
            await self._process.start()
        except BaseException:
            await self.close()
            raise

    async def warm_up(self) -> None:
        async with contextlib.aclosing(self.stream_chat(_WARM_UP)) as deltas:
            async for _ in deltas:
                pass

    def model_for(self, request: ChatRequest) -> str:
        """The served model name a request goes to: its persona's adapter, else the base model."""
        if self._process is not None and request.persona and request.persona in self._process.adapters:
            return request.persona
        return self._settings.served_name

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        process = self._process
        if process is None:
            raise BackendError("vllm backend is not loaded")
        await process.wait_ready(self._settings.ready_wait_s)
        async with contextlib.aclosing(process.client.stream_chat(request, model=self.model_for(request))) as deltas:
            async for delta in deltas:
                yield delta

    async def load_persona_adapter(self, name: str, path: str | Path) -> None:
        if self._process is None:
            raise BackendError("vllm backend is not loaded")
        await self._process.load_adapter(name, path)

    async def unload_persona_adapter(self, name: str) -> None:
        if self._process is None:
            raise BackendError("vllm backend is not loaded")
        await self._process.unload_adapter(name)

    async def close(self) -> None:
        process, self._process = self._process, None
        session, self._session = self._session, None
        try:
            if process is not None:
                await process.stop()
        finally:
            if session is not None:
                await session.close()
