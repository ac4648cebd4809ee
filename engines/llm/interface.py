"""What a chat request and a streamed reply are, and the backend interface.

A reply streams as ``ChatDelta`` items: text pieces, tool-call fragments (an
OpenAI-style ``ToolCallDelta`` keyed by the call's index: the first fragment
of a call carries its id and name, later ones append to its JSON arguments),
and a last item with the ``finish_reason`` (and token usage when the server
reported it). ``reply_assembly`` turns a stream back into text and whole
``ToolCall`` records.

Every backend speaks this, whatever its wire protocol; ``finish_reason`` uses
OpenAI's vocabulary: ``stop``, ``length``, ``tool_calls``, ``content_filter``.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from engines.backend import EngineBackend
from engines.llm.token_counter import estimate_tokens

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class ToolCall:
    """One whole tool call the model asked for; ``arguments`` is its JSON text."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; ValueError when the model produced invalid JSON."""
        text = self.arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"tool call {self.name!r}: arguments are not valid JSON ({exc.msg}): {text[:200]!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"tool call {self.name!r}: arguments are not a JSON object: {text[:200]!r}")
        return value


@dataclass(frozen=True)
class ChatMessage:
    """One message of the conversation (OpenAI's shape; Anthropic's is mapped from it)."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"message role must be one of {sorted(ROLES)}, not {self.role!r}")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON-schema object."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def __post_init__(self) -> None:
        if not _TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name must be 1-64 ASCII letters, digits, '_' or '-', not {self.name!r}")
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def parameters_json(self) -> dict[str, Any]:
        """The schema as a plain dict (for a JSON request body)."""
        return json.loads(json.dumps(dict(self.parameters)))


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to stream.

    ``max_tokens`` None lets the backend use its configured default.
    ``persona`` selects a persona adapter where the backend has one (vLLM LoRA);
    backends without adapters ignore it.
    """

    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    temperature: float = 0.6
    top_p: float | None = None
    persona: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "tools", tuple(self.tools))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not self.messages:
            raise ValueError("a chat request needs at least one message")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be within 0..2, not {self.temperature}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be within (0, 1], not {self.top_p}")
        if any(not s for s in self.stop):
            raise ValueError("stop sequences must not be empty strings")
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"tool names must be unique: {names}")


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of the tool call at ``index``: id and name come first, arguments append."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    """Token counts the server reported for the whole request."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class ChatDelta:
    """One streamed piece of a reply."""

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None

    @property
    def empty(self) -> bool:
        return not self.text and not self.tool_calls and self.finish_reason is None and self.usage is None


class LlmBackend(EngineBackend):
    """A way to stream chat completions."""

    name = "llm"
    # The backend keeps the prompt it last evaluated (llama.cpp's KV cache, vLLM's prefix cache), so a
    # request sharing its beginning skips that prefill: worth priming with a call's prompt in advance.
    # Hosted APIs bill every request: never primed.
    caches_prompt: bool = False

    @property
    def context_window(self) -> int | None:
        """Tokens the model's context holds, prompt and reply together; None: large or unknown (never fitted)."""
        return None

    @property
    def default_reply_tokens(self) -> int:
        """The reply's token budget when a request names none."""
        return 256

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary (here an estimate; a backend with its vocabulary counts)."""
        return estimate_tokens(text)

    @abstractmethod
    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Stream the reply to ``request``.

        Raises ``fallback_chain.RequestError`` for a request the backend
        rejects as invalid (no failover) and ``BackendError`` when the backend
        fails (the chain fails over). Closing the iterator stops generation
        and frees the connection or worker.
        """
