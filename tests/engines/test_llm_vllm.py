"""The vLLM backend and its process manager.

Everything but the GPU runs here: the manager starts a real child through
the same command-building path, with the executable pointed at
``llm_fake_vllm.py`` (vLLM's HTTP surface); a real-vLLM test runs where
vLLM and CUDA exist.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engines.backend import BackendError, BackendUnavailable
from engines.llm.backend_factory import build_llm_backend
from engines.llm.http_errors import LlmRequestError
from engines.llm.interface import ChatMessage, ChatRequest
from engines.llm.reply_assembly import collect_reply
from engines.llm.settings import VllmSettings
from engines.llm.vllm_backend import VllmBackend
from engines.llm.vllm_process import API_KEY_VARIABLE, vllm_command
from tests.engines.llm_helpers import alive, wait_until

FAKE = Path(__file__).with_name("llm_fake_vllm.py")


def ask(text: str, persona: str | None = None, **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage("system", "Be kind."), ChatMessage("user", text)), persona=persona, **kwargs)


@pytest.fixture
def fake_vllm(tmp_path: Path) -> Path:
    """An executable that runs the stand-in with this interpreter (as vLLM's own venv would)."""
    wrapper = tmp_path / "bin" / "vllm"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


@pytest.fixture
def adapters(tmp_path: Path) -> Path:
    for name in ("anna", "boris", "clara"):
        (tmp_path / "loras" / name).mkdir(parents=True)
    return tmp_path / "loras"


def settings_for(executable: Path, adapters: Path, **overrides: Any) -> VllmSettings:
    base: dict[str, Any] = {
        "executable": str(executable),
        "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
        "served_model_name": "secretary",
        "lora_adapters": {"anna": str(adapters / "anna")},
        "max_loras": 2,
        "max_lora_rank": 32,
        "gpu_memory_utilization": 0.45,
        "max_model_len": 2048,
        "extra_args": ("--enforce-eager",),
        "startup_timeout_s": 30.0,
        "restart_backoff_initial_s": 0.1,
        "stop_timeout_s": 3.0,
    }
    return VllmSettings(**{**base, **overrides})


@pytest.fixture
async def vllm(fake_vllm: Path, adapters: Path, models_dir: Path) -> AsyncIterator[VllmBackend]:
    backend = build_llm_backend("vllm", settings_for(fake_vllm, adapters), models_dir)
    assert isinstance(backend, VllmBackend)
    await backend.load()
    await backend.warm_up()
    yield backend
    await backend.close()


async def fake_state(backend: VllmBackend) -> dict[str, Any]:
    assert backend.process is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(backend.process.server.base_url + "/fake/state") as response:
            return await response.json()  # type: ignore[no-any-return]


def test_command_line_from_settings(tmp_path: Path) -> None:
    (tmp_path / "loras" / "anna").mkdir(parents=True)
    settings = VllmSettings(
        executable="/opt/vllm/bin/vllm", model="Qwen/Qwen2.5-7B-Instruct-AWQ", served_model_name="secretary",
        lora_adapters={"anna": "loras/anna", "boris": "/abs/boris"}, max_loras=3, max_lora_rank=16,
        gpu_memory_utilization=0.5, max_model_len=4096, extra_args=("--quantization", "awq"),
        env={"CUDA_VISIBLE_DEVICES": "0"},
    )
    command = vllm_command(settings, tmp_path, 8123)
    assert command.argv == (
        "/opt/vllm/bin/vllm", "serve", "Qwen/Qwen2.5-7B-Instruct-AWQ",
        "--host", "127.0.0.1", "--port", "8123",
        "--served-model-name", "secretary",
        "--gpu-memory-utilization", "0.5",
        "--max-model-len", "4096",
        "--enable-prefix-caching",
        "--enable-lora", "--max-loras", "3", "--max-lora-rank", "16",
        "--lora-modules", f"anna={tmp_path / 'loras' / 'anna'}", "boris=/abs/boris",
        "--quantization", "awq",
    )
    assert command.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True" and command.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert API_KEY_VARIABLE not in command.env  # `secretary vllm serve` (its own unit) runs without a key
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        VllmSettings(gpu_memory_utilization=0.99)


def test_the_api_key_goes_in_the_environment_never_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(API_KEY_VARIABLE, "inherited-from-the-daemon")
    settings = VllmSettings(executable="vllm", enable_lora=False)
    keyed = vllm_command(settings, tmp_path, 8123, api_key="per-start-key")
    assert keyed.env[API_KEY_VARIABLE] == "per-start-key"
    assert not any("per-start-key" in arg or arg == "--api-key" for arg in keyed.argv)
    assert API_KEY_VARIABLE not in vllm_command(settings, tmp_path, 8123).env  # the daemon's own never leaks in


async def test_the_server_refuses_requests_without_its_key(vllm: VllmBackend, adapters: Path) -> None:
    state = await fake_state(vllm)
    assert state["api_key_set"] is True
    environ = Path(f"/proc/{state['pid']}/environ").read_bytes().split(b"\0")
    key = next(i.split(b"=", 1)[1].decode() for i in environ if i.startswith(API_KEY_VARIABLE.encode() + b"="))
    assert len(key) >= 40 and key.encode() not in Path(f"/proc/{state['pid']}/cmdline").read_bytes()
    assert vllm.process is not None
    base = vllm.process.server.base_url
    chat = {"model": "secretary", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer not-the-key"}):
            async with http.get(base + "/v1/models", headers=headers) as response:
                assert response.status == 401
            async with http.post(base + "/v1/chat/completions", json=chat, headers=headers) as response:
                assert response.status == 401
            lora = {"lora_name": "clara", "lora_path": str(adapters / "clara")}
            async with http.post(base + "/v1/load_lora_adapter", json=lora, headers=headers) as response:
                assert response.status == 401
        async with http.get(base + "/v1/models", headers={"Authorization": f"Bearer {key}"}) as response:
            assert response.status == 200
    # The backend's own client and adapter admin send it.
    assert (await collect_reply(vllm.stream_chat(ask("hello")))).text == "secretary: hello"
    await vllm.load_persona_adapter("clara", adapters / "clara")
    await vllm.unload_persona_adapter("clara")


async def test_starts_serves_and_selects_persona_adapters(vllm: VllmBackend, adapters: Path) -> None:
    state = await fake_state(vllm)
    assert state["runtime_lora"] is True and state["extra"] == ["--enforce-eager"]
    assert state["argv"][:2] == ["serve", "Qwen/Qwen2.5-7B-Instruct-AWQ"] and "--enable-lora" in state["argv"]
    assert state["adapters"] == {"anna": str(adapters / "anna")}
    assert vllm.device == "cuda" and vllm.model == "secretary"

    base = await collect_reply(vllm.stream_chat(ask("hello there")))
    assert base.text == "secretary: hello there" and base.finish_reason == "stop"
    assert base.usage is not None and base.usage.completion_tokens == 3
    anna = await collect_reply(vllm.stream_chat(ask("hello there", persona="anna")))
    assert anna.text == "anna: hello there"
    unknown = await collect_reply(vllm.stream_chat(ask("hi", persona="nobody")))
    assert unknown.text == "secretary: hi"
    limited = await collect_reply(vllm.stream_chat(ask("one two three four", max_tokens=2)))
    assert limited.text == "secretary: one" and limited.finish_reason == "length"
    stopped = await collect_reply(vllm.stream_chat(ask("one two three four", stop=(" three",))))
    assert stopped.text == "secretary: one two" and stopped.finish_reason == "stop"


async def test_runtime_adapters_load_unload_and_survive_a_crash(vllm: VllmBackend, adapters: Path) -> None:
    await vllm.load_persona_adapter("boris", adapters / "boris")
    assert (await collect_reply(vllm.stream_chat(ask("hi", persona="boris")))).text == "boris: hi"
    with pytest.raises(LlmRequestError, match="has already been loaded"):
        await vllm.load_persona_adapter("boris", adapters / "boris")
    with pytest.raises(LlmRequestError, match="Cannot load more than 2"):
        await vllm.load_persona_adapter("clara", adapters / "clara")

    process = vllm.process
    assert process is not None and process.server.pid is not None
    old = process.server.pid
    os.kill(old, signal.SIGKILL)
    assert await wait_until(lambda: process.server.restarts == 1 and process.server.ready, 20)
    assert process.server.pid not in (None, old) and not alive(old)
    state = await fake_state(vllm)
    assert set(state["adapters"]) == {"anna", "boris"}  # boris was loaded again after the restart
    assert (await collect_reply(vllm.stream_chat(ask("again", persona="boris")))).text == "boris: again"

    await vllm.unload_persona_adapter("boris")
    assert (await collect_reply(vllm.stream_chat(ask("hi", persona="boris")))).text == "secretary: hi"


async def test_request_during_restart_waits_for_the_server(fake_vllm: Path, adapters: Path, models_dir: Path) -> None:
    backend = VllmBackend(settings_for(fake_vllm, adapters, env={"FAKE_VLLM_STARTUP_S": "0.5"}), models_dir)
    await backend.load()
    try:
        assert backend.process is not None and backend.process.server.pid is not None
        os.kill(backend.process.server.pid, signal.SIGKILL)
        assert await wait_until(lambda: not backend.process.server.ready, 5)  # type: ignore[union-attr]
        reply = await collect_reply(backend.stream_chat(ask("patience")))
        assert reply.text == "secretary: patience" and backend.process.server.restarts == 1
    finally:
        await backend.close()


async def test_a_lost_adapter_does_not_keep_the_server_down(fake_vllm: Path, adapters: Path, models_dir: Path) -> None:
    backend = VllmBackend(settings_for(fake_vllm, adapters), models_dir)
    await backend.load()
    try:
        process = backend.process
        assert process is not None and process.server.pid is not None
        await backend.load_persona_adapter("clara", adapters / "clara")
        (adapters / "clara").rmdir()  # e.g. the persona was deleted on disk
        os.kill(process.server.pid, signal.SIGKILL)
        assert await wait_until(lambda: process.server.restarts == 1 and process.server.ready, 20)
        assert set(process.adapters) == {"anna"}
        assert (await collect_reply(backend.stream_chat(ask("hi", persona="clara")))).text == "secretary: hi"
    finally:
        await backend.close()


async def test_a_crash_loop_gives_up_with_the_reason(fake_vllm: Path, adapters: Path, models_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "gpu-broken"
    env = {"FAKE_VLLM_FAIL": "RuntimeError: CUDA error: an illegal memory access was encountered",
           "FAKE_VLLM_FAIL_IF_EXISTS": str(broken)}
    backend = VllmBackend(settings_for(fake_vllm, adapters, env=env, max_restarts=2), models_dir)
    await backend.load()
    try:
        process = backend.process
        assert process is not None and process.server.pid is not None
        broken.touch()
        os.kill(process.server.pid, signal.SIGKILL)
        assert await wait_until(lambda: not process.server.ready, 5)
        with pytest.raises(BackendError, match="gave up after 2 restarts") as caught:
            await collect_reply(backend.stream_chat(ask("hello")))
        assert "illegal memory access" in str(caught.value) and process.server.restarts == 2
    finally:
        await backend.close()


async def test_startup_failure_reports_the_servers_last_words(fake_vllm: Path, adapters: Path, models_dir: Path) -> None:
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    backend = VllmBackend(settings_for(fake_vllm, adapters, env={"FAKE_VLLM_FAIL": oom}), models_dir)
    with pytest.raises(BackendError, match="exited with code 1 while starting: .*CUDA out of memory"):
        await backend.load()
    assert backend.process is None


async def test_missing_executable_is_unavailable(adapters: Path, models_dir: Path) -> None:
    backend = VllmBackend(settings_for(Path("/nonexistent/vllm"), adapters), models_dir)
    with pytest.raises(BackendUnavailable, match="vllm executable '/nonexistent/vllm' not found"):
        await backend.load()


async def test_close_stops_the_server(fake_vllm: Path, adapters: Path, models_dir: Path) -> None:
    backend = VllmBackend(settings_for(fake_vllm, adapters), models_dir)
    await backend.load()
    assert backend.process is not None
    pid = backend.process.server.pid
    assert pid is not None and alive(pid)
    await backend.close()
    assert not alive(pid)
    await backend.close()


def _cuda_available() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    return subprocess.run([smi, "-L"], capture_output=True, timeout=10).returncode == 0


@pytest.mark.gpu
async def test_real_vllm_on_the_gpu(models_dir: Path, tmp_path: Path) -> None:
    executable = os.environ.get("SECRETARY_VLLM_EXECUTABLE") or shutil.which("vllm")
    if executable is None or not _cuda_available():
        pytest.skip("needs vLLM (SECRETARY_VLLM_EXECUTABLE or vllm on PATH) and a CUDA GPU")
    model = os.environ.get("SECRETARY_VLLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    settings = VllmSettings(
        executable=executable, model=model, served_model_name="secretary", gpu_memory_utilization=0.5,
        max_model_len=2048, max_loras=2, max_lora_rank=16, startup_timeout_s=900,
    )
    backend = VllmBackend(settings, models_dir)
    await backend.load()
    try:
        await backend.warm_up()
        reply = await collect_reply(backend.stream_chat(ask("Say hello in one short sentence.", max_tokens=24)))
        assert reply.text.strip() and reply.finish_reason in ("stop", "length")
        adapter = os.environ.get("SECRETARY_VLLM_LORA")
        if adapter:
            await backend.load_persona_adapter("persona", adapter)
            persona = await collect_reply(backend.stream_chat(ask("Hello", persona="persona", max_tokens=16)))
            assert persona.text.strip()
            await backend.unload_persona_adapter("persona")
    finally:
        await backend.close()
