"""The dialogue without an LLM: the persona's take-a-message policy, driven by STT results.

A turn's text is cut for the TTS by the same ``ReplyChunker`` as an LLM's reply, so a persona
speaks in the same pieces with or without an LLM.
"""

from __future__ import annotations

from config.persona_schema import PersonaConfig
from daemon.dialogue.interface import ReplyOutcome, TextFeed
from daemon.dialogue.message_slots import MessageSlots
from daemon.dialogue.reply_chunker import ReplyChunker
from daemon.dialogue.take_message_policy import PolicyTurn, TakeMessagePolicy


class ScriptedDialogue:
    kind = "scripted"

    def __init__(self, persona: PersonaConfig, caller: str | None, slots: MessageSlots | None = None) -> None:
        self.language = persona.language
        self.policy = TakeMessagePolicy(
            persona.language, asks=tuple(persona.asks), goodbye=persona.goodbye, caller_number=caller, slots=slots
        )

    @property
    def slots(self) -> MessageSlots:
        return self.policy.slots

    async def prepare(self) -> None:
        pass  # nothing to load: the policy is rules

    async def respond(self, caller_text: str, feed: TextFeed, outcome: ReplyOutcome) -> None:
        self._deliver(self.policy.hear(caller_text), feed, outcome)

    async def prompt_after_silence(self, feed: TextFeed, outcome: ReplyOutcome) -> None:
        self._deliver(self.policy.on_silence(), feed, outcome)

    async def next_question(self, feed: TextFeed, outcome: ReplyOutcome) -> None:
        """Ask for what is still missing (after DTMF 'leave a message' or a switch from the LLM)."""
        self._deliver(self.policy.next_question(), feed, outcome)

    def heard(self, planned: str, heard: str) -> None:
        pass  # the policy re-asks on silence; nothing to rewrite

    def summary(self) -> str:
        return self.policy.summary()

    def _deliver(self, turn: PolicyTurn, feed: TextFeed, outcome: ReplyOutcome) -> None:
        chunker = ReplyChunker(self.language)
        for chunk in chunker.feed(turn.say):
            feed.put(chunk)
        for chunk in chunker.flush():
            feed.put(chunk)
        outcome.source = "scripted"
        outcome.end_call = turn.done
        if turn.outcome != "in_progress":
            outcome.outcome = turn.outcome
