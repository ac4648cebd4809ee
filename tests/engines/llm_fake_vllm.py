"""A stand-in for ``vllm serve`` (no GPU here): the same command line and the HTTP surface the box uses.

Run as ``llm_fake_vllm.py serve MODEL --host H --port N --served-model-name S
--gpu-memory-utilization F --max-model-len L [--enable-prefix-caching] [--enable-lora --max-loras K
--max-lora-rank R --lora-modules name=path ...] [extra args]``. It serves:

- ``GET /health`` (200 once "loaded"), ``GET /v1/models`` (base + adapters);
- ``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter`` (only when
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` is true, like vLLM; 400 on a second
  load, a missing path, or more than ``--max-loras``);
- streaming ``POST /v1/chat/completions``: echoes ``<model>: <last user words>``
  one word per token, honouring ``max_tokens`` and ``stop``; unknown model 404;
- ``GET /fake/state``: its argv, environment flag and adapters, for tests.

With ``VLLM_API_KEY`` set, every ``/v1`` route wants ``Authorization: Bearer
<key>`` and answers 401 ``{"error": "Unauthorized"}`` otherwise, like vLLM's
authentication middleware (``/health`` stays open).

Environment knobs for tests: ``FAKE_VLLM_FAIL`` (print it to stderr and exit
1, like a CUDA OOM at start; with ``FAKE_VLLM_FAIL_IF_EXISTS`` only while that
file exists), ``FAKE_VLLM_STARTUP_S`` (load time before the port opens),
``FAKE_VLLM_TOKEN_DELAY_S`` (time per token).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from aiohttp import web


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="vllm")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--gpu-memory-utilization", type=float, required=True)
    parser.add_argument("--max-model-len", type=int, required=True)
    parser.add_argument("--enable-prefix-caching", action="store_true")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--max-loras", type=int, default=1)
    parser.add_argument("--max-lora-rank", type=int, default=16)
    parser.add_argument("--lora-modules", nargs="+", default=[])
    return parser.parse_known_args(argv)


def error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"object": "error", "message": message, "type": kind, "param": None, "code": status}, status=status)


class FakeVllm:
    def __init__(self, args: argparse.Namespace, extra: list[str]) -> None:
        self.args = args
        self.extra = extra
        self.adapters: dict[str, str] = dict(item.split("=", 1) for item in args.lora_modules)
        self.runtime = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower() in ("true", "1")
        self.token_delay = float(os.environ.get("FAKE_VLLM_TOKEN_DELAY_S", "0"))
        self.api_key = os.environ.get("VLLM_API_KEY") or None

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.api_key and request.path.startswith("/v1") and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.authenticate])
        app.router.add_get("/health", lambda r: web.Response(status=200))
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/fake/state", self.state)
        app.router.add_post("/v1/chat/completions", self.chat)
        if self.runtime:
            app.router.add_post("/v1/load_lora_adapter", self.load)
            app.router.add_post("/v1/unload_lora_adapter", self.unload)
        return app

    async def models(self, request: web.Request) -> web.Response:
        base = {"id": self.args.served_model_name, "object": "model", "owned_by": "vllm", "root": self.args.model, "parent": None}
        loras = [{"id": n, "object": "model", "owned_by": "vllm", "root": p, "parent": self.args.served_model_name}
                 for n, p in self.adapters.items()]
        return web.json_response({"object": "list", "data": [base, *loras]})

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response({"argv": sys.argv[1:], "extra": self.extra, "runtime_lora": self.runtime,
                                  "adapters": self.adapters, "pid": os.getpid(),
                                  "api_key_set": self.api_key is not None})

    async def load(self, request: web.Request) -> web.Response:
        body = await request.json()
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return error(400, "Both 'lora_name' and 'lora_path' must be provided.", "BadRequestError")
        if name in self.adapters:
            return error(400, f"The lora adapter '{name}' has already been loaded.", "BadRequestError")
        if not os.path.isdir(path):
            return error(400, f"Loading lora {name} failed: No adapter found for {path}", "BadRequestError")
        if len(self.adapters) >= self.args.max_loras:
            return error(400, f"Cannot load more than {self.args.max_loras} LoRA adapters", "BadRequestError")
        self.adapters[name] = path
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def unload(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("lora_name")
        if name not in self.adapters:
            return error(400, f"The lora adapter '{name}' cannot be found.", "BadRequestError")
        del self.adapters[name]
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        model = body.get("model")
        if model != self.args.served_model_name and model not in self.adapters:
            return error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if not body.get("stream"):
            return error(400, "this stand-in only streams", "BadRequestError")
        last_user = next((m.get("content") or "" for m in reversed(body["messages"]) if m["role"] == "user"), "")
        words = [f"{model}:"] + last_user.split()
        max_tokens = body.get("max_tokens") or 10_000
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        created = int(time.time())

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], "usage": None}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        text, finish, sent = "", "stop", 0
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            if sent >= max_tokens:
                finish = "length"
                break
            cut = min((i for s in stops if (i := (text + piece).find(s)) >= 0), default=-1)
            if cut >= 0:
                piece = (text + piece)[len(text):cut]
                if piece:
                    await send({"content": piece})
                break
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            await send({"content": piece})
            text += piece
            sent += 1
        await send({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [], "usage": {"prompt_tokens": len(last_user.split()), "completion_tokens": sent,
                                              "total_tokens": len(last_user.split()) + sent}}
            await response.write(f"data: {json.dumps(usage)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response


def main() -> None:
    args, extra = parse(sys.argv[1:])
    failure = os.environ.get("FAKE_VLLM_FAIL")
    only_if = os.environ.get("FAKE_VLLM_FAIL_IF_EXISTS")
    if only_if and not os.path.exists(only_if):
        failure = None
    print(f"INFO fake vllm: loading {args.model} (gpu_memory_utilization={args.gpu_memory_utilization})", flush=True)
    if failure:
        print(failure, file=sys.stderr, flush=True)
        sys.exit(1)
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_S", "0")))
    web.run_app(FakeVllm(args, extra).app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
