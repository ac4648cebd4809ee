"""Turn a stream of ``ChatDelta`` back into one reply: text, whole tool calls, finish.

Tool-call fragments are accumulated by index: the first fragment of an index
names the call (id, name), later fragments append to its JSON arguments.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass

from engines.llm.interface import ChatDelta, ToolCall, ToolCallDelta, Usage


@dataclass(frozen=True)
class ChatReply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage | None


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class ToolCallAccumulator:
    """Tool-call fragments merged by index, in index order."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, fragment: ToolCallDelta) -> None:
        call = self._calls.setdefault(fragment.index, _PartialCall())
        if fragment.id:
            call.id = fragment.id
        if fragment.name:
            call.name = fragment.name
        call.arguments += fragment.arguments

    def calls(self) -> tuple[ToolCall, ...]:
        """The whole calls; a call the server never named gets a synthetic id."""
        return tuple(
            ToolCall(id=call.id or f"call_{index}", name=call.name, arguments=call.arguments or "{}")
            for index, call in sorted(self._calls.items())
        )

    def as_deltas(self) -> tuple[ToolCallDelta, ...]:
        """One complete fragment per call (what the chat engine delivers at the end)."""
        return tuple(
            ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
            for index, call in sorted(self._calls.items())
        )


class ReplyAssembler:
    """Feed deltas with ``add``; read ``text``, ``tool_calls`` and ``finish_reason``."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._tools = ToolCallAccumulator()
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def add(self, delta: ChatDelta) -> None:
        if delta.text:
            self._text.append(delta.text)
        for fragment in delta.tool_calls:
            self._tools.add(fragment)
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self._tools.calls()

    def reply(self) -> ChatReply:
        return ChatReply(self.text, self.tool_calls, self.finish_reason, self.usage)


async def collect_reply(stream: AsyncIterable[ChatDelta]) -> ChatReply:
    """Read a whole stream into a ``ChatReply``."""
    assembler = ReplyAssembler()
    async for delta in stream:
        assembler.add(delta)
    return assembler.reply()
