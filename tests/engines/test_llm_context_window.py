"""A conversation longer than llama.cpp's context window: the raw request fails, the engine's fitted one is answered.

The real llama.cpp server (SmolLM2, CPU) runs with a 512-token window so a
dozen Russian turns outgrow it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from engines.backend import BackendError
from engines.fallback_chain import BackendSlot, RequestError
from engines.llm.context_fit import fixed_tokens, message_tokens
from engines.llm.gguf_model import resolve_gguf
from engines.llm.interface import ChatMessage, ChatRequest
from engines.llm.llama_cpp_backend import LlamaCppServerBackend
from engines.llm.llm_engine import ContextTooLong, LlmEngine
from engines.llm.openai_compatible_backend import OpenAiCompatibleBackend
from engines.llm.openai_wire import openai_message
from engines.llm.reply_assembly import collect_reply
from engines.llm.settings import OpenAiCompatibleSettings
from tests.engines.llm_helpers import LLAMA, Borrowed
from tests.engines.llm_standins import StandIn, openai_text_stream, sse_reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

WINDOW = 512
LINE = "Меня зовут Иван Петров, я звоню по поводу счёта за прошлый месяц, перезвоните мне пожалуйста."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(models_dir: Path) -> AsyncIterator[LlamaCppServerBackend]:
    backend = LlamaCppServerBackend(replace(LLAMA, n_ctx=WINDOW), models_dir)
    await backend.load()
    yield backend
    await backend.close()


def long_call(turns: int = 12) -> ChatRequest:
    messages = [ChatMessage("system", "You are a secretary. Answer briefly.")]
    for n in range(turns):
        messages += [ChatMessage("user", f"{n}. {LINE}"), ChatMessage("assistant", f"Хорошо, записала {n}.")]
    messages.append(ChatMessage("user", "Say OK."))
    return ChatRequest(messages=tuple(messages), max_tokens=8, temperature=0.0)


async def test_our_count_is_the_models_own_plus_a_small_margin(server: LlamaCppServerBackend, models_dir: Path) -> None:
    """Against the prompt as llama.cpp renders it (the GGUF's chat template) and tokenizes it: ours is never below."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    vocab = llama_cpp.Llama(str(resolve_gguf(LLAMA.model, models_dir)), vocab_only=True, verbose=False)
    try:
        template = vocab.metadata["tokenizer.chat_template"]
        render = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="<|im_start|>")
        for turns in (0, 3, 12):
            request = long_call(turns)
            prompt = render(messages=[openai_message(m) for m in request.messages]).prompt
            exact = len(vocab.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
            ours = fixed_tokens(request, server) + sum(message_tokens(m, server) for m in request.messages)
            assert exact <= ours <= exact + 24 + 4 * len(request.messages), (turns, exact, ours)
    finally:
        vocab.close()


async def test_the_engine_sends_it_without_its_oldest_turns_and_gets_an_answer(server: LlamaCppServerBackend) -> None:
    pid = server.process.pid if server.process else None
    borrowed = Borrowed(server)
    engine = LlmEngine([BackendSlot("local", lambda: borrowed)], first_token_timeout_s=30)
    await engine.start()
    try:
        reply = await collect_reply(engine.stream(long_call()))
    finally:
        await engine.close()
    assert reply.finish_reason in ("stop", "length") and reply.text.strip()
    sent = borrowed.requests[-1].messages
    assert len(sent) < len(long_call().messages)
    assert sent[0].role == "system" and sent[-1].content == "Say OK." and sent[1].role == "user"
    assert server.process is not None and server.process.pid == pid  # the server was never overrun and restarted


async def test_a_message_too_long_for_any_window_is_refused_without_sending_it(server: LlamaCppServerBackend) -> None:
    pid = server.process.pid if server.process else None
    borrowed = Borrowed(server)
    engine = LlmEngine([BackendSlot("local", lambda: borrowed)], first_token_timeout_s=30)
    await engine.start()
    huge = ChatRequest(messages=(ChatMessage("system", "Be brief."), ChatMessage("user", LINE * 12)), max_tokens=8)
    try:
        with pytest.raises(ContextTooLong, match=r"too long for local's 512-token context: \d+ tokens .* room for 504"):
            await collect_reply(engine.stream(huge))
        assert isinstance(ContextTooLong("x"), RequestError)  # callers treat it as a request that cannot be served
    finally:
        await engine.close()
    assert borrowed.requests == []  # never sent: the server would have dropped it and restarted
    assert server.process is not None and server.process.pid == pid


async def test_a_message_too_long_for_the_local_window_goes_to_a_larger_model(server: LlamaCppServerBackend) -> None:
    cloud_server = StandIn()
    cloud_server.reply = sse_reply(openai_text_stream(["A big model read it all."]))
    await cloud_server.start()
    local = Borrowed(server)
    cloud = OpenAiCompatibleBackend(OpenAiCompatibleSettings(
        provider="custom", base_url=cloud_server.url + "/v1", model="standin-model", idle_timeout_s=5))
    engine = LlmEngine([BackendSlot("local", lambda: local), BackendSlot("cloud", lambda: cloud)], first_token_timeout_s=30)
    await engine.start()
    try:
        huge = ChatRequest(messages=(ChatMessage("user", LINE * 12),), max_tokens=8)
        reply = await collect_reply(engine.stream(huge))
        short = await collect_reply(engine.stream(long_call(0)))
    finally:
        await engine.close()
        await cloud_server.stop()
    assert reply.text == "A big model read it all."
    assert local.requests == [long_call(0)]  # only the short one went to the small local model
    assert [r.path for r in cloud_server.requests if r.path.endswith("/chat/completions")] == ["/v1/chat/completions"]
    assert short.text


async def test_unfitted_the_same_request_brings_the_server_down(server: LlamaCppServerBackend) -> None:
    """Why the engine fits: what every long call's turn used to end in (last here: the server restarts after it)."""
    request = long_call()
    counted = fixed_tokens(request, server) + sum(message_tokens(m, server) for m in request.messages)
    assert server.context_window == WINDOW and counted > WINDOW
    with pytest.raises(BackendError):  # "Server disconnected" or "the stream ended before [DONE]"
        await collect_reply(server.stream_chat(request))
