"""LlmEngine: failover at load, at the first-token deadline and mid-stream (reply continued), cancel, personas.

The real llama.cpp server (SmolLM2, CPU) serves; stand-ins play the cloud
backends that are slow, die mid-reply or repeat themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from engines.backend import BackendError
from engines.engine_status import EngineState, EngineStatus
from engines.fallback_chain import BackendSlot
from engines.llm.backend_factory import llm_slot
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, LlmBackend, ToolCall
from engines.llm.llama_cpp_backend import LlamaCppServerBackend
from engines.llm.llm_engine import LlmEngine
from engines.llm.openai_compatible_backend import OpenAiCompatibleBackend
from engines.llm.reply_assembly import ReplyAssembler
from engines.llm.reply_continuation import CONTINUE_INSTRUCTION
from engines.llm.settings import LlamaCppSettings, OpenAiCompatibleSettings
from tests.engines.llm_helpers import COUNT, LLAMA, STORY, Borrowed, alive, wait_until
from tests.engines.llm_standins import StandIn, open_sse, openai_chunk, openai_text_stream, sse_reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEADLINE_S = 4.0  # generous: other suites share this machine's two cores


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(models_dir: Path) -> AsyncIterator[LlamaCppServerBackend]:
    backend = LlamaCppServerBackend(LLAMA, models_dir)
    await backend.load()
    await backend.warm_up()
    yield backend
    await backend.close()


@pytest_asyncio.fixture(loop_scope="module")
async def standin() -> AsyncIterator[StandIn]:
    server = StandIn()
    await server.start()
    yield server
    await server.stop()


def cloud(server: StandIn) -> OpenAiCompatibleBackend:
    return OpenAiCompatibleBackend(
        OpenAiCompatibleSettings(provider="custom", base_url=server.url + "/v1", model="standin-model", idle_timeout_s=5)
    )


async def run(engine: LlmEngine, request: ChatRequest, **kwargs: object) -> ReplyAssembler:
    assembler = ReplyAssembler()
    async with contextlib.aclosing(engine.stream(request, **kwargs)) as deltas:  # type: ignore[arg-type]
        async for delta in deltas:
            assert not delta.empty
            assembler.add(delta)
    return assembler


async def test_first_token_deadline_moves_to_the_next_backend(server: LlamaCppServerBackend, standin: StandIn) -> None:
    calls = 0

    async def silent_once(request: web.Request, body: dict[str, object]) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        response = await open_sse(request)
        if calls == 1:  # headers, then nothing: a cloud that never gets to its first token
            await asyncio.sleep(60)
        for chunk in openai_text_stream(["cloud", " reply"]):
            await response.write(chunk)
        return response

    standin.reply = silent_once
    backup = Borrowed(server)
    slots: list[BackendSlot[LlmBackend]] = [BackendSlot("cloud", lambda: cloud(standin)), BackendSlot("local", lambda: backup)]
    engine = LlmEngine(slots, first_token_timeout_s=DEADLINE_S)
    await engine.start()
    try:
        started = time.monotonic()
        reply = await run(engine, COUNT)
        assert reply.text and reply.finish_reason and len(backup.requests) == 1
        assert DEADLINE_S <= time.monotonic() - started < 30  # moved on at the deadline, not after the cloud's minute
        assert await wait_until(lambda: standin.disconnects == 1, 5)  # the silent stream was closed
        # Skipped for that request only: still loaded, and the next request gets it.
        assert engine.status.state is EngineState.READY and engine.status.backend == "cloud"
        again = await run(engine, COUNT)
        assert again.text == "cloud reply" and len(backup.requests) == 1
    finally:
        await engine.close()


async def test_backend_failing_at_load_is_skipped(server: LlamaCppServerBackend, models_dir: Path) -> None:
    backup = Borrowed(server)
    engine = LlmEngine(
        [llm_slot("broken", "llama_cpp", LlamaCppSettings(model="/nonexistent/model.gguf"), models_dir),
         BackendSlot("local", lambda: backup)],
        first_token_timeout_s=None,
        retry_initial_s=60,
    )
    status = await engine.start()
    try:
        assert status.state is EngineState.DEGRADED and status.backend == "local"
        assert "broken: GGUF model file /nonexistent/model.gguf does not exist" in status.failures
        reply = await run(engine, COUNT)
        assert reply.text and len(backup.requests) == 1
    finally:
        await engine.close()


async def test_server_killed_mid_stream_fails_over_continues_and_reloads(
    server: LlamaCppServerBackend, models_dir: Path
) -> None:
    built: list[LlamaCppServerBackend] = []

    def primary() -> LlamaCppServerBackend:
        built.append(LlamaCppServerBackend(replace(LLAMA, max_restarts=0), models_dir))
        return built[-1]

    backup = Borrowed(server)
    statuses: list[EngineStatus] = []
    engine = LlmEngine([BackendSlot("primary", primary), BackendSlot("backup", lambda: backup)], statuses.append,
                        first_token_timeout_s=None, retry_initial_s=1.0, retry_max_s=2.0)
    await engine.start()
    recovery = asyncio.create_task(engine.recover_forever())
    try:
        process = built[0].process
        assert process is not None and process.pid is not None
        first_pid = process.pid
        assembler = ReplyAssembler()
        before_kill = ""
        async with contextlib.aclosing(engine.stream(replace(STORY, max_tokens=80))) as deltas:
            async for delta in deltas:
                assembler.add(delta)
                if len(assembler.text) > 20 and not before_kill:
                    before_kill = assembler.text
                    os.kill(first_pid, signal.SIGKILL)
        assert before_kill and assembler.text.startswith(before_kill) and len(assembler.text) > len(before_kill)
        assert assembler.finish_reason in ("stop", "length")
        continued = backup.requests[-1]
        assert continued.messages[-2] == ChatMessage("assistant", continued.messages[-2].content)
        assert before_kill.startswith(continued.messages[-2].content) or continued.messages[-2].content.startswith(before_kill)
        assert continued.messages[-1] == ChatMessage("user", CONTINUE_INSTRUCTION)
        assert any(s.state is EngineState.DEGRADED and s.backend == "backup" for s in statuses)
        assert continued.max_tokens is not None and continued.max_tokens < 80
        # The chain closes the failed backend and reloads it: a new server process.
        assert await wait_until(lambda: engine.status.state is EngineState.READY, 20)
        assert engine.status.backend == "primary" and len(built) == 2 and not alive(first_pid)
        new_process = built[1].process
        assert new_process is not None and new_process.pid not in (None, first_pid)
        served = len(backup.requests)
        reply = await run(engine, COUNT)
        assert reply.text and len(backup.requests) == served
    finally:
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery
        await engine.close()
    assert all(b.process is None for b in built)


async def test_closing_the_stream_stops_generation(server: LlamaCppServerBackend) -> None:
    engine = LlmEngine([BackendSlot("local", lambda: Borrowed(server))], first_token_timeout_s=None)
    await engine.start()
    try:
        process = server.process
        assert process is not None
        mark = process.output_mark()
        stream = engine.stream(STORY)
        for _ in range(3):
            await anext(stream)
        await stream.aclose()
        # llama_cpp.server logs the disconnect when it abandons the generation.
        assert await wait_until(lambda: any("Disconnected from client" in line for line in process.output_since(mark)), 5)
        reply = await run(engine, COUNT)
        assert reply.text
    finally:
        await engine.close()


async def test_persona_chain_selects_backends(server: LlamaCppServerBackend, standin: StandIn) -> None:
    standin.reply = sse_reply(openai_text_stream(["cloud says hi"]))
    backup = Borrowed(server)
    engine = LlmEngine([BackendSlot("cloud", lambda: cloud(standin)), BackendSlot("local", lambda: backup)],
                        first_token_timeout_s=None)
    await engine.start()
    try:
        local_only = await run(engine, COUNT, persona_chain=["local"])
        assert local_only.text and len(backup.requests) == 1
        assert not [r for r in standin.requests if r.path.endswith("/chat/completions")]
        default = await run(engine, COUNT)
        assert default.text == "cloud says hi"
        with pytest.raises(ValueError, match="must name LLM backends"):
            await anext(engine.stream(COUNT, persona_chain=["nope"]))
    finally:
        await engine.close()


async def test_continuation_strips_a_repeated_beginning_and_tool_calls_come_whole() -> None:
    dying, repeating = StandIn(), StandIn()
    await dying.start()
    await repeating.start()
    try:
        dying.reply = sse_reply([
            openai_chunk({"content": "We open"}),
            openai_chunk({"content": " at nine"}),
            openai_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "book", "arguments": '{"ti'}}]}),
        ])  # then the stream ends without a finish: the backend died

        async def repeat(request: web.Request, body: dict[str, object]) -> web.StreamResponse:
            response = await open_sse(request)
            for chunk in [
                openai_chunk({"content": "We open at"}),
                openai_chunk({"content": " nine and close"}),
                openai_chunk({"content": " at five."}),
                openai_chunk({"tool_calls": [{"index": 0, "id": "c2", "function": {"name": "book", "arguments": '{"time": '}}]}),
                openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"9:00"}'}}]}),
                openai_chunk({}, "tool_calls"),
                b"data: [DONE]\n\n",
            ]:
                await response.write(chunk)
            return response

        repeating.reply = repeat
        engine = LlmEngine([BackendSlot("a", lambda: cloud(dying)), BackendSlot("b", lambda: cloud(repeating))],
                            first_token_timeout_s=None, retry_initial_s=60)
        await engine.start()
        try:
            deltas = [d async for d in engine.stream(ChatRequest(messages=(ChatMessage("user", "Hours?"),)))]
            assembler = ReplyAssembler()
            for delta in deltas:
                assembler.add(delta)
            assert assembler.text == "We open at nine and close at five."
            assert assembler.tool_calls == (ToolCall("c2", "book", '{"time": "9:00"}'),)
            assert [d for d in deltas if d.tool_calls] == [deltas[-1]] and deltas[-1].finish_reason == "tool_calls"
            sent = repeating.requests[-1].body["messages"]
            assert sent[-2] == {"role": "assistant", "content": "We open at nine"}
            assert sent[-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}
        finally:
            await engine.close()
    finally:
        await dying.stop()
        await repeating.stop()


def long_prompt(topic: str) -> ChatRequest:
    """A persona-sized prompt (~400 tokens): its prefill is what priming takes off the first reply."""
    facts = "\n".join(f"- {topic} fact {i}: the office on floor {i} opens at {8 + i % 3} and closes at {17 + i % 2}." for i in range(15))
    return ChatRequest(
        messages=(ChatMessage("system", f"You answer the phone for {topic}.\nFacts you may share:\n{facts}"),
                  ChatMessage("assistant", "Hello, how can I help?")),
        max_tokens=8, temperature=0.0,
    )


async def first_text_s(engine: LlmEngine, request: ChatRequest) -> float:
    started = time.monotonic()
    async with contextlib.aclosing(engine.stream(request, first_token_timeout_s=60)) as deltas:
        async for delta in deltas:
            if delta.text:
                return time.monotonic() - started
    raise AssertionError("no text")


async def test_priming_a_local_model_takes_the_prompt_prefill_off_the_first_reply(server: LlamaCppServerBackend) -> None:
    local = Borrowed(server)
    engine = LlmEngine([BackendSlot("local", lambda: local)], first_token_timeout_s=DEADLINE_S)
    await engine.start()
    try:
        call = long_prompt("Acme")
        asked = replace(call, messages=(*call.messages, ChatMessage("user", "When do you open?")))
        await engine.prime(long_prompt("Other"))  # another prompt in the cache, as after a summary
        cold = await first_text_s(engine, asked)
        await engine.prime(long_prompt("Again"))
        assert await engine.prime(call) == "local"
        primed = await first_text_s(engine, asked)
        assert local.requests[-2].max_tokens == 1 and local.requests[-2].messages == call.messages
        print(f"first text: cold {cold * 1000:.0f} ms, primed {primed * 1000:.0f} ms")
        assert cold > 2 * primed
    finally:
        await engine.close()


async def test_a_hosted_backend_is_never_primed_and_a_failed_priming_is_no_failure(
    server: LlamaCppServerBackend, standin: StandIn
) -> None:
    hosted = cloud(standin)
    local = Borrowed(server)
    engine = LlmEngine([BackendSlot("cloud", lambda: hosted), BackendSlot("local", lambda: local)],
                        first_token_timeout_s=DEADLINE_S)
    await engine.start()
    try:
        asked_before = len(standin.requests)
        assert await engine.prime(COUNT) is None  # the cloud serves this persona: no request is spent on it
        assert len(standin.requests) == asked_before
        assert await engine.prime(COUNT, ["local"]) == "local"
        assert local.requests[-1].max_tokens == 1

        async def broken(request: object) -> AsyncIterator[ChatDelta]:
            raise BackendError("the server went away")
            yield ChatDelta()

        local.stream_chat = broken  # type: ignore[method-assign,assignment]
        assert await engine.prime(COUNT, ["local"]) is None
        assert engine.status.state is EngineState.READY
    finally:
        await engine.close()
