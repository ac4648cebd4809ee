"""One answer from the secretary: the bus command ``cmd/chat`` for a visitor's message, streamed.

The widget's persona (or the box's default) answers with the session's last
``history_turns`` exchanges as context and the widget's LLM backends. Pieces
of the answer reach ``on_delta`` as the model writes them. Whatever goes
wrong comes back as a polite ``Reply`` the visitor can read; the details go
to the log, never to the visitor. Without a conversational model the visitor
is offered the call-back hand-off instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.bus_client import BusUnavailable, ChannelBus, CommandFailed
from channels.bus_contract.verbs import CHAT

log = logging.getLogger("secretary.channels.widget")

CHAT_TIMEOUT_S = 200.0  # the daemon gives a chat answer 180 s
NO_LLM_TEXT = "Sorry, I can't chat right now, but leave your number and we will call you back."
FAILED_TEXT = "Sorry, I could not answer that just now. Please try again, or leave your number and we will call you back."
UNREACHABLE_TEXT = "Sorry, the secretary is not reachable right now. Please try again in a minute."
EMPTY_TEXT = "Sorry, I have no answer to that. Could you put it another way?"


@dataclass(frozen=True)
class Reply:
    kind: str  # "done": an answer (kept in the history when ``answered``); "error": nothing was answered
    text: str
    handoff: bool = False  # offer "leave your number"
    answered: bool = False


@dataclass(frozen=True)
class ChatRequest:
    persona: str
    history: list[dict[str, str]]
    text: str
    llm: list[str] | None
    session: str  # for the box's logs

    def args(self) -> dict[str, Any]:
        return {"persona": self.persona, "history": self.history, "text": self.text, "llm": self.llm,
                "voice_reply": False, "session": self.session, "audience": "visitor"}


async def ask(bus: ChannelBus, request: ChatRequest, on_delta: Callable[[str], None]) -> Reply:
    def partial(value: Any) -> None:
        if isinstance(value, dict) and isinstance(value.get("delta"), str) and value["delta"]:
            on_delta(value["delta"])

    try:
        result = await bus.request(CHAT, request.args(), timeout_s=CHAT_TIMEOUT_S, on_partial=partial)
    except CommandFailed as exc:
        if exc.code == "no_llm":
            log.info("widget chat without a conversational model", extra={"session": request.session})
            return Reply("done", NO_LLM_TEXT, handoff=True)
        log.warning("widget chat failed", extra={"session": request.session, "code": exc.code, "error": exc.message})
        return Reply("error", FAILED_TEXT, handoff=True)
    except (BusUnavailable, TimeoutError) as exc:
        log.warning("widget chat: the box is not reachable", extra={"session": request.session, "error": repr(exc)})
        return Reply("error", UNREACHABLE_TEXT)
    answer = str(result.get("text") or "").strip() if isinstance(result, dict) else ""
    if not answer:
        return Reply("error", EMPTY_TEXT)
    return Reply("done", answer, answered=True)
