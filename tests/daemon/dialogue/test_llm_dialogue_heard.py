"""The LLM dialogue remembers what the caller heard of a reply cut by barge-in (issue 18 item 5).

The real OpenAI-protocol client against a loopback stand-in: one reply is
cut after the model finished writing it (its message is rewritten), one while
the model is still writing it (there is no message yet: the heard words
become one, and the next request carries them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiohttp import web

from config.persona_schema import bundled_personas
from daemon.dialogue.interface import ReplyOutcome, TextFeed
from daemon.dialogue.llm_dialogue import LlmDialogue
from engines.fallback_chain import BackendSlot
from engines.llm.llm_engine import LlmEngine
from engines.llm.openai_compatible_backend import OpenAiCompatibleBackend
from engines.llm.settings import OpenAiCompatibleSettings
from tests.engines.llm_standins import StandIn, open_sse, openai_chunk, openai_text_stream

WHOLE = "Thank you, I will pass that on to Alex today."
FIRST = "Let me check when Alex is free"


class Writer:
    """A whole reply at once; with ``stall`` the first words, then nothing until the client goes away."""

    def __init__(self) -> None:
        self.stall = False
        self.wrote_first = asyncio.Event()

    async def __call__(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await open_sse(request)
        if not self.stall:
            for piece in openai_text_stream([WHOLE]):
                await response.write(piece)
            return response
        await response.write(openai_chunk({"role": "assistant", "content": ""}))
        await response.write(openai_chunk({"content": FIRST + ", "}))
        self.wrote_first.set()
        await asyncio.sleep(30)  # the model is still writing when the caller barges in
        return response


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[StandIn, Writer, LlmDialogue]]:
    writer = Writer()
    standin = StandIn(writer)
    await standin.start()
    settings = OpenAiCompatibleSettings(provider="custom", base_url=standin.url + "/v1", model="standin-model")
    engine = LlmEngine([BackendSlot("cloud", lambda: OpenAiCompatibleBackend(settings))], first_token_timeout_s=5)
    await engine.start()
    try:
        yield standin, writer, LlmDialogue(engine, bundled_personas()["lidia"], "+79161234567")
    finally:
        await engine.close()
        await standin.stop()


def assistant_turns(messages: list[Any]) -> list[str]:
    return [m.content if hasattr(m, "content") else m["content"] for m in messages
            if (m.role if hasattr(m, "role") else m["role"]) == "assistant"]


async def test_a_finished_reply_cut_short_is_rewritten_to_the_words_heard(
    served: tuple[StandIn, Writer, LlmDialogue]
) -> None:
    standin, _, dialogue = served
    await dialogue.respond("Hi, it's John about the invoice.", TextFeed(), ReplyOutcome())
    dialogue.heard(WHOLE, "Thank you, I will…")
    assert assistant_turns(dialogue.messages)[-1] == "Thank you, I will… [interrupted by the caller]"
    dialogue.heard(WHOLE, WHOLE)  # a reply heard whole changes nothing
    assert assistant_turns(dialogue.messages)[-1] == "Thank you, I will… [interrupted by the caller]"


async def test_a_reply_cut_while_the_model_writes_it_is_remembered_as_heard(
    served: tuple[StandIn, Writer, LlmDialogue]
) -> None:
    standin, writer, dialogue = served
    writer.stall = True
    before = assistant_turns(dialogue.messages)  # the greeting
    feed = TextFeed()
    responding = asyncio.create_task(dialogue.respond("When can Alex call me back?", feed, ReplyOutcome()))
    await asyncio.wait_for(writer.wrote_first.wait(), 10)
    assert await asyncio.wait_for(feed.next(), 10) == FIRST + ","  # the speaker is saying it
    responding.cancel()  # barge-in: the reply task is cancelled
    with contextlib.suppress(asyncio.CancelledError):
        await responding
    dialogue.heard(FIRST + ",", "Let me check…")
    assert assistant_turns(dialogue.messages) == [*before, "Let me check… [interrupted by the caller]"]
    assert dialogue.messages[-2].role == "user"  # the greeting was left as it was

    writer.stall = False
    await dialogue.respond("Today, please.", TextFeed(), ReplyOutcome())
    sent = standin.requests[-1].body["messages"]
    assert assistant_turns(sent)[-1] == "Let me check… [interrupted by the caller]"
    assert [m["role"] for m in sent][-3:] == ["user", "assistant", "user"]


async def test_a_reply_cut_before_a_word_was_heard_says_so(served: tuple[StandIn, Writer, LlmDialogue]) -> None:
    _, writer, dialogue = served
    writer.stall = True
    feed = TextFeed()
    responding = asyncio.create_task(dialogue.respond("Hello?", feed, ReplyOutcome()))
    await asyncio.wait_for(writer.wrote_first.wait(), 10)
    responding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await responding
    dialogue.heard(FIRST + ",", "")
    assert assistant_turns(dialogue.messages)[-1] == "[interrupted by the caller before speaking]"

