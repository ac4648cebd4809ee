"""Shared helpers of the LLM tests: process liveness, polling, a borrowed backend, prompts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, LlmBackend
from engines.llm.settings import LlamaCppSettings

# One llama.cpp thread per server in tests: this 2-core machine runs other test suites at the
# same time, and llama.cpp's spinning worker threads slow down ~5x when they do not get their
# cores (measured: 27 tok/s with 2 threads vs 72 tok/s with 1 under the same load).
LLAMA = LlamaCppSettings(n_threads=1)

COUNT = ChatRequest(
    messages=(ChatMessage("user", "Count from 1 to 10, separated by commas."),), max_tokens=40, temperature=0.0
)
STORY = ChatRequest(
    messages=(ChatMessage("user", "Write a long story about a lighthouse keeper and a storm."),),
    max_tokens=400,
    temperature=0.0,
)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


async def wait_until(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(step_s)
    return condition()


class Borrowed(LlmBackend):
    """Lends a backend owned by a module fixture to a chain: load and close leave it running."""

    def __init__(self, inner: LlmBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.caches_prompt = inner.caches_prompt
        self.requests: list[ChatRequest] = []

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def context_window(self) -> int | None:
        return self.inner.context_window

    @property
    def default_reply_tokens(self) -> int:
        return self.inner.default_reply_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def load(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self.requests.append(request)
        return self.inner.stream_chat(request)
