"""What the secretary says next: the shared shape of the scripted and the LLM dialogue.

A ``Reply`` is started by the call flow and produces text chunks into a
``TextFeed`` (the speaker reads them while later ones are still being
written); the flow may put a phrase synthesized beforehand in it too. When
the producer is done, ``Reply.outcome`` says whether the call should end and
how it went. Both dialogues fill the same ``MessageSlots``, so
the call record and the owner's notification look the same either way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from daemon.dialogue.message_slots import MessageSlots
from daemon.voices.phrase_cache import CachedSpeech


class TextFeed:
    """An async stream of text chunks (or cached phrases) with a producer that may run ahead of the reader."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | CachedSpeech | None] = asyncio.Queue()
        self.closed = False

    def put(self, text: str) -> None:
        if not self.closed and text.strip():
            self._queue.put_nowait(text)

    def put_speech(self, speech: CachedSpeech) -> None:
        """A phrase synthesized beforehand: played as it is, without the TTS."""
        if not self.closed:
            self._queue.put_nowait(speech)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def next(self) -> str | CachedSpeech | None:
        """The next chunk; None at the end."""
        return await self._queue.get()


@dataclass
class ReplyOutcome:
    end_call: bool = False
    outcome: str | None = None  # message_taken | declined | None (the conversation goes on)
    source: str = "scripted"  # scripted | llm:<backend label>


class DialogueUnavailable(Exception):
    """The LLM could not produce a reply (every backend failed): fall back to the scripted policy."""


class Dialogue(Protocol):
    slots: MessageSlots
    kind: str

    async def prepare(self) -> None:
        """At the start of the call (the greeting is playing): get ready for the first reply."""

    async def respond(self, caller_text: str, feed: TextFeed, outcome: ReplyOutcome) -> None:
        """Write the reply to ``caller_text`` into ``feed`` (not closing it) and fill ``outcome``."""

    async def prompt_after_silence(self, feed: TextFeed, outcome: ReplyOutcome) -> None:
        """The caller has been quiet: a gentle prompt."""

    def heard(self, planned: str, heard: str) -> None:
        """What the caller actually heard of the last reply (it may have been cut by barge-in)."""
