"""The dialogue with an LLM: the persona's prompt, the conversation so far, and two tools.

The model writes the spoken reply as streamed text (chunked into clauses and
sentences for the TTS as it arrives) and acts through tools, never through
phrases in its prose: ``save_message`` fills the message slots (the same ones
the scripted policy fills) and ``end_call`` ends the call after the reply is
spoken. A reply that is only a tool call gets one more round so the caller
hears something. When every backend fails, ``DialogueUnavailable`` tells the
call flow to apologise and continue with the scripted policy.

A call that outgrows the model's context window leaves out its oldest turns
(``context_fit``), down to ``HISTORY_FILL`` of the room the conversation
has, so the next turns reuse the same prompt; what the caller told so far
stays, as a note of the message slots after the persona's prompt.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

from config.persona_schema import PersonaConfig
from daemon.dialogue.interface import DialogueUnavailable, ReplyOutcome, TextFeed
from daemon.dialogue.message_slots import MessageSlots
from daemon.dialogue.reply_chunker import ReplyChunker
from engines.fallback_chain import ChainExhausted, RequestError
from engines.llm.interface import ChatMessage, ChatRequest, ToolCall, ToolSpec
from engines.llm.llm_engine import LlmEngine
from engines.llm.reply_assembly import ToolCallAccumulator

log = logging.getLogger("secretary.call")

LANGUAGE_NAMES = {"en": "English", "ru": "Russian"}

SAVE_MESSAGE = ToolSpec(
    name="save_message",
    description="Store the caller's message for the owner. Call it as soon as you learn any of these; call it again to correct them.",
    parameters={
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "the caller's name"},
            "reason": {"type": "string", "description": "what the call is about, in a short phrase"},
            "callback_number": {"type": "string", "description": "the phone number to call back, digits only"},
        },
    },
)
END_CALL = ToolSpec(
    name="end_call",
    description="Hang up after your reply has been spoken. Use it when the conversation is finished and you have said goodbye.",
    parameters={"type": "object", "properties": {"reason": {"type": "string"}}},
)
SILENCE_PROMPT = {"en": "(the caller has been silent for a while)", "ru": "(звонящий давно молчит)"}
HISTORY_FILL = 0.6  # a trimmed call keeps this share of the room its conversation has in the window
SLOT_LABELS = {"name": "name", "reason": "reason", "callback_number": "callback number"}


def system_prompt(persona: PersonaConfig, caller: str | None, now: float | None = None) -> str:
    lines = [persona.system_prompt.strip(), ""]
    if persona.facts:
        lines.append("Facts you may share:")
        lines.extend(f"- {fact}" for fact in persona.facts)
        lines.append("")
    asks = ", ".join(a.replace("_", " ") for a in persona.asks)
    lines += [
        f"Ask the caller for: {asks}.",
        f"The caller's number (caller ID): {caller or 'withheld'}.",
        f"Today is {time.strftime('%A %Y-%m-%d', time.localtime(now))}.",
        f"Always answer in {LANGUAGE_NAMES.get(persona.language, persona.language)}, briefly, as spoken words.",
    ]
    return "\n".join(lines)


class LlmDialogue:
    kind = "llm"

    def __init__(
        self,
        llm: LlmEngine,
        persona: PersonaConfig,
        caller: str | None,
        *,
        max_tokens: int = 200,
        temperature: float = 0.6,
        slots: MessageSlots | None = None,
    ) -> None:
        self.llm = llm
        self.persona = persona
        self.slots = slots if slots is not None else MessageSlots()
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.messages: list[ChatMessage] = [
            ChatMessage("system", system_prompt(persona, caller)),
            ChatMessage("assistant", persona.greeting),
        ]

    @property
    def chain(self) -> Sequence[str] | None:
        return self.persona.llm.chain

    async def prepare(self) -> None:
        """While the greeting plays: have a local model evaluate the call's prompt (persona, tools, greeting).

        The previous call's summary or a Telegram chat left another prompt in
        the model's cache; without this the first reply of every call would pay
        the whole prompt's prefill before its first word.
        """
        started = time.monotonic()
        primed = await self.llm.prime(self._request(), self.chain)
        if primed is not None:
            log.info("llm prompt primed", extra={"backend": primed, "ms": round((time.monotonic() - started) * 1000)})

    async def respond(self, caller_text: str, feed: TextFeed, outcome: ReplyOutcome) -> None:
        self.messages.append(ChatMessage("user", caller_text))
        await self._rounds(feed, outcome)

    async def prompt_after_silence(self, feed: TextFeed, outcome: ReplyOutcome) -> None:
        self.messages.append(ChatMessage("user", SILENCE_PROMPT.get(self.persona.language, SILENCE_PROMPT["en"])))
        await self._rounds(feed, outcome)

    def heard(self, planned: str, heard: str) -> None:
        """Make the history say what the caller actually heard of the last reply.

        A reply cut while the model was still writing it has no assistant
        message yet (after the caller's turn): the heard words become one.
        """
        cut = heard if planned == heard else (
            f"{heard} [interrupted by the caller]" if heard else "[interrupted by the caller before speaking]")
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.role == "assistant":
                if planned != heard:
                    self.messages[index] = ChatMessage("assistant", cut, tool_calls=message.tool_calls)
                return
            if message.role == "user":
                if heard or planned != heard:
                    self.messages.append(ChatMessage("assistant", cut))
                return

    async def _rounds(self, feed: TextFeed, outcome: ReplyOutcome) -> None:
        for _ in range(2):
            spoke = await self._round(feed, outcome)
            if spoke or outcome.end_call:
                return

    def _request(self) -> ChatRequest:
        return ChatRequest(
            messages=tuple(self.messages),
            tools=(SAVE_MESSAGE, END_CALL),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            persona=self.persona.llm.lora,
        )

    def _fit_history(self) -> ChatRequest:
        """The request for this round; a history too long for the serving model loses its oldest turns for good."""
        fitted = self.llm.fit(self._request(), self.chain, fill=HISTORY_FILL)
        if not fitted.trimmed:
            return fitted.request
        kept = [m for m in fitted.request.messages if m.role != "system"]
        self.messages = [self.messages[0], *self._earlier_note(), *kept]
        log.info("llm history trimmed", extra={"dropped_messages": fitted.dropped_messages, "kept_messages": len(kept),
                                               "prompt_tokens": fitted.prompt_tokens})
        return self._request()

    def _earlier_note(self) -> list[ChatMessage]:
        known = {slot: value for slot, value in self.slots.as_dict().items() if value}
        if not known:
            return []
        told = "; ".join(f"{SLOT_LABELS.get(slot, slot)}: {value}" for slot, value in known.items())
        return [ChatMessage("system", f"Earlier in this call (no longer shown) the caller gave: {told}.")]

    async def _round(self, feed: TextFeed, outcome: ReplyOutcome) -> bool:
        request = self._fit_history()
        chunker = ReplyChunker(self.persona.language)
        tools = ToolCallAccumulator()
        said: list[str] = []
        try:
            async with contextlib.aclosing(self.llm.stream(request, self.chain)) as deltas:
                async for delta in deltas:
                    if outcome.source == "scripted":
                        outcome.source = f"llm:{self._serving()}"
                    for fragment in delta.tool_calls:
                        tools.add(fragment)
                    if delta.text:
                        said.append(delta.text)
                        for chunk in chunker.feed(delta.text):
                            feed.put(chunk)
            for chunk in chunker.flush():
                feed.put(chunk)
        except (ChainExhausted, RequestError) as exc:
            raise DialogueUnavailable(str(exc)) from exc
        text = "".join(said).strip()
        calls = tools.calls()
        self.messages.append(ChatMessage("assistant", text, tool_calls=calls))
        for call in calls:
            self.messages.append(ChatMessage("tool", self._apply(call, outcome), tool_call_id=call.id))
        return bool(text)

    def _serving(self) -> str:
        try:
            return self.llm.label_of(self.llm.chain.active)
        except Exception:  # the chain moved on between the delta and this question
            return "?"

    def _apply(self, call: ToolCall, outcome: ReplyOutcome) -> str:
        try:
            arguments = call.parsed_arguments()
            if call.name == "save_message":
                changed = self.slots.merge(arguments)
                missing = self.slots.missing(self.persona.asks)
                return f"saved {', '.join(changed) or 'nothing new'}; still missing: {', '.join(missing) or 'nothing'}"
            if call.name == "end_call":
                outcome.end_call = True
                outcome.outcome = "message_taken" if not self.slots.missing(self.persona.asks) else "ended_by_secretary"
                return "the call will end after your reply"
        except ValueError as exc:
            log.warning("llm tool call rejected", extra={"tool": call.name, "error": str(exc)})
            return f"error: {exc}"
        return f"error: there is no tool named {call.name!r}"
