"""The one-paragraph summary of a call for the owner: who called, why, what they want, callback number.

With a conversational LLM the summary is written by it from the transcript
(bounded by a timeout); otherwise, or when that fails, it is composed from
the message slots, which both dialogues fill. Either way it is one short
paragraph in the persona's language. A transcript too long for the model's
context window loses lines from its middle: how the call began (who, why)
and how it ended (what was agreed) stay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from daemon.dialogue.message_slots import MessageSlots
from daemon.dialogue.spoken_fields.reasons import is_governed_reason
from daemon.records.call_record import Utterance
from engines.fallback_chain import BackendError, RequestError
from engines.llm.interface import ChatMessage, ChatRequest
from engines.llm.llm_engine import LlmEngine

log = logging.getLogger("secretary.call")

_INSTRUCTION = {
    "en": (
        "Summarize this phone call for the person the caller wanted, in one or two English sentences: "
        "who called, why, what they want, and the callback number. Only facts from the transcript."
    ),
    "ru": (
        "Кратко, в одном-двух предложениях по-русски, перескажи этот звонок для того, кому звонили: "
        "кто звонил, зачем, чего хочет и номер для обратного звонка. Только факты из расшифровки."
    ),
}


def slots_summary(slots: MessageSlots, caller: str | None, language: str) -> str:
    """A summary from the message slots alone (no LLM)."""
    name, reason, number = slots.name, slots.reason, slots.callback_number
    if language == "ru":
        who = name or "Звонящий не представился"
        parts = [f"{who}{' ' + _ru_from(caller) if caller else ''}."]
        if reason and is_governed_reason(reason, language):
            parts.append(f"{reason[0].upper()}{reason[1:]}.")  # "По поводу счёта."
        else:
            parts.append(f"Тема: {reason}." if reason else "Тему звонка не назвал.")
        parts.append(f"Перезвонить: {number}." if number else "Номер для обратного звонка не оставил.")
        return " ".join(parts)
    who = name or "The caller did not give a name"
    parts = [f"{who}{f' (calling from {caller})' if caller else ''}."]
    parts.append(f"About: {reason}." if reason else "They did not say what it is about.")
    parts.append(f"Call back on {number}." if number else "No callback number was left.")
    return " ".join(parts)


def _ru_from(caller: str) -> str:
    return f"(звонил с номера {caller})"


def transcript_text(utterances: Sequence[Utterance]) -> str:
    lines = []
    for u in utterances:
        who = "Caller" if u.role == "caller" else "Secretary"
        lines.append(f"{who}: {u.text}{' [interrupted]' if u.interrupted else ''}")
    return "\n".join(lines)


async def llm_summary(
    llm: LlmEngine,
    chain: Sequence[str] | None,
    utterances: Sequence[Utterance],
    slots: MessageSlots,
    language: str,
    timeout_s: float,
) -> str | None:
    """The LLM's summary, or None when it fails, is empty or takes longer than ``timeout_s``."""
    if not any(u.role == "caller" for u in utterances):
        return None
    known = ", ".join(f"{k}: {v}" for k, v in slots.as_dict().items() if v)
    lines = transcript_text(utterances).split("\n")

    def request_leaving_out(middle: int) -> ChatRequest:
        kept = lines
        if middle:
            start = (len(lines) - middle) // 2
            kept = [*lines[:start], f"[... {middle} lines of the call left out ...]", *lines[start + middle:]]
        transcript = "\n".join(kept)
        return ChatRequest(
            messages=(
                ChatMessage("system", _INSTRUCTION.get(language, _INSTRUCTION["en"])),
                ChatMessage("user", transcript + (f"\n\nMessage fields: {known}" if known else "")),
            ),
            max_tokens=120,
            temperature=0.2,
        )

    request = await asyncio.to_thread(_fitting, request_leaving_out, len(lines), llm, chain)
    try:
        async with asyncio.timeout(timeout_s):
            reply = await llm.complete(request, chain)
    except (TimeoutError, BackendError, RequestError) as exc:
        log.warning("llm summary failed; using the message fields", extra={"error": str(exc) or type(exc).__name__})
        return None
    text = reply.text.strip()
    return text or None


def _fitting(
    leaving_out: Callable[[int], ChatRequest], lines: int, llm: LlmEngine, chain: Sequence[str] | None,
) -> ChatRequest:
    """The request with the fewest middle lines left out that fits the serving model (first and last line stay)."""
    if llm.fit(leaving_out(0), chain).fits:
        return leaving_out(0)
    low, high = 1, max(lines - 2, 1)  # binary search: leaving out ``high`` lines is assumed to fit
    while low < high:
        middle = (low + high) // 2
        if llm.fit(leaving_out(middle), chain).fits:
            high = middle
        else:
            low = middle + 1
    log.info("call transcript shortened for the summary", extra={"lines": lines, "left_out": high})
    return leaving_out(high)
