"""Cloud backends (OpenAI protocol presets, Anthropic Messages) against local stand-ins of their APIs.

The stand-ins speak each API's exact SSE wire format; these tests cover what
the real llama.cpp server cannot produce: tool calls, error statuses, keys,
malformed or stalled streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from engines.backend import BackendUnavailable
from engines.engine_status import EngineState
from engines.fallback_chain import BackendSlot, ChainExhausted, RequestError
from engines.llm.anthropic_messages_backend import AnthropicMessagesBackend
from engines.llm.backend_factory import build_llm_backend, llm_slot
from engines.llm.http_errors import LlmAuthError, LlmHttpError, LlmProtocolError, LlmRequestError, LlmTimeout
from engines.llm.interface import ChatMessage, ChatRequest, LlmBackend, ToolCall, ToolSpec
from engines.llm.llm_engine import LlmEngine
from engines.llm.openai_compatible_backend import OpenAiCompatibleBackend
from engines.llm.provider_presets import PRESETS
from engines.llm.reply_assembly import ChatReply, collect_reply
from engines.llm.settings import AnthropicSettings, OpenAiCompatibleSettings
from tests.engines.llm_standins import (
    StandIn,
    anthropic_error,
    anthropic_event,
    anthropic_message_start,
    anthropic_text_stream,
    open_sse,
    openai_chunk,
    openai_error,
    openai_text_stream,
    sse_reply,
)

KEY_ENV = "SECRETARY_TEST_LLM_KEY"
KEY = "sk-test-secret-0123456789"
HELLO = ChatRequest(messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hello")), max_tokens=16)
WEATHER = ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    server = StandIn()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def openai_backend(server: StandIn, **overrides: object) -> OpenAiCompatibleBackend:
    options: dict[str, object] = {"idle_timeout_s": 2.0, "connect_timeout_s": 2.0, **overrides}
    settings = OpenAiCompatibleSettings(
        provider="custom", base_url=server.url + "/v1", model="standin-model", api_key_env=KEY_ENV,
        **options,  # type: ignore[arg-type]
    )
    return OpenAiCompatibleBackend(settings)


def anthropic_backend(server: StandIn) -> AnthropicMessagesBackend:
    return AnthropicMessagesBackend(
        AnthropicSettings(model="claude-standin", base_url=server.url, api_key_env=KEY_ENV, idle_timeout_s=2.0)
    )


async def reply_of(backend: LlmBackend, request: ChatRequest = HELLO) -> ChatReply:
    await backend.load()
    try:
        return await collect_reply(backend.stream_chat(request))
    finally:
        await backend.close()


# -- OpenAI protocol --------------------------------------------------------------


async def test_openai_text_usage_headers_and_keepalives(standin: StandIn, key: str) -> None:
    stream = openai_text_stream(["Hel", "lo", "!"], usage=True)
    standin.reply = sse_reply([b": keep-alive\n\n", *stream[:2], b": ping\r\n\r\n", *stream[2:]])
    reply = await reply_of(openai_backend(standin, include_usage=True))
    assert reply.text == "Hello!" and reply.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    seen = standin.requests[-1]
    assert seen.path == "/v1/chat/completions" and seen.headers["Authorization"] == f"Bearer {key}"
    assert seen.body["model"] == "standin-model" and seen.body["stream"] is True and seen.body["max_tokens"] == 16
    assert seen.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert seen.body["stream_options"] == {"include_usage": True}


async def test_openai_tool_call_deltas(standin: StandIn, key: str) -> None:
    standin.reply = sse_reply([
        openai_chunk({"role": "assistant", "content": None}),
        openai_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]}),
        openai_chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ])
    request = ChatRequest(messages=(ChatMessage("user", "Weather in Paris?"),), tools=(WEATHER,))
    reply = await reply_of(openai_backend(standin), request)
    assert reply.tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)
    assert reply.finish_reason == "tool_calls"
    assert standin.requests[-1].body["tools"][0]["function"]["name"] == "get_weather"


async def test_openai_401_names_the_key_variable_but_not_the_key(standin: StandIn, key: str) -> None:
    standin.reply = openai_error(401, "Incorrect API key provided: sk-te***", "invalid_request_error", "invalid_api_key")
    with pytest.raises(LlmAuthError) as caught:
        await reply_of(openai_backend(standin))
    message = str(caught.value)
    assert "API key was rejected" in message and f"${KEY_ENV}" in message and "HTTP 401" in message
    assert "Incorrect API key provided" in message and KEY not in message


async def test_openai_400_is_a_request_error(standin: StandIn, key: str) -> None:
    standin.reply = openai_error(400, "max_tokens is too large", "invalid_request_error")
    with pytest.raises(LlmRequestError, match="max_tokens is too large"):
        await reply_of(openai_backend(standin))


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        ([b"<html>502 Bad Gateway</html>\n"], LlmProtocolError, "malformed event-stream line"),
        ([b"data: {not json\n\n"], LlmProtocolError, "malformed JSON"),
        ([openai_chunk({"content": "Hi"})], LlmHttpError, "cut short"),
        ([openai_chunk({"content": "Hi"}), b'data: {"error": {"message": "upstream died", "code": 502}}\n\n'], LlmHttpError, "upstream died"),
    ],
)
async def test_openai_broken_streams_fail_clearly(
    standin: StandIn, key: str, payload: list[bytes], error: type[Exception], match: str
) -> None:
    standin.reply = sse_reply(payload)
    started = time.monotonic()
    with pytest.raises(error, match=match):
        await reply_of(openai_backend(standin))
    assert time.monotonic() - started < 1.5  # an error, not a wait for the idle timeout


async def test_openai_stalled_stream_times_out_despite_keepalives(standin: StandIn, key: str) -> None:
    async def stall(request: web.Request, body: dict[str, object]) -> web.StreamResponse:
        response = await open_sse(request)
        await response.write(openai_chunk({"content": "Hi"}))
        for _ in range(40):  # comments keep the socket busy but are not events
            await response.write(b": ping\n\n")
            await asyncio.sleep(0.05)
        return response

    standin.reply = stall
    backend = openai_backend(standin, idle_timeout_s=0.6)
    started = time.monotonic()
    with pytest.raises(LlmTimeout, match="no event for 0.6 s"):
        await reply_of(backend)
    assert 0.5 < time.monotonic() - started < 1.8


async def test_openai_cancel_closes_the_response(standin: StandIn, key: str) -> None:
    standin.reply = sse_reply([openai_chunk({"content": f"w{i} "}) for i in range(200)], delay_s=0.02)
    backend = openai_backend(standin)
    await backend.load()
    try:
        stream = backend.stream_chat(HELLO)
        got = [await anext(stream) for _ in range(3)]
        assert [d.text for d in got] == ["w0 ", "w1 ", "w2 "]
        await stream.aclose()
        for _ in range(50):
            if standin.disconnects:
                break
            await asyncio.sleep(0.02)
        assert standin.disconnects == 1
    finally:
        await backend.close()


async def test_openai_non_streaming_answer_is_accepted(standin: StandIn, key: str) -> None:
    async def whole(request: web.Request, body: dict[str, object]) -> web.StreamResponse:
        return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": "All at once"}, "finish_reason": "stop"}]})

    standin.reply = whole
    reply = await reply_of(openai_backend(standin))
    assert reply.text == "All at once" and reply.finish_reason == "stop"


async def test_custom_provider_without_model_serves_the_first_listed(standin: StandIn) -> None:
    standin.reply = sse_reply(openai_text_stream(["ok"]))
    backend = OpenAiCompatibleBackend(OpenAiCompatibleSettings(provider="custom", base_url=standin.url + "/v1"))
    reply = await reply_of(backend)
    assert backend.model == "standin-model" and reply.text == "ok"
    assert "Authorization" not in standin.requests[-1].headers


async def test_presets_and_missing_key(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> None:
    assert PRESETS["openai"].base_url == "https://api.openai.com/v1"
    assert PRESETS["deepseek"].base_url == "https://api.deepseek.com/v1"
    assert PRESETS["openrouter"].base_url == "https://openrouter.ai/api/v1"
    assert PRESETS["gemini"].base_url == "https://generativelanguage.googleapis.com/v1beta/openai"
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    backend = build_llm_backend("openai_compatible", OpenAiCompatibleSettings(provider="deepseek"), models_dir)
    assert isinstance(backend, OpenAiCompatibleBackend) and backend.model == "deepseek-chat"
    with pytest.raises(BackendUnavailable, match=r"\$DEEPSEEK_API_KEY is not set"):
        await backend.load()
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(BackendUnavailable, match=r"\$ANTHROPIC_API_KEY is not set"):
        await build_llm_backend("anthropic", AnthropicSettings(), models_dir).load()
    with pytest.raises(ValueError, match="base_url is required"):
        OpenAiCompatibleSettings(provider="custom")
    with pytest.raises(TypeError, match="needs AnthropicSettings"):
        build_llm_backend("anthropic", OpenAiCompatibleSettings(provider="openai"), models_dir)


# -- failover through the chat engine ---------------------------------------------


async def two_standin_engine(first: StandIn, second: StandIn) -> LlmEngine:
    slots: list[BackendSlot[LlmBackend]] = [
        BackendSlot("cloud-a", lambda: openai_backend(first)),
        BackendSlot("cloud-b", lambda: anthropic_backend(second)),
    ]
    engine = LlmEngine(slots, first_token_timeout_s=2.0, retry_initial_s=60)
    await engine.start()
    return engine


@pytest.mark.parametrize("status", [401, 429, 500, 503, 529])
async def test_auth_rate_limit_and_server_errors_fail_over(standin: StandIn, key: str, status: int) -> None:
    """Every error moves the request on; only a broken backend (401, 500) is taken out of service.

    Rate limits and overload (429, 503, 529) leave the backend serving, so a
    GPU server is never torn down for a busy moment.
    """
    second = StandIn()
    await second.start()
    try:
        standin.reply = openai_error(status, "nope", "server_error")
        second.reply = sse_reply(anthropic_text_stream(["From ", "Claude."]))
        engine = await two_standin_engine(standin, second)
        reply = await engine.complete(HELLO)
        assert reply.text == "From Claude." and reply.finish_reason == "stop"
        if status in (429, 503, 529):
            assert engine.status.state is EngineState.READY and engine.status.failures == ()
        else:
            assert engine.status.state is EngineState.DEGRADED and f"HTTP {status}" in engine.status.failures[0]
        await engine.close()
    finally:
        await second.stop()


async def test_request_errors_do_not_fail_over(standin: StandIn, key: str) -> None:
    second = StandIn()
    await second.start()
    try:
        standin.reply = openai_error(400, "messages: too long", "invalid_request_error")
        second.reply = sse_reply(anthropic_text_stream(["unused"]))
        engine = await two_standin_engine(standin, second)
        with pytest.raises(RequestError, match="too long"):
            await engine.complete(HELLO)
        assert not [r for r in second.requests if r.path == "/v1/messages"]
        assert engine.status.state is EngineState.READY
        await engine.close()
    finally:
        await second.stop()


async def test_every_backend_failing_is_chain_exhausted(standin: StandIn, key: str) -> None:
    standin.reply = openai_error(503, "down", "server_error")
    engine = LlmEngine([llm_slot("only", "openai_compatible", OpenAiCompatibleSettings(
        provider="custom", base_url=standin.url + "/v1", model="m"), Path("/nonexistent"))], retry_initial_s=60)
    await engine.start()
    with pytest.raises(ChainExhausted, match="HTTP 503"):
        await engine.complete(HELLO)
    await engine.close()


# -- Anthropic Messages ---------------------------------------------------------


async def test_anthropic_text_request_shape(standin: StandIn, key: str) -> None:
    standin.reply = sse_reply(anthropic_text_stream(["Good ", "morning."]))
    reply = await reply_of(anthropic_backend(standin))
    assert reply.text == "Good morning." and reply.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 25 and reply.usage.completion_tokens == 2
    seen = standin.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == key and seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body["system"] == "Be brief." and seen.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert seen.body["model"] == "claude-standin" and seen.body["max_tokens"] == 16 and seen.body["stream"] is True


async def test_anthropic_tool_use(standin: StandIn, key: str) -> None:
    standin.reply = sse_reply([
        anthropic_message_start(),
        anthropic_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        anthropic_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
        anthropic_event("content_block_stop", {"index": 0}),
        anthropic_event("content_block_start", {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
        anthropic_event("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        anthropic_event("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        anthropic_event("ping", {}),
        anthropic_event("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}}),
        anthropic_event("content_block_stop", {"index": 1}),
        anthropic_event("message_delta", {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 30}}),
        anthropic_event("message_stop", {}),
    ])
    request = ChatRequest(messages=(ChatMessage("user", "Weather in Paris?"),), tools=(WEATHER,))
    reply = await reply_of(anthropic_backend(standin), request)
    assert reply.text == "Let me check." and reply.finish_reason == "tool_calls"
    assert reply.tool_calls == (ToolCall("toolu_01", "get_weather", '{"city": "Paris"}'),)
    assert standin.requests[-1].body["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}


async def test_anthropic_errors(standin: StandIn, key: str) -> None:
    standin.reply = anthropic_error(401, "authentication_error", "invalid x-api-key")
    with pytest.raises(LlmAuthError, match=rf"\${KEY_ENV}.*invalid x-api-key"):
        await reply_of(anthropic_backend(standin))
    standin.reply = anthropic_error(529, "overloaded_error", "Overloaded")
    with pytest.raises(LlmHttpError, match=r"HTTP 529\): Overloaded"):
        await reply_of(anthropic_backend(standin))
    standin.reply = sse_reply([
        anthropic_message_start(),
        anthropic_event("error", {"error": {"type": "overloaded_error", "message": "Overloaded mid-stream"}}),
    ])
    with pytest.raises(LlmHttpError, match="Overloaded mid-stream"):
        await reply_of(anthropic_backend(standin))
    standin.reply = sse_reply(anthropic_text_stream(["cut"])[:4])
    with pytest.raises(LlmHttpError, match="before message_stop"):
        await reply_of(anthropic_backend(standin))
    standin.reply = sse_reply([b"event: message_start\ndata: {oops\n\n"])
    with pytest.raises(LlmProtocolError, match="malformed JSON"):
        await reply_of(anthropic_backend(standin))
