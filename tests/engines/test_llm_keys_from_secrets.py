"""Cloud LLM keys come through the daemon's secrets loader: a key saved from the web page is the one sent.

The stand-in is a real aiohttp server speaking the chat-completions (and
Messages) shape; it answers 401 unless the request carries the key the test
expects, as the real APIs do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from config.loader import LoadedConfig, load_config
from daemon.engine_host.engine_wiring import llm_settings, llm_slots
from daemon.engine_host.llm_keys import llm_keys_digest
from daemon.web.config_editor import ConfigEditor
from daemon.web.config_forms import apply_form
from engines.backend import BackendUnavailable
from engines.llm.interface import ChatMessage, ChatRequest, LlmBackend
from engines.llm.reply_assembly import collect_reply
from tests.engines.llm_standins import (
    StandIn,
    anthropic_text_stream,
    open_sse,
    openai_error,
    openai_text_stream,
)

HELLO = ChatRequest(messages=(ChatMessage("user", "Hello"),), max_tokens=8)
KEY_ENV = "SECRETARY_CLOUD_KEY"


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    server = StandIn()
    await server.start()
    yield server
    await server.stop()


def demand(server: StandIn, header: str, value: str, stream: list[bytes]) -> None:
    """The stand-in answers only a request whose ``header`` is ``value`` (else 401, as the cloud does)."""
    refuse = openai_error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")

    async def reply(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if request.headers.get(header) != value:
            return await refuse(request, body)
        response = await open_sse(request)
        for chunk in stream:
            await response.write(chunk)
        return response

    server.reply = reply


def write_config(tmp_path: Path, standin: StandIn, secrets: str = "", kind: str = "openai_compatible") -> Path:
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(secrets, encoding="utf-8")
    secrets_file.chmod(0o600)
    backend = (f"{{kind: openai_compatible, provider: custom, base_url: '{standin.url}/v1', model: standin, "
               f"api_key_env: {KEY_ENV}}}" if kind == "openai_compatible" else
               f"{{kind: anthropic, base_url: '{standin.url}', model: claude-standin, api_key_env: {KEY_ENV}}}")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"box_id: keys-box\ndata_dir: {tmp_path / 'data'}\nsecrets_file: {secrets_file}\n"
        f"engines:\n  llm:\n    chain: [cloud]\n    backends:\n      cloud: {backend}\n",
        encoding="utf-8",
    )
    return config


def cloud_backend(loaded: LoadedConfig, tmp_path: Path) -> LlmBackend:
    [slot] = llm_slots(loaded.settings.engines.llm, tmp_path / "models", loaded.secret)
    return slot.build()


async def reply_text(backend: LlmBackend) -> str:
    await backend.load()
    try:
        return (await collect_reply(backend.stream_chat(HELLO))).text
    finally:
        await backend.close()


async def test_a_key_saved_from_the_web_page_is_sent_after_the_reload(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, standin)
    demand(standin, "Authorization", "Bearer sk-typed-on-the-page", openai_text_stream(["Hi", "!"]))
    with pytest.raises(BackendUnavailable, match=f"{KEY_ENV} is not set .*secrets file"):
        await reply_text(cloud_backend(load_config(config, environ={}), tmp_path))

    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    form = {"secret:engines.llm.backends.cloud.api_key_env": "sk-typed-on-the-page"}
    secrets, issues = apply_form(data, "engines", form, loaded.settings)
    assert issues == [] and secrets == {KEY_ENV: "sk-typed-on-the-page"}
    editor.save(data, secrets)

    reloaded = load_config(config, environ={})  # what cmd/reload reads
    assert await reply_text(cloud_backend(reloaded, tmp_path)) == "Hi!"
    assert standin.requests[-1].headers["Authorization"] == "Bearer sk-typed-on-the-page"
    assert "sk-typed" not in repr(llm_settings(reloaded.settings.engines.llm.backends["cloud"], reloaded.secret))


async def test_the_process_environment_wins_over_the_secrets_file(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, standin, secrets=f"{KEY_ENV}=sk-from-the-file\n")
    demand(standin, "Authorization", "Bearer sk-from-the-environment", openai_text_stream(["ok"]))
    loaded = load_config(config, environ={KEY_ENV: "sk-from-the-environment"})
    assert await reply_text(cloud_backend(loaded, tmp_path)) == "ok"
    demand(standin, "Authorization", "Bearer sk-from-the-file", openai_text_stream(["file"]))
    assert await reply_text(cloud_backend(load_config(config, environ={}), tmp_path)) == "file"


async def test_anthropic_key_from_the_secrets_file(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, standin, secrets=f"{KEY_ENV}=sk-ant-file\n", kind="anthropic")
    demand(standin, "x-api-key", "sk-ant-file", anthropic_text_stream(["Hel", "lo"]))
    assert await reply_text(cloud_backend(load_config(config, environ={}), tmp_path)) == "Hello"
    assert standin.requests[-1].path == "/v1/messages"


def test_a_changed_key_restarts_the_llm_on_reload_without_keeping_it(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, standin, secrets=f"{KEY_ENV}=sk-one\n")
    first = load_config(config, environ={})
    same = load_config(config, environ={})
    other = load_config(config, environ={KEY_ENV: "sk-two"})
    digest = llm_keys_digest(first.settings.engines.llm, first.secret)
    assert digest == llm_keys_digest(same.settings.engines.llm, same.secret)
    assert digest != llm_keys_digest(other.settings.engines.llm, other.secret)
    assert "sk-one" not in digest
