"""Anthropic Messages API wire format: request bodies and streamed events.

Requests: system messages go into the top-level ``system``; assistant tool
calls become ``tool_use`` blocks and tool results ``tool_result`` blocks in a
user turn; consecutive turns of one role are merged (the API alternates
user and assistant); tools map to ``{name, description, input_schema}``.

Stream: ``message_start``, ``content_block_start`` / ``_delta`` / ``_stop``
(``text_delta``, ``input_json_delta``; thinking blocks are skipped),
``message_delta`` (stop reason, output usage), ``message_stop``, ``ping``
and ``error``. Tool-use blocks become ``ToolCallDelta`` numbered from 0 in
the order they start, like OpenAI's indices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engines.llm.http_errors import LlmAuthError, LlmHttpError, LlmProtocolError, LlmRequestError, error_message
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, ToolCallDelta, Usage

STOP_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def messages_body(request: ChatRequest, *, model: str, default_max_tokens: int) -> dict[str, Any]:
    """The JSON body of a streaming ``POST /v1/messages``."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise LlmRequestError("anthropic: the request has no user or assistant content")
    _strip_final_assistant_whitespace(turns)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else default_max_tokens,
        "messages": turns,
        "stream": True,
        "temperature": min(request.temperature, 1.0),  # Anthropic's range is 0..1
    }
    if system:
        body["system"] = system
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters_json()} for t in request.tools
        ]
    return body


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        try:
            arguments = call.parsed_arguments()
        except ValueError as exc:
            raise LlmRequestError(f"anthropic: {exc}") from None
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _strip_final_assistant_whitespace(turns: list[dict[str, Any]]) -> None:
    """The API rejects a final (prefill) assistant turn that ends in whitespace."""
    last = turns[-1]
    if last["role"] != "assistant":
        return
    block = last["content"][-1]
    if block.get("type") == "text":
        block["text"] = block["text"].rstrip()
        if not block["text"]:
            last["content"].pop()
            if not last["content"]:
                turns.pop()


class AnthropicEventParser:
    """Turns decoded stream events into ``ChatDelta``; ``done`` after ``message_stop``."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._tool_index: dict[int, int] = {}
        self.finish_reason: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.done = False

    def parse(self, event_type: str, data: str) -> ChatDelta | None:
        payload = self._decode(event_type, data)
        match payload.get("type") or event_type:
            case "error":
                raise _stream_error(self._source, payload, data)
            case "message_start":
                self._on_message_start(payload)
            case "content_block_start":
                return self._on_block_start(payload)
            case "content_block_delta":
                return self._on_block_delta(payload)
            case "message_delta":
                self._on_message_delta(payload)
            case "message_stop":
                self.done = True
        # ping, content_block_stop, thinking/signature deltas: nothing to deliver
        return None

    def _decode(self, event_type: str, data: str) -> Mapping[str, Any]:
        """The event's JSON object (an empty one for an empty data field)."""
        try:
            payload = json.loads(data) if data.strip() else {}
        except json.JSONDecodeError:
            raise LlmProtocolError(f"{self._source}: malformed JSON in {event_type!r} event: {data[:120]!r}") from None
        if not isinstance(payload, Mapping):
            raise LlmProtocolError(f"{self._source}: {event_type!r} event is not a JSON object")
        return payload

    def _on_message_start(self, payload: Mapping[str, Any]) -> None:
        usage = (payload.get("message") or {}).get("usage") or {}
        self.input_tokens = int(usage.get("input_tokens") or 0)
        self.output_tokens = int(usage.get("output_tokens") or 0)

    def _on_block_start(self, payload: Mapping[str, Any]) -> ChatDelta | None:
        """A tool_use block announces its call (id, name); a text block may open with text."""
        block = payload.get("content_block") or {}
        index = _int(payload.get("index"), self._source)
        if block.get("type") == "tool_use":
            tool = self._tool_index.setdefault(index, len(self._tool_index))
            return ChatDelta(tool_calls=(ToolCallDelta(tool, id=block.get("id"), name=block.get("name")),))
        if block.get("type") == "text" and block.get("text"):
            return ChatDelta(text=str(block["text"]))
        return None

    def _on_block_delta(self, payload: Mapping[str, Any]) -> ChatDelta | None:
        delta = payload.get("delta") or {}
        index = _int(payload.get("index"), self._source)
        if delta.get("type") == "text_delta":
            return _text_delta(delta)
        if delta.get("type") == "input_json_delta":
            return self._arguments_delta(index, delta)
        return None

    def _arguments_delta(self, index: int, delta: Mapping[str, Any]) -> ChatDelta | None:
        """A fragment of a tool call's JSON arguments."""
        if index not in self._tool_index:
            raise LlmProtocolError(f"{self._source}: input_json_delta for block {index}, which is not tool_use")
        fragment = delta.get("partial_json") or ""
        if not fragment:
            return None
        return ChatDelta(tool_calls=(ToolCallDelta(self._tool_index[index], arguments=fragment),))

    def _on_message_delta(self, payload: Mapping[str, Any]) -> None:
        """The stop reason, and the usage so far (output tokens always, input tokens when given)."""
        reason = (payload.get("delta") or {}).get("stop_reason")
        if reason:
            self.finish_reason = STOP_REASONS.get(str(reason), str(reason))
        usage = payload.get("usage") or {}
        if usage.get("output_tokens") is not None:
            self.output_tokens = int(usage["output_tokens"])
        if usage.get("input_tokens"):
            self.input_tokens = int(usage["input_tokens"])

    def final_delta(self) -> ChatDelta:
        reason = self.finish_reason or ("stop" if self.done else None)
        return ChatDelta(finish_reason=reason, usage=Usage(self.input_tokens, self.output_tokens))


def _int(value: Any, source: str) -> int:
    if not isinstance(value, int):
        raise LlmProtocolError(f"{source}: content block event without an integer index")
    return value


def _text_delta(delta: Mapping[str, Any]) -> ChatDelta | None:
    text = delta.get("text") or ""
    return ChatDelta(text=text) if text else None


def _stream_error(source: str, payload: Mapping[str, Any], data: str) -> Exception:
    error = payload.get("error") or {}
    kind = error.get("type") if isinstance(error, Mapping) else None
    message = f"{source}: error mid-stream: {error_message(data)}"
    if kind == "invalid_request_error":
        return LlmRequestError(message)
    if kind in ("authentication_error", "permission_error"):
        return LlmAuthError(message)
    return LlmHttpError(message)
