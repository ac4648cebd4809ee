"""Make a chat request fit the model's context window by leaving out the oldest turns.

A local model has a small window (llama.cpp ``n_ctx`` 2048 by default) and a
long call or chat outgrows it: the server then refuses or drops the request.
``fit_context`` counts the prompt in the backend's vocabulary (the
messages' text, a chat template's role markers per message, the tools'
JSON) and, when prompt plus reply budget exceed the window, leaves out whole
turns from the oldest on. A turn starts at a user message and takes with it
the replies and tool results that followed, so a tool call never loses its
result. The leading system messages and the newest turn always stay.

``fill`` below 1 trims further than needed, down to that share of the room
the conversation has (the window less the reply, the system messages and the
tools): a conversation that keeps its trimmed history (``LlmDialogue``) then
grows for several turns on the same prefix, which a model that caches its
prompt evaluates only once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from engines.llm.interface import ChatMessage, ChatRequest, LlmBackend
from engines.llm.openai_wire import openai_tool

MESSAGE_OVERHEAD = 8  # role markers of a chat template (ChatML: "<|im_start|>user\n" ... "<|im_end|>\n")
PROMPT_OVERHEAD = 16  # the generation prompt and the beginning-of-sequence token


@dataclass(frozen=True)
class Fitted:
    request: ChatRequest
    prompt_tokens: int  # as counted, after the fitting (0 when the window is unknown)
    dropped_messages: int = 0
    budget: int | None = None  # the prompt's room: the window less the reply's tokens (None: unknown window)

    @property
    def trimmed(self) -> bool:
        return self.dropped_messages > 0

    @property
    def fits(self) -> bool:
        return self.budget is None or self.prompt_tokens <= self.budget


def message_tokens(message: ChatMessage, backend: LlmBackend) -> int:
    tokens = MESSAGE_OVERHEAD + backend.count_tokens(message.content)
    for call in message.tool_calls:
        tokens += MESSAGE_OVERHEAD + backend.count_tokens(call.name) + backend.count_tokens(call.arguments)
    return tokens


def fixed_tokens(request: ChatRequest, backend: LlmBackend) -> int:
    """What every form of the request carries: the overhead and the tools' descriptions."""
    tools = json.dumps([openai_tool(t) for t in request.tools], ensure_ascii=False) if request.tools else ""
    return PROMPT_OVERHEAD + backend.count_tokens(tools)


def fit_context(request: ChatRequest, backend: LlmBackend, *, fill: float = 1.0) -> Fitted:
    """``request`` as it fits ``backend``'s window (unchanged when it fits or the window is unknown)."""
    if not 0.0 < fill <= 1.0:
        raise ValueError(f"fill must be within (0, 1], not {fill}")
    window = backend.context_window
    if window is None:
        return Fitted(request, 0)
    messages = request.messages
    sizes = [message_tokens(m, backend) for m in messages]
    total = fixed_tokens(request, backend) + sum(sizes)
    budget = window - (request.max_tokens if request.max_tokens is not None else backend.default_reply_tokens)
    if total <= budget:
        return Fitted(request, total, budget=budget)
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    starts = [i for i in range(head + 1, len(messages)) if messages[i].role == "user"]  # where a later turn begins
    kept_always = total - sum(sizes[head:])  # the overhead, the tools and the system messages
    target = kept_always + (budget - kept_always) * fill
    cut = head
    for start in starts:
        if total <= target:
            break
        total -= sum(sizes[cut:start])
        cut = start
    if cut == head:
        return Fitted(request, total, budget=budget)  # nothing can go: the newest turn is all there is
    fitted = replace(request, messages=messages[:head] + messages[cut:])
    return Fitted(fitted, total, dropped_messages=cut - head, budget=budget)
