"""Pure parts of the LLM engine: request validation, wire mapping, reply assembly, continuation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.backend import BackendError
from engines.fallback_chain import RequestError
from engines.llm.anthropic_messages_backend import AnthropicMessagesBackend
from engines.llm.anthropic_wire import AnthropicEventParser, messages_body
from engines.llm.backend_factory import build_llm_backend, llm_slot
from engines.llm.http_errors import LlmAuthError, LlmHttpError, LlmRequestError, error_for_status
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, ToolCall, ToolCallDelta, ToolSpec, Usage
from engines.llm.llama_cpp_backend import LlamaCppInProcessBackend, LlamaCppServerBackend
from engines.llm.openai_compatible_backend import OpenAiCompatibleBackend
from engines.llm.openai_wire import OpenAiChunkParser, chat_completion_body
from engines.llm.reply_assembly import ReplyAssembler
from engines.llm.reply_continuation import CONTINUE_INSTRUCTION, RepeatStripper, continuation_request
from engines.llm.settings import AnthropicSettings, LlamaCppSettings, OpenAiCompatibleSettings, VllmSettings
from engines.llm.vllm_backend import VllmBackend

WEATHER = ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="role"):
        ChatMessage("robot", "hi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tool_call_id"):
        ChatMessage("tool", "42")
    with pytest.raises(ValueError, match="at least one message"):
        ChatRequest(messages=())
    with pytest.raises(ValueError, match="max_tokens"):
        ChatRequest(messages=(ChatMessage("user", "x"),), max_tokens=0)
    with pytest.raises(ValueError, match="tool name"):
        ToolSpec("get weather")
    with pytest.raises(ValueError, match="not valid JSON"):
        ToolCall("c1", "f", "{oops").parsed_arguments()


def test_openai_body_maps_every_field() -> None:
    request = ChatRequest(
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Weather in Paris?"),
            ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "get_weather", '{"city":"Paris"}'),)),
            ChatMessage("tool", "sunny", tool_call_id="c1", name="get_weather"),
        ),
        tools=(WEATHER,),
        stop=("\n\n",),
        max_tokens=20,
        temperature=0.2,
        top_p=0.9,
    )
    body = chat_completion_body(request, model="m", include_usage=True)
    assert body["model"] == "m" and body["stream"] is True and body["max_tokens"] == 20 and body["top_p"] == 0.9
    assert body["stop"] == ["\n\n"] and body["stream_options"] == {"include_usage": True}
    assert body["messages"][2] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
    }
    assert body["messages"][3] == {"role": "tool", "content": "sunny", "tool_call_id": "c1", "name": "get_weather"}
    assert body["tools"][0]["function"]["parameters"]["properties"]["city"] == {"type": "string"}
    json.dumps(body)  # serialisable as is


def test_openai_parser_accumulates_tool_calls_by_index() -> None:
    parser = OpenAiChunkParser("t")
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
    ]
    assembler = ReplyAssembler()
    for chunk in chunks:
        delta = parser.parse(chunk)
        if delta is not None:
            assembler.add(delta)
    assembler.add(parser.final_delta())
    assert assembler.tool_calls == (
        ToolCall("c1", "get_weather", '{"city":"Paris"}'),
        ToolCall("c2", "get_weather", '{"city":"Oslo"}'),
    )
    assert assembler.tool_calls[0].parsed_arguments() == {"city": "Paris"}
    assert assembler.finish_reason == "tool_calls" and assembler.usage == Usage(9, 4) and assembler.text == ""


def test_openai_parser_whole_calls_without_index_and_errors() -> None:
    parser = OpenAiChunkParser("gemini")
    delta = parser.parse({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": {"x": 1}}},
    ]}}]})
    assert delta is not None and [(f.index, f.id, f.arguments) for f in delta.tool_calls] == [(0, "a", "{}"), (1, "b", '{"x": 1}')]
    with pytest.raises(LlmHttpError, match="error mid-stream: upstream overloaded"):
        parser.parse({"error": {"message": "upstream overloaded", "code": 502}})


def test_error_classification() -> None:
    auth = error_for_status(401, '{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}', "openai", key_env="OPENAI_API_KEY")
    assert isinstance(auth, LlmAuthError) and "$OPENAI_API_KEY" in str(auth) and "Incorrect API key" in str(auth)
    assert isinstance(error_for_status(429, "slow down", "x"), LlmHttpError)
    assert isinstance(error_for_status(503, "", "x"), BackendError)
    bad = error_for_status(400, '{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}', "x")
    assert isinstance(bad, LlmRequestError) and isinstance(bad, RequestError) and "max_tokens: too big" in str(bad)


def test_anthropic_body_mapping() -> None:
    request = ChatRequest(
        messages=(
            ChatMessage("system", "You are a secretary."),
            ChatMessage("user", "Weather in Paris?"),
            ChatMessage("assistant", "Let me check.", tool_calls=(ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),)),
            ChatMessage("tool", "sunny", tool_call_id="toolu_1"),
            ChatMessage("user", "Thanks"),
            ChatMessage("assistant", "You're welcome "),
        ),
        tools=(WEATHER,),
        stop=("Caller:",),
        temperature=1.5,
    )
    body = messages_body(request, model="claude-x", default_max_tokens=333)
    assert body["system"] == "You are a secretary." and body["max_tokens"] == 333 and body["temperature"] == 1.0
    assert body["stop_sequences"] == ["Caller:"] and body["stream"] is True
    assert body["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert body["messages"][1]["content"][1] == {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "text", "text": "Thanks"},
    ]
    assert body["messages"][3]["content"] == [{"type": "text", "text": "You're welcome"}]


def test_anthropic_parser_maps_blocks_and_stop_reason() -> None:
    parser = AnthropicEventParser("anthropic")
    events = [
        ("message_start", {"message": {"usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Checking"}}),
        ("content_block_stop", {"index": 0}),
        ("content_block_start", {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Ro'}}),
        ("ping", {}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": 'me"}'}}),
        ("content_block_stop", {"index": 1}),
        ("message_delta", {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 40}}),
        ("message_stop", {}),
    ]
    assembler = ReplyAssembler()
    for kind, payload in events:
        delta = parser.parse(kind, json.dumps({"type": kind, **payload}))
        if delta is not None:
            assembler.add(delta)
    assembler.add(parser.final_delta())
    assert parser.done and assembler.text == "Checking"
    assert assembler.tool_calls == (ToolCall("toolu_9", "get_weather", '{"city": "Rome"}'),)
    assert assembler.finish_reason == "tool_calls" and assembler.usage == Usage(30, 40)
    with pytest.raises(LlmHttpError, match="Overloaded"):
        parser.parse("error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    with pytest.raises(LlmRequestError):
        parser.parse("error", '{"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}')


def test_continuation_request_carries_the_partial_reply() -> None:
    request = ChatRequest(messages=(ChatMessage("user", "Tell me the hours"),), max_tokens=50)
    cont = continuation_request(request, "We open at nine", 4)
    assert [m.role for m in cont.messages] == ["user", "assistant", "user"]
    assert cont.messages[1].content == "We open at nine" and cont.messages[2].content == CONTINUE_INSTRUCTION
    assert cont.max_tokens == 46
    assert continuation_request(request, "", 0) is request


def feed_all(stripper: RepeatStripper, pieces: list[str]) -> str:
    out = "".join(stripper.feed(p) for p in pieces)
    return out + stripper.finish()


@pytest.mark.parametrize(
    ("said", "pieces", "expected"),
    [
        ("We open at nine", [" and", " close", " at five."], " and close at five."),
        ("We open at nine", ["We", " open", " at", " nine", " and close at five."], " and close at five."),
        ("We open at nine and close", [" and", " close at five."], " at five."),  # repeats a tail >= 8 chars
        ("Hello", ["Hello", " there"], " there"),  # whole short reply repeated
        ("We open at nine and", [" the", " clinic", " too"], " the clinic too"),  # coincidental word kept
        ("We open at nine o'clock", [" at nine o'clock"], ""),  # nothing new: dropped
        ("We open at nine", [" at nine"], " at nine"),  # a tail under 8 chars is not taken for a repeat
        ("", ["Hi", " there"], "Hi there"),
    ],
)
def test_repeat_stripper(said: str, pieces: list[str], expected: str) -> None:
    assert feed_all(RepeatStripper(said), pieces) == expected


def test_chat_delta_emptiness() -> None:
    assert ChatDelta().empty and not ChatDelta(text="x").empty and not ChatDelta(finish_reason="stop").empty
    assert not ChatDelta(tool_calls=(ToolCallDelta(0),)).empty


def test_factory_builds_each_kind_without_io(tmp_path: Path) -> None:
    assert isinstance(build_llm_backend("llama_cpp", LlamaCppSettings(), tmp_path), LlamaCppServerBackend)
    assert isinstance(build_llm_backend("llama_cpp", LlamaCppSettings(mode="in_process"), tmp_path), LlamaCppInProcessBackend)
    assert isinstance(build_llm_backend("vllm", VllmSettings(), tmp_path), VllmBackend)
    assert isinstance(build_llm_backend("openai_compatible", OpenAiCompatibleSettings(provider="gemini"), tmp_path), OpenAiCompatibleBackend)
    assert isinstance(build_llm_backend("anthropic", AnthropicSettings(), tmp_path), AnthropicMessagesBackend)
    with pytest.raises(ValueError, match="unknown LLM backend kind 'gpt'"):
        build_llm_backend("gpt", LlamaCppSettings(), tmp_path)
    with pytest.raises(TypeError, match="needs VllmSettings"):
        llm_slot("gpu", "vllm", LlamaCppSettings(), tmp_path)
    with pytest.raises(ValueError, match="mode"):
        LlamaCppSettings(mode="gpu")  # type: ignore[arg-type]
    slot = llm_slot("local", "llama_cpp", LlamaCppSettings(), tmp_path)
    assert slot.label == "local" and slot.build() is not slot.build()  # a fresh backend for every (re)load
