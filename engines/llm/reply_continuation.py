"""Continuing a reply on another backend after the first failed mid-stream.

The caller has already heard part of the reply, so the next backend gets the
original messages, the partial reply as an assistant turn and a user turn
asking to continue without repeating (``continuation_request``). Models
often repeat anyway, so ``RepeatStripper`` holds the new text back while it
could still be a repetition of what was said and drops the repeated part:
either the whole partial reply or a tail of it (from a word boundary, at
least ``min_overlap`` characters, so a coincidental short word is kept).
"""

from __future__ import annotations

from dataclasses import replace

from engines.llm.interface import ChatMessage, ChatRequest

CONTINUE_INSTRUCTION = (
    "Your previous reply was cut off. Continue it from exactly where it stopped. "
    "Do not repeat anything you already said and do not comment on the interruption."
)


def continuation_request(request: ChatRequest, said: str, delivered_pieces: int) -> ChatRequest:
    """``request`` extended so a backend continues the reply ``said``; the token budget shrinks by what was said."""
    if not said:
        return request
    messages = (*request.messages, ChatMessage("assistant", said), ChatMessage("user", CONTINUE_INSTRUCTION))
    max_tokens = None if request.max_tokens is None else max(1, request.max_tokens - delivered_pieces)
    return replace(request, messages=messages, max_tokens=max_tokens)


class RepeatStripper:
    """Feed the continuation's text; get back what is new (possibly later than it arrived)."""

    def __init__(self, said: str, *, min_overlap: int = 8) -> None:
        self._said = said.rstrip()
        self._held = ""
        self._decided = not self._said
        shortest = min(min_overlap, len(self._said))
        self._starts = [
            i
            for i in range(len(self._said))
            if (i == 0 or self._said[i - 1].isspace()) and not self._said[i].isspace() and len(self._said) - i >= shortest
        ]

    def feed(self, text: str) -> str:
        if self._decided:
            return text
        self._held += text
        candidate = self._held.lstrip()
        if not candidate:
            return ""
        if any(self._said.startswith(candidate, i) for i in self._starts):
            return ""  # still reads like a repetition: wait for more
        self._decided = True
        held, self._held = self._held, ""
        repeated = [i for i in self._starts if candidate.startswith(self._said[i:])]
        if not repeated:
            return held
        return candidate[len(self._said) - min(repeated) :]

    def finish(self) -> str:
        """End of the continuation: text still held repeated what was said, so it is dropped."""
        self._decided = True
        self._held = ""
        return ""
