"""OpenAI chat-completions wire format: request bodies and streamed chunks.

Shared by the HTTP client (OpenAI, DeepSeek, OpenRouter, Gemini, vLLM and
llama.cpp servers) and the in-process llama.cpp backend, whose
``create_chat_completion(stream=True)`` yields the same chunk dicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engines.llm.http_errors import LlmHttpError, LlmProtocolError, error_message
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, ToolCallDelta, ToolSpec, Usage


def openai_message(message: ChatMessage) -> dict[str, Any]:
    body: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        body["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
        if not message.content:
            body["content"] = None
    if message.tool_call_id is not None:
        body["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        body["name"] = message.name
    return body


def openai_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters_json()},
    }


def chat_completion_body(
    request: ChatRequest,
    *,
    model: str | None,
    include_usage: bool = False,
    default_max_tokens: int | None = None,
) -> dict[str, Any]:
    """The JSON body of a streaming ``/chat/completions`` request."""
    body: dict[str, Any] = {
        "messages": [openai_message(m) for m in request.messages],
        "stream": True,
        "temperature": request.temperature,
    }
    if model:
        body["model"] = model
    max_tokens = request.max_tokens if request.max_tokens is not None else default_max_tokens
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = [openai_tool(t) for t in request.tools]
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


class OpenAiChunkParser:
    """Turns ``chat.completion.chunk`` dicts into ``ChatDelta`` (finish and usage kept aside).

    ``parse`` returns the text and tool-call fragments of a chunk (None when
    it has none); the finish reason and usage are collected in attributes so
    the caller can deliver them as one last delta.
    """

    def __init__(self, source: str) -> None:
        self._source = source
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._ids: dict[str, int] = {}
        self._next_index = 0
        self._last_index = 0

    def parse(self, chunk: Any) -> ChatDelta | None:
        if not isinstance(chunk, Mapping):
            raise LlmProtocolError(f"{self._source}: a stream chunk is not a JSON object: {str(chunk)[:120]!r}")
        if chunk.get("error") is not None:
            raise LlmHttpError(f"{self._source}: error mid-stream: {error_message(_json_text(chunk))}")
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise LlmProtocolError(f"{self._source}: 'choices' is not a list")
        for choice in choices:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
            delta = choice.get("delta") or choice.get("message") or {}
            if not isinstance(delta, Mapping):
                raise LlmProtocolError(f"{self._source}: 'delta' is not an object")
            text = delta.get("content") or ""
            if not isinstance(text, str):
                raise LlmProtocolError(f"{self._source}: 'content' is not a string")
            fragments = tuple(self._tool_fragment(item) for item in delta.get("tool_calls") or ())
            if text or fragments:
                return ChatDelta(text=text, tool_calls=fragments)
        return None

    def _tool_fragment(self, item: Any) -> ToolCallDelta:
        if not isinstance(item, Mapping):
            raise LlmProtocolError(f"{self._source}: a tool call fragment is not an object")
        function = item.get("function") or {}
        call_id = item.get("id") or None
        index = item.get("index")
        if not isinstance(index, int):
            # Some servers (Gemini's compatibility layer) send whole calls without an index.
            if call_id and call_id in self._ids:
                index = self._ids[call_id]
            elif call_id or function.get("name"):
                index = self._next_index
            else:
                index = self._last_index
        if call_id:
            self._ids.setdefault(call_id, index)
        self._next_index = max(self._next_index, index + 1)
        self._last_index = index
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # a few servers send the object itself
            arguments = _json_text(arguments)
        return ToolCallDelta(index=index, id=call_id, name=function.get("name") or None, arguments=arguments)

    def final_delta(self) -> ChatDelta:
        return ChatDelta(finish_reason=self.finish_reason, usage=self.usage)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
