"""llama.cpp on the CPU: the default LLM backend, as a server child process or in process.

``LlamaCppServerBackend`` starts ``python -m llama_cpp.server`` (this
interpreter unless settings name another) on a free loopback port with the
GGUF model, waits for ``/v1/models``, and streams through the OpenAI client.
Each load makes a random API key that the server demands on every request
(``Authorization: Bearer``), so no other local user can drive the model
through its port; the key reaches the child in its environment (``API_KEY``,
read by llama_cpp.server's settings), never on its command line, which every
local user can read in /proc.
A crashed server is restarted by ``ServerProcess``; a request that was
streaming when it died fails with ``BackendError`` so the chain fails over.
``close`` terminates the process group.

``LlamaCppInProcessBackend`` loads ``llama_cpp.Llama`` in a worker thread and
streams ``create_chat_completion(stream=True)`` through ``iterate_in_thread``;
closing the stream stops generation after the token being computed. One
generation at a time: a second request waits (in its worker thread, not on
the loop) for the first to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import secrets
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from engines.backend import BackendError, BackendUnavailable
from engines.llm.gguf_model import resolve_gguf
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, LlmBackend
from engines.llm.openai_chat_client import OpenAiChatClient
from engines.llm.openai_wire import OpenAiChunkParser, openai_message, openai_tool
from engines.llm.server_process import ServerCommand, ServerProcess
from engines.llm.settings import LlamaCppSettings
from engines.llm.token_counter import GgufTokenCounter, estimate_tokens
from engines.thread_stream import iterate_in_thread

_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
_WARM_UP = ChatRequest(messages=(ChatMessage("user", "Hello"),), max_tokens=1, temperature=0.0)
# llama_cpp.server's ServerSettings (pydantic-settings, case-insensitive) reads its api_key from this variable.
API_KEY_VARIABLE = "API_KEY"
# A server killed by SIGILL ran an instruction this CPU lacks: a llama.cpp compiled for another processor.
SIGILL_HINT = (
    "this build of llama-cpp-python uses CPU instructions this processor lacks (it was compiled for another "
    "machine's CPU, e.g. with AVX-512); rebuild it for the portable baseline in scripts/llama-cpp-cmake-args "
    "(scripts/bootstrap; on the box, image/build-rootfs) and see `secretary doctor`"
)


class _GgufBackend(LlmBackend):
    """What both llama.cpp backends share: a GGUF file, its window, reply budget and vocabulary."""

    name = "llama_cpp"
    caches_prompt = True  # llama-cpp-python reuses the longest common prefix of the last prompt

    def __init__(self, settings: LlamaCppSettings, models_dir: Path) -> None:
        self._settings = settings
        self._models_dir = models_dir
        self._path: Path | None = None
        # Its own vocabulary: counting never waits for a generation holding the model (None: estimated).
        self._counter: GgufTokenCounter | None = None

    @property
    def model(self) -> str:
        return self._path.name if self._path else self._settings.model

    @property
    def context_window(self) -> int:
        return self._settings.n_ctx

    @property
    def default_reply_tokens(self) -> int:
        return self._settings.default_max_tokens

    def count_tokens(self, text: str) -> int:
        counter = self._counter
        return counter.count(text) if counter is not None else estimate_tokens(text)


class LlamaCppServerBackend(_GgufBackend):
    def __init__(self, settings: LlamaCppSettings, models_dir: Path) -> None:
        super().__init__(settings, models_dir)
        self._session: aiohttp.ClientSession | None = None
        self._process: ServerProcess | None = None
        self._client: OpenAiChatClient | None = None
        self._api_key = ""

    @property
    def process(self) -> ServerProcess | None:
        """The supervised server (its pid and restarts are visible for status and tests)."""
        return self._process

    async def load(self) -> None:
        self._path = resolve_gguf(self._settings.model, self._models_dir)
        python = self._settings.python or sys.executable
        if python == sys.executable:
            missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
            if missing:
                raise BackendUnavailable(
                    f"llama.cpp server needs {', '.join(missing)} (pip install 'llama-cpp-python[server]')"
                )
        self._api_key = secrets.token_urlsafe(32)  # new for each load; restarts after a crash keep it
        self._session = aiohttp.ClientSession()
        self._process = ServerProcess(
            "llama.cpp-server",
            self._command,
            self._probe,
            startup_timeout_s=self._settings.startup_timeout_s,
            stop_timeout_s=self._settings.stop_timeout_s,
            max_restarts=self._settings.max_restarts,
            restart_backoff_initial_s=self._settings.restart_backoff_initial_s,
            restart_backoff_max_s=self._settings.restart_backoff_max_s,
            exit_hints={-signal.SIGILL: SIGILL_HINT},
        )
        try:
            await self._process.start()
            if importlib.util.find_spec("llama_cpp") is not None:  # else (another python serves): estimated counts
                self._counter = await asyncio.to_thread(GgufTokenCounter, self._path)
        except BaseException:
            await self.close()
            raise
        self._client = OpenAiChatClient(
            self._session,
            self._process.base_url + "/v1",
            source="llama.cpp server",
            api_key=self._api_key,
            connect_timeout_s=self._settings.connect_timeout_s,
            idle_timeout_s=self._settings.idle_timeout_s,
            default_max_tokens=self._settings.default_max_tokens,
        )

    def _command(self, port: int) -> ServerCommand:
        assert self._path is not None
        s = self._settings
        argv = [
            s.python or sys.executable, "-m", "llama_cpp.server",
            "--model", str(self._path),
            "--model_alias", self._path.stem,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_threads", str(s.n_threads),
            "--n_threads_batch", str(s.prefill_threads),
            "--n_ctx", str(s.n_ctx),
            "--interrupt_requests", "false",
        ]
        if s.chat_format:
            argv += ["--chat_format", s.chat_format]
        argv += list(s.extra_args)
        env = {k: v for k, v in os.environ.items() if k.lower() != API_KEY_VARIABLE.lower()}
        return ServerCommand(tuple(argv), {**env, "PYTHONUNBUFFERED": "1", API_KEY_VARIABLE: self._api_key})

    async def _probe(self, base_url: str) -> bool:
        assert self._session is not None
        try:
            async with asyncio.timeout(2.0):
                headers = {"Authorization": f"Bearer {self._api_key}"}
                async with self._session.get(base_url + "/v1/models", headers=headers) as response:
                    return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def warm_up(self) -> None:
        async with contextlib.aclosing(self.stream_chat(_WARM_UP)) as deltas:
            async for _ in deltas:
                pass

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        if self._client is None or self._process is None or self._path is None:
            raise BackendError("llama.cpp server backend is not loaded")
        await self._process.wait_ready(self._settings.ready_wait_s)
        async with contextlib.aclosing(self._client.stream_chat(request, model=self._path.stem)) as deltas:
            async for delta in deltas:
                yield delta

    async def close(self) -> None:
        process, self._process = self._process, None
        session, self._session = self._session, None
        counter, self._counter = self._counter, None
        self._client = None
        self._api_key = ""
        if counter is not None:
            counter.close()
        try:
            if process is not None:
                await process.stop()
        finally:
            if session is not None:
                await session.close()


class LlamaCppInProcessBackend(_GgufBackend):
    def __init__(self, settings: LlamaCppSettings, models_dir: Path) -> None:
        super().__init__(settings, models_dir)
        self._llama: Any = None
        self._busy = threading.Lock()

    async def load(self) -> None:
        self._path = resolve_gguf(self._settings.model, self._models_dir)
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendUnavailable("llama.cpp in-process needs llama-cpp-python (pip install llama-cpp-python)")
        self._llama = await asyncio.to_thread(self._load_model, self._path)
        self._counter = await asyncio.to_thread(GgufTokenCounter, self._path)

    def _load_model(self, path: Path) -> Any:
        import llama_cpp

        s = self._settings
        try:
            return llama_cpp.Llama(
                model_path=str(path),
                n_ctx=s.n_ctx,
                n_threads=s.n_threads,
                n_threads_batch=s.prefill_threads,
                chat_format=s.chat_format,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"llama.cpp could not load {path.name}: {exc}") from None

    async def warm_up(self) -> None:
        async with contextlib.aclosing(self.stream_chat(_WARM_UP)) as deltas:
            async for _ in deltas:
                pass

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        llama = self._llama
        if llama is None:
            raise BackendError("llama.cpp in-process backend is not loaded")
        kwargs: dict[str, Any] = {
            "messages": [openai_message(m) for m in request.messages],
            "stream": True,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens if request.max_tokens is not None else self._settings.default_max_tokens,
            "stop": list(request.stop) or None,
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.tools:
            kwargs["tools"] = [openai_tool(t) for t in request.tools]
        busy = self._busy

        def generate(stop: threading.Event) -> Iterator[Any]:
            while not busy.acquire(timeout=0.05):
                if stop.is_set():
                    return
            try:
                chunks = llama.create_chat_completion(**kwargs)
                try:
                    for chunk in chunks:
                        yield chunk
                        if stop.is_set():
                            return
                finally:
                    chunks.close()
            finally:
                busy.release()

        parser = OpenAiChunkParser("llama.cpp in-process")
        try:
            async with contextlib.aclosing(iterate_in_thread(generate, name="llama-cpp-chat")) as chunks:
                async for chunk in chunks:
                    delta = parser.parse(chunk)
                    if delta is not None:
                        yield delta
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp generation failed: {exc}") from None
        if parser.finish_reason is None:
            raise BackendError("llama.cpp generation ended without a finish reason")
        yield parser.final_delta()

    async def close(self) -> None:
        counter, self._counter = self._counter, None
        if counter is not None:
            counter.close()
        llama, self._llama = self._llama, None
        if llama is None:
            return

        def free() -> None:
            # A cancelled generation finishes its current token first.
            if self._busy.acquire(timeout=30):
                try:
                    llama.close()
                finally:
                    self._busy.release()

        await asyncio.to_thread(free)
