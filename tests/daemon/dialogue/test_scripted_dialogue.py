"""The scripted dialogue speaks in the pieces the LLM path's ReplyChunker makes, so a persona sounds the same either way."""

from __future__ import annotations

import pytest

from config.persona_schema import PersonaConfig, bundled_personas
from daemon.dialogue.interface import ReplyOutcome, TextFeed
from daemon.dialogue.reply_chunker import ReplyChunker
from daemon.dialogue.scripted_dialogue import ScriptedDialogue
from daemon.dialogue.take_message_policy import TakeMessagePolicy

CALLER = "+79161234567"


def _asking_only_the_number(name: str) -> PersonaConfig:
    return bundled_personas()[name].model_copy(update={"asks": ["callback_number"]})


async def _spoken(feed: TextFeed) -> list[str]:
    feed.close()
    pieces: list[str] = []
    while (piece := await feed.next()) is not None:
        assert isinstance(piece, str)
        pieces.append(piece)
    return pieces


@pytest.mark.parametrize(
    ("persona_name", "first_clause", "pieces_count"),
    [
        ("gulya", "Номер, с которого вы звоните,", 3),
        ("lidia", "Should we call you back on the number you're calling from,", 2),
    ],
)
async def test_a_scripted_turn_is_cut_where_the_reply_chunker_cuts_it(
    persona_name: str, first_clause: str, pieces_count: int
) -> None:
    persona = _asking_only_the_number(persona_name)
    dialogue = ScriptedDialogue(persona, CALLER)
    feed, outcome = TextFeed(), ReplyOutcome()
    await dialogue.next_question(feed, outcome)

    same_policy = TakeMessagePolicy(persona.language, asks=persona.asks, goodbye=persona.goodbye, caller_number=CALLER)
    text = same_policy.next_question().say
    chunker = ReplyChunker(persona.language)
    pieces = await _spoken(feed)
    assert pieces == [*chunker.feed(text), *chunker.flush()]
    # The TTS starts on the first clause of the first sentence, as it does on an LLM's reply.
    assert pieces[0] == first_clause
    assert len(pieces) == pieces_count and " ".join(pieces) == text
    assert outcome.source == "scripted" and not outcome.end_call
