"""The vLLM server the box runs on its GPU: command, supervision, health, LoRA adapters.

``vllm_command`` builds ``vllm serve MODEL --host 127.0.0.1 --port N
--served-model-name ... --gpu-memory-utilization ... --max-model-len ...
--enable-lora --max-loras K --max-lora-rank R --lora-modules name=path ...``
from settings (the executable is configurable: vLLM lives in its own venv).
The child environment sets ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` so
persona adapters can be loaded and unloaded while it runs, and
``VLLM_API_KEY``: vLLM then demands ``Authorization: Bearer <key>`` on every
``/v1`` route (chat, models, the adapter admin), so no other local user can
use its port. ``VllmProcess`` makes a random key for each start; it goes in
the environment, never on the command line (every local user can read argv in
/proc).

``VllmProcess`` supervises it through ``ServerProcess`` (ready when
``GET /health`` answers 200, restarted with backoff after a crash, output
tail kept for errors) and manages adapters: the configured ones are on the
command line, those loaded later (``POST /v1/load_lora_adapter``) are
remembered and loaded again after every restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from engines.backend import BackendError
from engines.llm.http_errors import LlmRequestError
from engines.llm.http_response import finish_response, open_response, read_text
from engines.llm.openai_chat_client import OpenAiChatClient
from engines.llm.server_process import ServerCommand, ServerProcess
from engines.llm.settings import VllmSettings, resolve_under

log = logging.getLogger("secretary.engines.llm")

_ADMIN_TIMEOUT_S = 120.0
API_KEY_VARIABLE = "VLLM_API_KEY"  # vLLM's own: the same as --api-key, kept out of argv


def vllm_command(settings: VllmSettings, models_dir: Path, port: int, *, api_key: str | None = None) -> ServerCommand:
    """The ``vllm serve`` command line and environment for ``port``.

    ``api_key`` None is a server without a key: ``secretary vllm serve`` (its own systemd unit) runs that way.
    """
    model = resolve_under(models_dir, settings.model)
    argv = [
        settings.executable, "serve", model,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--served-model-name", settings.served_name,
        "--gpu-memory-utilization", f"{settings.gpu_memory_utilization:g}",
        "--max-model-len", str(settings.max_model_len),
        "--enable-prefix-caching",  # a call's prompt is primed while the greeting plays (LlmEngine.prime)
    ]
    if settings.enable_lora:
        argv += ["--enable-lora", "--max-loras", str(settings.max_loras), "--max-lora-rank", str(settings.max_lora_rank)]
        if settings.lora_adapters:
            argv.append("--lora-modules")
            argv += [f"{name}={resolve_under(models_dir, path)}" for name, path in settings.lora_adapters.items()]
    argv += list(settings.extra_args)
    env = {**os.environ, **settings.env, "PYTHONUNBUFFERED": "1"}
    env.pop(API_KEY_VARIABLE, None)  # only the key made for this start opens the server
    if api_key is not None:
        env[API_KEY_VARIABLE] = api_key
    if settings.enable_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return ServerCommand(tuple(argv), env)


class VllmProcess:
    """One supervised ``vllm serve``; ``adapters`` maps the LoRA names it serves to their paths."""

    def __init__(self, settings: VllmSettings, models_dir: Path, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._models_dir = models_dir
        self._session = session
        self._static = {name: resolve_under(models_dir, p) for name, p in settings.lora_adapters.items()}
        self._runtime: dict[str, str] = {}
        self._admin_lock = asyncio.Lock()
        self._api_key = secrets.token_urlsafe(32)
        self._server = ServerProcess(
            "vllm",
            lambda port: vllm_command(settings, models_dir, port, api_key=self._api_key),
            self._healthy,
            on_ready=self._reload_runtime_adapters,
            startup_timeout_s=settings.startup_timeout_s,
            stop_timeout_s=settings.stop_timeout_s,
            max_restarts=settings.max_restarts,
            restart_backoff_initial_s=settings.restart_backoff_initial_s,
            restart_backoff_max_s=settings.restart_backoff_max_s,
        )
        self.client = OpenAiChatClient(
            session,
            self._server.base_url + "/v1",
            source="vllm",
            api_key=self._api_key,
            connect_timeout_s=settings.connect_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            include_usage=True,
            default_max_tokens=settings.default_max_tokens,
        )

    @property
    def server(self) -> ServerProcess:
        return self._server

    @property
    def adapters(self) -> Mapping[str, str]:
        return {**self._static, **self._runtime}

    async def start(self) -> None:
        await self._server.start()
        models = await self.client.list_models()
        if self._settings.served_name not in models:
            await self._server.stop()
            raise BackendError(f"vllm serves {models}, not the configured {self._settings.served_name!r}")
        log.info("vllm ready on port %d serving %s", self._server.port, ", ".join(models))

    async def wait_ready(self, timeout_s: float) -> None:
        await self._server.wait_ready(timeout_s)

    async def stop(self) -> None:
        await self._server.stop()

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a persona LoRA adapter into the running server (kept across restarts)."""
        if not self._settings.enable_lora:
            raise LlmRequestError("vllm: LoRA is disabled in the settings (enable_lora: false)")
        resolved = resolve_under(self._models_dir, str(path))
        async with self._admin_lock:
            await self._admin("/v1/load_lora_adapter", {"lora_name": name, "lora_path": resolved})
            self._runtime[name] = resolved

    async def unload_adapter(self, name: str) -> None:
        async with self._admin_lock:
            await self._admin("/v1/unload_lora_adapter", {"lora_name": name})
            self._runtime.pop(name, None)
            self._static.pop(name, None)

    async def _reload_runtime_adapters(self) -> None:
        for name, path in list(self._runtime.items()):
            try:
                await self._admin("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
            except (BackendError, LlmRequestError) as exc:
                # One bad adapter must not keep the server down: its persona falls back to the base model.
                del self._runtime[name]
                log.error("vllm: adapter %s could not be loaded again after a restart: %s", name, exc)
                continue
            log.info("vllm: adapter %s loaded again after a restart", name)

    async def _admin(self, path: str, body: Mapping[str, str]) -> str:
        response = await open_response(
            self._session,
            "POST",
            self._server.base_url + path,
            source=f"vllm {path}",
            body=body,
            headers={"Authorization": f"Bearer {self._api_key}"},
            connect_timeout_s=self._settings.connect_timeout_s,
            idle_timeout_s=_ADMIN_TIMEOUT_S,
        )
        complete = False
        try:
            text = await read_text(response, source=f"vllm {path}", idle_timeout_s=_ADMIN_TIMEOUT_S)
            complete = True
            return text
        finally:
            await finish_response(response, complete=complete)

    async def _healthy(self, base_url: str) -> bool:
        try:
            async with asyncio.timeout(2.0):
                async with self._session.get(base_url + "/health") as response:
                    return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False
