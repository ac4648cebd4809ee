"""The llama.cpp server backend against the real ``llama_cpp.server`` with SmolLM2-135M on the CPU.

One server is shared by the module; tests that kill or close a server start
their own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from engines.backend import BackendError, BackendUnavailable
from engines.llm.backend_factory import build_llm_backend
from engines.llm.llama_cpp_backend import API_KEY_VARIABLE, LlamaCppServerBackend
from engines.llm.reply_assembly import collect_reply
from engines.llm.settings import LlamaCppSettings
from tests.engines.llm_helpers import COUNT, LLAMA, STORY, alive, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(models_dir: Path) -> AsyncIterator[LlamaCppServerBackend]:
    backend = build_llm_backend("llama_cpp", LLAMA, models_dir)
    assert isinstance(backend, LlamaCppServerBackend)
    await backend.load()
    await backend.warm_up()
    yield backend
    await backend.close()


async def test_streams_text_in_pieces(server: LlamaCppServerBackend) -> None:
    deltas = [d async for d in server.stream_chat(COUNT)]
    texts = [d.text for d in deltas if d.text]
    assert len(texts) > 5 and "1" in "".join(texts)
    assert deltas[-1].finish_reason in ("stop", "length") and not deltas[-1].text
    assert server.model == "SmolLM2-135M-Instruct.Q4_1.gguf" and server.device == "cpu"


async def test_stop_sequences_are_honoured(server: LlamaCppServerBackend) -> None:
    free = await collect_reply(server.stream_chat(COUNT))
    assert "5" in free.text  # the same prompt without a stop sequence does reach 5
    stopped = await collect_reply(server.stream_chat(replace(COUNT, stop=("5",))))
    assert "5" not in stopped.text and "4" in stopped.text and stopped.finish_reason == "stop"


async def test_max_tokens_is_honoured(server: LlamaCppServerBackend) -> None:
    deltas = [d async for d in server.stream_chat(replace(STORY, max_tokens=5))]
    assert 1 <= len([d for d in deltas if d.text]) <= 5
    assert deltas[-1].finish_reason == "length"


async def test_cancel_mid_stream_then_next_request_is_prompt(server: LlamaCppServerBackend) -> None:
    process = server.process
    assert process is not None
    mark = process.output_mark()
    stream = server.stream_chat(STORY)
    for _ in range(5):
        await anext(stream)
    await stream.aclose()
    # llama_cpp.server logs the disconnect when it abandons the generation.
    assert await wait_until(lambda: any("Disconnected from client" in line for line in process.output_since(mark)), 5)
    started = time.monotonic()
    first = None
    async for delta in server.stream_chat(COUNT):
        if first is None and delta.text:
            first = time.monotonic() - started
    # Had the server kept generating the 400-token story (2.5 s or more), this would wait for it.
    assert first is not None and first < 5.0, first


def server_key(pid: int) -> str:
    """The API key a running server was given (its environment: readable by its own user only)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(item.split(b"=", 1)[1].decode() for item in environ if item.startswith(f"{API_KEY_VARIABLE}=".encode()))


async def test_the_server_refuses_every_request_without_its_key(server: LlamaCppServerBackend) -> None:
    process = server.process
    assert process is not None and process.pid is not None
    key = server_key(process.pid)
    assert len(key) >= 40
    assert key.encode() not in Path(f"/proc/{process.pid}/cmdline").read_bytes()  # argv is world-readable
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer not-the-key"}):
            async with http.post(process.base_url + "/v1/chat/completions", json=chat, headers=headers) as response:
                assert response.status == 401, await response.text()
            async with http.get(process.base_url + "/v1/models", headers=headers) as response:
                assert response.status == 401
        async with http.get(process.base_url + "/v1/models", headers={"Authorization": f"Bearer {key}"}) as response:
            assert response.status == 200
    reply = await collect_reply(server.stream_chat(COUNT))  # the backend's own client sends the key
    assert reply.text


async def test_idle_crash_is_restarted_by_the_supervisor(server: LlamaCppServerBackend, models_dir: Path) -> None:
    backend = LlamaCppServerBackend(replace(LLAMA, restart_backoff_initial_s=0.1), models_dir)
    await backend.load()
    try:
        process = backend.process
        assert process is not None and process.pid is not None and server.process is not None
        old = process.pid
        key = server_key(old)
        assert server.process.pid is not None and key != server_key(server.process.pid)  # a new key for each load
        os.kill(old, signal.SIGKILL)
        assert await wait_until(lambda: process.restarts == 1 and process.ready, 15)
        assert process.pid not in (None, old) and not alive(old)
        assert process.pid is not None and server_key(process.pid) == key  # the client's key opens the restarted one
        reply = await collect_reply(backend.stream_chat(COUNT))
        assert reply.text and reply.finish_reason
    finally:
        await backend.close()


async def test_close_leaves_no_process(models_dir: Path) -> None:
    backend = LlamaCppServerBackend(LLAMA, models_dir)
    await backend.load()
    process = backend.process
    assert process is not None and process.pid is not None
    pid = process.pid
    assert alive(pid)
    await backend.close()
    assert not alive(pid)
    await backend.close()  # twice is fine
    with pytest.raises(BackendError, match="not loaded"):
        await anext(backend.stream_chat(COUNT))


async def test_a_killed_daemon_leaves_no_server_behind(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from engines.llm.llama_cpp_backend import API_KEY_VARIABLE, LlamaCppServerBackend
        from engines.llm.settings import LlamaCppSettings

        async def main():
            backend = LlamaCppServerBackend(LlamaCppSettings(n_threads=1), Path(sys.argv[1]))
            await backend.load()
            print(backend.process.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 30)
        child = int(line)
        assert alive(child)
        parent.kill()  # SIGKILL: no cleanup code runs in the parent
        await asyncio.to_thread(parent.wait, 10)
        assert await wait_until(lambda: not alive(child), 10), f"server {child} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


async def test_unusable_model_or_startup_failure_is_reported(models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await LlamaCppServerBackend(LlamaCppSettings(model="missing.gguf"), models_dir).load()
    with pytest.raises(BackendUnavailable, match="unknown packaged GGUF model 'nope'"):
        await LlamaCppServerBackend(LlamaCppSettings(model="packaged:nope"), models_dir).load()
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    backend = LlamaCppServerBackend(LlamaCppSettings(model=str(junk), max_restarts=0), models_dir)
    with pytest.raises(BackendError, match="exited with code") as caught:
        await backend.load()
    assert "junk.gguf" in str(caught.value) or "gguf" in str(caught.value).lower()
    assert backend.process is None
