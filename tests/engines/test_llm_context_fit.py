"""context_fit: a conversation longer than the model's window loses its oldest whole turns, counted in the model's vocabulary.

Counting uses the real SmolLM2 vocabulary (the packaged GGUF, read ``vocab_only``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from engines.llm.context_fit import Fitted, fit_context, fixed_tokens, message_tokens
from engines.llm.gguf_model import resolve_gguf
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, LlmBackend, ToolCall, ToolSpec
from engines.llm.token_counter import GgufTokenCounter, estimate_tokens

RU = "Здравствуйте, меня зовут Иван Петров, я звоню по поводу счёта за прошлый месяц."
EN = "Hello, my name is John Peters, I am calling about last month's invoice."
TOOL = ToolSpec("save_message", "Store the caller's message.", {"type": "object", "properties": {"name": {"type": "string"}}})


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GgufTokenCounter]:
    counter = GgufTokenCounter(resolve_gguf("packaged:smollm2-135m", tmp_path_factory.mktemp("models")))
    yield counter
    counter.close()


class Window(LlmBackend):
    """A backend as the fitter sees it: a window, a reply budget and a vocabulary (it never generates)."""

    name = "window"

    def __init__(self, vocab: GgufTokenCounter | None, window: int | None, reply_tokens: int = 100) -> None:
        self.vocab, self.window, self.reply_tokens = vocab, window, reply_tokens

    @property
    def model(self) -> str:
        return "smollm2-vocabulary"

    @property
    def context_window(self) -> int | None:
        return self.window

    @property
    def default_reply_tokens(self) -> int:
        return self.reply_tokens

    def count_tokens(self, text: str) -> int:
        return self.vocab.count(text) if self.vocab is not None else estimate_tokens(text)

    async def load(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        raise AssertionError("the fitter never generates")
        yield ChatDelta()


def call(turns: int, language_line: str = RU) -> ChatRequest:
    """A call's history: prompt, greeting, then ``turns`` exchanges; the second one saves the name with a tool."""
    messages = [ChatMessage("system", "You are Gulya, the secretary. Take a message."), ChatMessage("assistant", "Алло!")]
    for n in range(turns):
        messages.append(ChatMessage("user", f"{n}: {language_line}"))
        if n == 1:
            messages.append(ChatMessage("assistant", "", tool_calls=(ToolCall(f"c{n}", "save_message", '{"name": "Иван"}'),)))
            messages.append(ChatMessage("tool", "saved", tool_call_id=f"c{n}"))
        messages.append(ChatMessage("assistant", f"Поняла, {n}. Что ещё передать?"))
    return ChatRequest(messages=tuple(messages), tools=(TOOL,), max_tokens=80)


def total(fitted: Fitted, backend: LlmBackend) -> int:
    request = fitted.request
    return fixed_tokens(request, backend) + sum(message_tokens(m, backend) for m in request.messages)


def test_counts_are_the_models_tokens_and_the_estimate_is_above_them(vocab: GgufTokenCounter) -> None:
    ru, en = vocab.count(RU), vocab.count(EN)
    assert 50 <= ru <= 80 and 12 <= en <= 22, (ru, en)  # Cyrillic costs SmolLM2 several times more
    assert vocab.count(RU) == ru and vocab.count("") == 0  # cached, and nothing costs nothing
    assert estimate_tokens(RU) >= ru and estimate_tokens(EN) >= en


def test_a_request_that_fits_is_sent_unchanged(vocab: GgufTokenCounter) -> None:
    backend = Window(vocab, 2048)
    request = call(3)
    fitted = fit_context(request, backend)
    assert fitted.request is request and not fitted.trimmed
    assert fitted.prompt_tokens == total(fitted, backend) < 2048 - 80


def test_the_oldest_turns_go_whole_and_the_prompt_and_newest_turn_stay(vocab: GgufTokenCounter) -> None:
    backend = Window(vocab, 700)
    request = call(12)
    assert total(Fitted(request, 0), backend) > 700 - 80  # it does not fit as it is
    fitted = fit_context(request, backend)
    kept = fitted.request.messages
    assert fitted.trimmed and fitted.dropped_messages == len(request.messages) - len(kept)
    assert kept[0] == request.messages[0]  # the persona's prompt
    assert kept[1].role == "user"  # a whole turn begins where the history now begins
    assert kept[-2:] == request.messages[-2:]  # the newest turn
    assert kept == request.messages[:1] + request.messages[-(len(kept) - 1):]  # only a contiguous oldest part went
    assert fitted.prompt_tokens == total(fitted, backend) <= 700 - 80
    # The turn before it would not have fitted: no more was dropped than needed.
    dropped_to = len(request.messages) - len(kept) + 1
    one_more = next(i for i in range(dropped_to - 1, 0, -1) if request.messages[i].role == "user")
    bigger = request.messages[:1] + request.messages[one_more:]
    assert fixed_tokens(request, backend) + sum(message_tokens(m, backend) for m in bigger) > 700 - 80


def test_a_tool_call_never_loses_its_result(vocab: GgufTokenCounter) -> None:
    request = call(3)
    for window in range(200, 900, 10):
        kept = fit_context(request, Window(vocab, window)).request.messages
        calls = {c.id for m in kept for c in m.tool_calls}
        results = {m.tool_call_id for m in kept if m.role == "tool"}
        assert calls == results, window


def test_fill_trims_further_so_the_next_turns_keep_the_same_prefix(vocab: GgufTokenCounter) -> None:
    backend = Window(vocab, 900)
    request = call(14)
    fitted = fit_context(request, backend, fill=0.6)
    prompt_and_tools = fixed_tokens(request, backend) + message_tokens(request.messages[0], backend)
    conversation = fitted.prompt_tokens - prompt_and_tools
    assert fitted.trimmed and 0 < conversation <= (900 - 80 - prompt_and_tools) * 0.6  # a share of the room it has
    # The trimmed history grows by one turn and still fits without trimming again.
    grown = list(fitted.request.messages) + [ChatMessage("user", RU), ChatMessage("assistant", "Записала.")]
    again = fit_context(ChatRequest(messages=tuple(grown), tools=(TOOL,), max_tokens=80), backend, fill=0.6)
    assert not again.trimmed


def test_the_reply_budget_is_the_backends_when_the_request_names_none(vocab: GgufTokenCounter) -> None:
    request = ChatRequest(messages=call(6).messages, tools=(TOOL,))
    assert not fit_context(request, Window(vocab, 1400, reply_tokens=100)).trimmed
    assert fit_context(request, Window(vocab, 1400, reply_tokens=1000)).trimmed


def test_an_unknown_window_is_never_fitted_and_a_lone_turn_is_sent_as_it_is(vocab: GgufTokenCounter) -> None:
    request = call(30)
    assert fit_context(request, Window(vocab, None)).request is request  # a hosted model's large window
    lone = ChatRequest(messages=(ChatMessage("system", "Be brief."), ChatMessage("user", RU * 20)), max_tokens=80)
    fitted = fit_context(lone, Window(vocab, 300))
    assert fitted.request is lone and not fitted.trimmed and fitted.prompt_tokens > 300
    with pytest.raises(ValueError, match="fill"):
        fit_context(request, Window(vocab, 300), fill=0)


def test_without_a_vocabulary_the_estimate_counts() -> None:
    fitted = fit_context(call(12), Window(None, 700))
    assert fitted.trimmed and fitted.prompt_tokens <= 700 - 80
