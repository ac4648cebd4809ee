"""llama.cpp in process (worker thread) with SmolLM2-135M: streaming, stop, cancel, and a free event loop."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from engines.backend import BackendError
from engines.llm.backend_factory import build_llm_backend
from engines.llm.llama_cpp_backend import LlamaCppInProcessBackend
from engines.llm.reply_assembly import collect_reply
from tests.engines.llm_helpers import COUNT, LLAMA, STORY, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def llama(models_dir: Path) -> AsyncIterator[LlamaCppInProcessBackend]:
    backend = build_llm_backend("llama_cpp", replace(LLAMA, mode="in_process"), models_dir)
    assert isinstance(backend, LlamaCppInProcessBackend)
    await backend.load()
    await backend.warm_up()
    yield backend
    await backend.close()


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llama-cpp-chat"]


async def test_streams_and_honours_stop_and_max_tokens(llama: LlamaCppInProcessBackend) -> None:
    deltas = [d async for d in llama.stream_chat(COUNT)]
    assert len([d for d in deltas if d.text]) > 5 and deltas[-1].finish_reason in ("stop", "length")
    assert "5" in "".join(d.text for d in deltas)  # without a stop sequence the count reaches 5
    stopped = await collect_reply(llama.stream_chat(replace(COUNT, stop=("5",))))
    assert "5" not in stopped.text and "4" in stopped.text and stopped.finish_reason == "stop"
    short = [d async for d in llama.stream_chat(replace(STORY, max_tokens=4))]
    assert 1 <= len([d for d in short if d.text]) <= 4 and short[-1].finish_reason == "length"


async def test_cancel_stops_the_worker_then_the_next_request_runs(llama: LlamaCppInProcessBackend) -> None:
    stream = llama.stream_chat(STORY)
    for _ in range(3):
        await anext(stream)
    assert len(workers()) == 1
    await stream.aclose()
    # The worker stops after the token it was computing, not after 400 tokens.
    assert await wait_until(lambda: not workers(), 2.0)
    reply = await collect_reply(llama.stream_chat(COUNT))
    assert reply.text and reply.finish_reason


async def test_event_loop_stays_free_during_inference(llama: LlamaCppInProcessBackend) -> None:
    period = 0.010
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(period)
            now = time.perf_counter()
            lags.append(max(0.0, now - last - period))
            last = now

    task = asyncio.create_task(ticker())
    try:
        tokens = 0
        started = time.perf_counter()
        async for delta in llama.stream_chat(replace(STORY, max_tokens=80)):
            tokens += bool(delta.text)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await task
    lags.sort()
    p50, p99, worst = statistics.median(lags), lags[int(len(lags) * 0.99) - 1], lags[-1]
    print(f"\nloop lag during in-process inference: {len(lags)} ticks over {elapsed:.2f} s ({tokens} tokens): "
          f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {worst * 1e3:.2f} ms")
    assert tokens > 20 and len(lags) > 20
    assert p99 < 0.030, f"p99 loop lag {p99 * 1e3:.1f} ms"


async def test_not_loaded_and_close_twice(models_dir: Path) -> None:
    backend = LlamaCppInProcessBackend(LLAMA, models_dir)
    with pytest.raises(BackendError, match="not loaded"):
        await anext(backend.stream_chat(COUNT))
    await backend.load()
    await backend.close()
    await backend.close()
    with pytest.raises(BackendError, match="not loaded"):
        await anext(backend.stream_chat(COUNT))
