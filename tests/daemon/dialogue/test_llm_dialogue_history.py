"""A call that outgrows the model's window: its oldest turns go for good, the slots stay as a note, every turn is answered.

The real llama.cpp server (SmolLM2, CPU) with a 1280-token window: Gulya's
Russian prompt and tools take about 800 of them, so a few caller turns fill it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio

from config.persona_schema import bundled_personas
from daemon.dialogue.call_summary import llm_summary, transcript_text
from daemon.dialogue.interface import ReplyOutcome, TextFeed
from daemon.dialogue.llm_dialogue import HISTORY_FILL, LlmDialogue
from daemon.dialogue.message_slots import MessageSlots
from daemon.records.call_record import Utterance
from engines.fallback_chain import BackendSlot
from engines.llm.llama_cpp_backend import LlamaCppServerBackend
from engines.llm.llm_engine import LlmEngine
from tests.engines.llm_helpers import LLAMA, Borrowed

pytestmark = pytest.mark.asyncio(loop_scope="module")

WINDOW = 1280
REPLY_TOKENS = 16
CALLER = [
    "Здравствуйте, это Иван Петров из компании Ромашка, я по поводу счёта за прошлый месяц.",
    "Там сумма больше, чем мы договаривались, примерно на десять тысяч рублей.",
    "Пусть Анна Сергеевна перезвонит мне сегодня после обеда, если сможет.",
    "Мой номер восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь.",
    "И ещё: документы мы отправили курьером в понедельник, пусть проверят почту.",
    "Если меня не будет на месте, можно написать в мессенджер на тот же номер.",
    "В общем, это всё, спасибо большое, до свидания.",
    "Ах да, чуть не забыл: счёт номер сорок два, от пятого числа.",
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Borrowed]:
    backend = LlamaCppServerBackend(replace(LLAMA, n_ctx=WINDOW), tmp_path_factory.mktemp("models"))
    await backend.load()
    yield Borrowed(backend)  # records what is sent
    await backend.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(server: Borrowed) -> AsyncIterator[LlmEngine]:
    chat = LlmEngine([BackendSlot("local", lambda: server)], first_token_timeout_s=60)
    await chat.start()
    yield chat
    await chat.close()


async def test_a_long_russian_call_keeps_its_prompt_its_slots_and_a_stable_prefix(engine: LlmEngine) -> None:
    persona = bundled_personas()["gulya"]
    slots = MessageSlots(name="Иван Петров", callback_number="89161234567")
    dialogue = LlmDialogue(engine, persona, "+79161234567", max_tokens=REPLY_TOKENS, temperature=0.0, slots=slots)
    prompt = dialogue.messages[0]
    trims = 0
    for line in CALLER:
        before = list(dialogue.messages)
        feed, outcome = TextFeed(), ReplyOutcome()
        await dialogue.respond(line, feed, outcome)
        assert outcome.source == "llm:local"  # answered by the model every time, never the scripted fall-back
        now = dialogue.messages
        if now[: len(before)] != before:  # not just grown by this turn: its history was trimmed
            trims += 1
            assert now[0] == prompt
            assert now[1].role == "system" and "Иван Петров" in now[1].content and "89161234567" in now[1].content
            assert now[2].role == "user"
        fitted = engine.fit(dialogue._request(), dialogue.chain)
        assert not fitted.trimmed  # what is kept fits with room for the reply
    assert 1 <= trims <= len(CALLER) // 3, trims  # trimmed to HISTORY_FILL: not again on the very next turns
    assert engine.fit(dialogue._request(), dialogue.chain).prompt_tokens <= WINDOW  # sanity of the count
    assert 0 < HISTORY_FILL < 1



async def test_a_long_calls_summary_leaves_out_the_middle_and_is_written(engine: LlmEngine, server: Borrowed) -> None:
    utterances = [Utterance("secretary", "Алло, секретарь Гуля слушает.", 0.0, 2.0)]
    for n in range(40):
        utterances.append(Utterance("caller", f"{n}. {CALLER[n % len(CALLER)]}", 3.0 + 6 * n, 6.0 + 6 * n))
        utterances.append(Utterance("secretary", f"Записала, пункт {n}.", 6.5 + 6 * n, 8.0 + 6 * n))
    lines = transcript_text(utterances).split("\n")
    slots = MessageSlots(name="Иван Петров", callback_number="89161234567")
    summary = await llm_summary(engine, None, utterances, slots, "ru", timeout_s=120)
    assert summary is not None and summary.strip()  # written by the model, not the slots' fall-back
    sent = server.requests[-1]
    transcript = sent.messages[-1].content
    assert transcript.startswith(lines[0] + "\n" + lines[1]) and lines[-1] in transcript  # how it began and ended
    assert "lines of the call left out" in transcript and "Message fields: name: Иван Петров" in transcript
    fitted = engine.fit(sent)
    assert fitted.fits and fitted.prompt_tokens > (WINDOW - 120) * 0.8  # no more left out than needed (roughly)
