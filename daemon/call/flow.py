"""One answered call, from the greeting to the hang-up: the conductor of ears, dialogue and mouth.

The flow reacts to events in one loop, so every decision is made in one
place and in order:

- caller speech starts -> barge-in: the reply being spoken is faded out
  within ``fade_ms``, its LLM/TTS work cancelled, and the transcript keeps
  only the words the caller heard (``interrupted``);
- the caller stops (the endpoint) -> the answer starts at once: it waits
  for the STT final, the dialogue writes the reply, the speaker speaks it
  while it is still being written. If no reply audio has gone out
  ``filler_after_ms`` after the endpoint (the STT, the LLM or the TTS is
  slow), a short filler is played so the line never goes quiet. If the
  caller goes on talking before any answer was written, the waiting answer
  is withdrawn and the next one answers everything they said;
- DTMF -> ``leave_message`` switches to the scripted take-a-message policy,
  ``end_call`` says goodbye and hangs up;
- silence -> a prompt, then goodbye; ``max_duration_s`` -> goodbye;
- the LLM fails mid-call -> an apology and the scripted policy from there on,
  keeping the message slots filled so far;
- the caller hangs up -> everything stops; their last words are still
  transcribed;
- the daemon stops (``stop``) -> what is being said fades out, goodbye,
  hang up.

Every task (listener, reply) is owned by the flow's TaskGroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from config.call_schema import CallConfig
from config.persona_schema import PersonaConfig
from daemon.call.line import CallLine
from daemon.call.listener import (
    CallerListener,
    CallerNoise,
    CallerPartial,
    CallerSpeechStarted,
    CallerStopped,
    CallerUtterance,
    ListenerEvent,
)
from daemon.call.speaker import HEARD_BY, ReplyProgress, Speaker
from daemon.dialogue.interface import Dialogue, DialogueUnavailable, ReplyOutcome, TextFeed
from daemon.dialogue.message_slots import MessageSlots
from daemon.dialogue.scripted_dialogue import ScriptedDialogue
from daemon.records.call_record import ENDED_BY_SILENCE, TurnStages, Utterance
from daemon.voices.phrase_cache import CachedSpeech

log = logging.getLogger("secretary.call")

LISTENER_DRAIN_S = 6.0  # after a hang-up: time for the caller's last words to be transcribed
STOP_DRAIN_S = 1.0  # the same when the daemon is stopping (its whole stop is bounded)


@dataclass
class CallPhrases:
    """The persona's phrases, pre-synthesized at line rate (None: synthesize when needed)."""

    greeting: CachedSpeech | None = None
    goodbye: CachedSpeech | None = None
    apology: CachedSpeech | None = None  # the LLM failed: "let me just take a message"
    pardon: CachedSpeech | None = None  # the STT heard nothing usable
    fillers: tuple[CachedSpeech, ...] = ()


@dataclass
class TurnTiming:
    """Latency of one reply, as monotonic times (None: the stage did not happen)."""

    speech_end_at: float  # monotonic: the caller's last voiced audio (the VAD's end minus its padding)
    endpoint_at: float
    caller_text: str = ""
    final_at: float | None = None  # the (last) STT final the reply answers
    stt_engine_s: float | None = None  # the STT's own decode time for it (it may have begun before the endpoint)
    first_text_at: float | None = None
    first_tts_at: float | None = None
    first_audio_at: float | None = None
    filler: bool = False
    interrupted: bool = False
    ended_by: str = ENDED_BY_SILENCE  # how the turn was judged over (the listener's CallerStopped.ended_by)
    reply_audio_at: float | None = None  # the reply's own first frame (after fillers; == first_audio_at without)
    fillers: int = 0

    def stages(self, t0: float) -> TurnStages:
        """The turn for the call record: these times in seconds from ``t0`` (the call's audio zero)."""
        def at(value: float | None) -> float | None:
            return None if value is None else value - t0

        return TurnStages(
            speech_end_s=self.speech_end_at - t0, endpoint_s=self.endpoint_at - t0, ended_by=self.ended_by,
            stt_final_s=at(self.final_at), first_text_s=at(self.first_text_at), first_audio_s=at(self.first_audio_at),
            reply_audio_s=at(self.reply_audio_at), fillers=self.fillers,
        )

    def as_dict(self) -> dict[str, float | str | bool | None]:
        def ms(at: float | None, since: float) -> float | None:
            return None if at is None else round((at - since) * 1000, 1)

        return {
            "caller_text": self.caller_text,
            "endpoint_ms": ms(self.endpoint_at, self.speech_end_at),
            "voice_to_voice_ms": ms(self.first_audio_at, self.speech_end_at),
            "stt_ms": ms(self.final_at, self.endpoint_at),
            "stt_engine_ms": None if self.stt_engine_s is None else round(self.stt_engine_s * 1000, 1),
            "first_text_ms": ms(self.first_text_at, self.endpoint_at),
            "first_tts_ms": ms(self.first_tts_at, self.endpoint_at),
            "first_audio_ms": ms(self.first_audio_at, self.endpoint_at),
            "filler": self.filler,
            "interrupted": self.interrupted,
        }


@dataclass
class CallResult:
    outcome: str
    end_reason: str
    slots: MessageSlots
    dialogue: str
    turns: list[TurnTiming] = field(default_factory=list)
    transcript: list[Utterance] = field(default_factory=list)


# -- events the loop reacts to (besides the listener's) -----------------------------------


@dataclass(frozen=True)
class _Dtmf:
    digit: str


@dataclass(frozen=True)
class _HungUp:
    reason: str


@dataclass(frozen=True)
class _ReplyDone:
    reply: _Reply


@dataclass(frozen=True)
class _Stop:
    reason: str


@dataclass
class _CallerTurn:
    """A caller turn not answered yet: it has stopped; its transcript may still be on its way."""

    stopped: CallerStopped
    heard: asyncio.Future[CallerUtterance]


@dataclass
class _Reply:
    kind: str  # greeting | answer | prompt | goodbye | apology | pardon
    progress: ReplyProgress
    start_s: float
    outcome: ReplyOutcome = field(default_factory=ReplyOutcome)
    failed: str | None = None  # the dialogue became unavailable mid-reply
    timing: TurnTiming | None = None
    task: asyncio.Task[None] | None = None
    interruptible: bool = True
    answers: list[_CallerTurn] = field(default_factory=list)  # an answer: the caller turns it answers
    written: bool = True  # the dialogue has begun the reply (False: an answer still waiting for its transcripts)


_Produce = Callable[["_Reply", TextFeed], Awaitable[None]]


_Event = ListenerEvent | _Dtmf | _HungUp | _ReplyDone | _Stop


class CallFlow:
    def __init__(
        self,
        *,
        call_id: str,
        caller: str | None,
        persona: PersonaConfig,
        config: CallConfig,
        line: CallLine,
        speaker: Speaker,
        listener_factory: Callable[[Callable[[ListenerEvent], None]], CallerListener],
        dialogue: Dialogue,
        phrases: CallPhrases,
        on_utterance: Callable[[Utterance, TurnTiming | None], None],
        hangup: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_id = call_id
        self.caller = caller
        self.persona = persona
        self.config = config
        self.line = line
        self.speaker = speaker
        self._listener_factory = listener_factory
        self.dialogue = dialogue
        self.phrases = phrases
        self._on_utterance = on_utterance
        self._hangup = hangup
        self._clock = clock
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._t0 = clock()
        self._reply: _Reply | None = None
        self._caller_speaking = False
        self._unspoken_turn: TurnTiming | None = None  # an answer whose dialogue failed unheard: the apology's turn
        self._last_activity = self._t0
        self._silence_prompted = False
        self._ending: str | None = None  # end reason once the flow decided to end
        self._hung_up: str | None = None
        self._outcome: str | None = None
        self._unanswered: list[_CallerTurn] = []  # in order; their transcripts may still be coming
        self._tasks: asyncio.TaskGroup | None = None
        self._drain_s = LISTENER_DRAIN_S
        self.result = CallResult(outcome="in_progress", end_reason="", slots=dialogue.slots, dialogue=dialogue.kind)

    # -- inputs from the modem ----------------------------------------------------------
    def dtmf(self, digit: str) -> None:
        self._events.put_nowait(_Dtmf(digit))

    def hung_up(self, reason: str = "caller_hung_up") -> None:
        self._events.put_nowait(_HungUp(reason))

    def stop(self, reason: str) -> None:
        """End the call from outside (the daemon stops): goodbye, hang up, a short wait for the caller's last words."""
        self._drain_s = min(self._drain_s, STOP_DRAIN_S)
        self._events.put_nowait(_Stop(reason))

    def now_s(self) -> float:
        return self._clock() - self._t0

    # -- the loop -----------------------------------------------------------------------
    async def run(self) -> CallResult:
        listener = self._listener_factory(self._events.put_nowait)
        max_end = self._t0 + self.config.max_duration_s
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            listening = tasks.create_task(listener.run(self.line.caller_audio()), name=f"listen-{self.call_id}")
            preparing = tasks.create_task(self._prepare_dialogue(), name=f"prepare-{self.call_id}")
            self._start_reply("greeting", cached=self.phrases.greeting, text=self.persona.greeting, interruptible=True)
            while self._hung_up is None:
                deadline = self._silence_deadline() if self._ending is not None else min(self._silence_deadline(), max_end)
                timeout = None if deadline == float("inf") else max(0.0, deadline - self._clock())
                try:
                    async with asyncio.timeout(timeout):
                        event = await self._events.get()
                except TimeoutError:
                    if self._clock() >= max_end and self._ending is None:
                        await self._end("max_duration")
                    elif self._ending is None:
                        await self._on_silence()
                    continue
                await self._handle(event)
            preparing.cancel()
            await self._stop_reply()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._drain_s):
                    await asyncio.shield(listening)
                    while not self._events.empty():
                        leftover = self._events.get_nowait()
                        if isinstance(leftover, CallerUtterance):
                            self._record_caller(leftover)
            listening.cancel()
        self._finish_result()
        return self.result

    async def _prepare_dialogue(self) -> None:
        try:
            await self.dialogue.prepare()
        except Exception:  # an optimisation: the first reply works without it
            log.exception("preparing the dialogue failed", extra={"call_id": self.call_id})

    def _silence_deadline(self) -> float:
        if self._reply is not None or self._caller_speaking or self._ending is not None:
            return float("inf")
        window = self.config.silence_hangup_s if self._silence_prompted else self.config.silence_prompt_s
        return self._last_activity + window

    async def _handle(self, event: _Event) -> None:
        match event:
            case CallerSpeechStarted():
                self._caller_speaking = True
                reply = self._reply
                if reply is not None and not reply.written and not reply.progress.segments:
                    await self._withdraw(reply)  # the caller goes on: answer all of it once they stop
                elif reply is not None and reply.interruptible and self.config.barge_in.enabled:
                    await self._barge_in()
            case CallerStopped():
                self._caller_speaking = False
                self._last_activity = self._clock()
                self._silence_prompted = False
                if self._ending is None:
                    self._unanswered.append(_CallerTurn(event, asyncio.get_running_loop().create_future()))
                    reply = self._reply
                    if reply is not None and not reply.written:
                        await self._withdraw(reply)
                    elif reply is not None and reply.interruptible:
                        await self._barge_in()
                    if self._reply is None:
                        self._answer()
            case CallerUtterance():
                self._last_activity = self._clock()
                self._record_caller(event)
                turn = next((t for t in self._unanswered if t.stopped.seq == event.seq), None)
                if turn is not None and not turn.heard.done():
                    turn.heard.set_result(event)
            case CallerNoise():
                self._caller_speaking = False
                if self._reply is None and self._unanswered and self._ending is None:
                    self._answer()  # a cough withdrew the answer being prepared: prepare it again
            case CallerPartial():
                pass
            case _Dtmf(digit=digit):
                await self._on_dtmf(digit)
            case _HungUp(reason=reason):
                self._hung_up = reason
                self.line.end_inbound()
                if self._ending is None:
                    self._ending = reason
            case _ReplyDone(reply=reply):
                await self._reply_done(reply)
            case _Stop(reason=reason):
                await self._end(reason)

    # -- replies ------------------------------------------------------------------------
    def _answer(self) -> None:
        """Answer every unanswered caller turn; the reply starts now, while their transcripts are still coming."""
        turns = list(self._unanswered)
        last = turns[-1].stopped
        timing = TurnTiming(self._t0 + last.voiced_end_s, last.endpoint_at, ended_by=last.ended_by)
        self._start_reply("answer", produce=self._respond, timing=timing, answers=turns)

    async def _respond(self, reply: _Reply, feed: TextFeed) -> None:
        heard = [await asyncio.shield(turn.heard) for turn in reply.answers]  # shielded: a withdrawn answer
        for turn in reply.answers:  # leaves the transcripts for the next one
            self._unanswered.remove(turn)
        reply.written = True
        timing = reply.timing
        assert timing is not None
        timing.caller_text = " ".join(h.text for h in heard if h.text)
        timing.final_at = max(h.final_at for h in heard)
        timing.stt_engine_s = heard[-1].stt_s
        self.result.turns.append(timing)
        if not timing.caller_text:
            reply.outcome.source = "pardon"
            if self.phrases.pardon is not None:
                feed.put_speech(self.phrases.pardon)
            else:
                feed.put(_PARDON[self.persona.language])
            return
        await self.dialogue.respond(timing.caller_text, feed, reply.outcome)

    def _start_reply(
        self,
        kind: str,
        *,
        cached: CachedSpeech | None = None,
        text: str | None = None,
        produce: _Produce | None = None,
        timing: TurnTiming | None = None,
        interruptible: bool = True,
        answers: list[_CallerTurn] | None = None,
    ) -> None:
        assert self._tasks is not None and self._reply is None
        reply = _Reply(
            kind, self.speaker.begin(), self.now_s(), timing=timing, interruptible=interruptible,
            answers=answers or [], written=not answers,
        )
        self._reply = reply
        reply.task = self._tasks.create_task(self._speak(reply, cached, text, produce), name=f"reply-{kind}")

    async def _speak(
        self,
        reply: _Reply,
        cached: CachedSpeech | None,
        text: str | None,
        produce: _Produce | None,
    ) -> None:
        progress = reply.progress
        try:
            if cached is not None:
                await self.speaker.say_cached(cached, progress)
            elif text is not None and produce is None:
                await self.speaker.say(_one(text), progress)
            if produce is not None:
                feed = TextFeed()
                async with asyncio.TaskGroup() as work:
                    work.create_task(self._produce(reply, produce, feed))
                    filling = work.create_task(self._fill_silence(reply))
                    await self.speaker.say(self._timed(reply, feed), progress)
                    filling.cancel()
        except Exception:
            # a failed reply must not end the call: log it and let the loop go on
            log.exception("reply failed", extra={"call_id": self.call_id, "reply": reply.kind})
        finally:
            if not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                self._events.put_nowait(_ReplyDone(reply))

    async def _produce(self, reply: _Reply, produce: _Produce, feed: TextFeed) -> None:
        try:
            await produce(reply, feed)
        except DialogueUnavailable as exc:
            log.warning("dialogue unavailable; switching to the scripted policy", extra={"call_id": self.call_id, "error": str(exc)})
            reply.failed = str(exc)
        finally:
            feed.close()

    async def _timed(self, reply: _Reply, feed: TextFeed) -> AsyncIterator[str | CachedSpeech]:
        """The feed's pieces, noting when the first one came."""
        while (piece := await feed.next()) is not None:
            if reply.timing is not None and reply.timing.first_text_at is None and not reply.progress.started:
                reply.timing.first_text_at = self._clock()
            yield piece

    async def _fill_silence(self, reply: _Reply) -> None:
        """A filler each time the line has been quiet ``filler_after_ms`` with none of the reply's audio out.

        For an answer the clock starts at the caller's endpoint, so a slow STT
        final counts as much as a slow LLM or TTS.
        """
        fillers = list(self.phrases.fillers)
        quiet_since = reply.timing.endpoint_at if reply.timing is not None and reply.kind == "answer" else self._clock()
        limit = self.config.filler_after_ms / 1000
        while fillers:
            await asyncio.sleep(max(0.0, quiet_since + limit - self._clock()))
            filler = fillers.pop(0)
            if not await self.speaker.interject(filler, reply.progress):
                return  # the reply's own audio has begun
            if reply.timing is not None:
                reply.timing.filler = True
            quiet_since = self._clock() + filler.seconds

    async def _withdraw(self, reply: _Reply) -> None:
        """Drop an answer still waiting for its transcripts (its caller turns stay unanswered)."""
        if reply.progress.segments:
            self.speaker.cut(self.config.barge_in.fade_ms)  # a filler is playing
        await self._cancel(reply)
        self._close_reply(reply, interrupted=True)

    async def _barge_in(self) -> None:
        reply = self._reply
        if reply is None:
            return
        log.info("barge-in", extra={"call_id": self.call_id, "reply": reply.kind})
        self.speaker.cut(self.config.barge_in.fade_ms)
        await self._cancel(reply)
        self._close_reply(reply, interrupted=True)

    async def _stop_reply(self) -> None:
        reply = self._reply
        if reply is not None:
            self.speaker.cut(self.config.barge_in.fade_ms)
            await self._cancel(reply)
            self._close_reply(reply, interrupted=True)

    @staticmethod
    async def _cancel(reply: _Reply) -> None:
        task = reply.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _reply_done(self, reply: _Reply) -> None:
        if reply is not self._reply:
            return  # already closed by a barge-in
        self._close_reply(reply, interrupted=False)
        if reply.kind == "goodbye":
            self._hang_up_soon()
            return
        if self._ending is not None:
            return
        if reply.failed is not None and not isinstance(self.dialogue, ScriptedDialogue):
            self._fall_back_to_script()
            return
        outcome = reply.outcome
        if outcome.outcome is not None:
            self._outcome = outcome.outcome
        if outcome.end_call:
            await self._end("secretary_ended", say_goodbye=not reply.progress.planned_text)
            return
        if self._reply is None and self._unanswered:
            self._answer()  # a safety net: no caller turn is left unanswered once the line is free

    def _close_reply(self, reply: _Reply, *, interrupted: bool) -> None:
        self._reply = None
        self._last_activity = self._clock()
        progress = reply.progress
        planned = progress.planned_text
        heard = progress.heard_text(self.line)
        timing = reply.timing
        if timing is not None:  # the earliest times stay: a turn handed on from a failed answer keeps its filler
            own = len(progress.segments) > progress.fillers  # the reply's own words were queued (fillers go first)
            if progress.segments:
                timing.first_tts_at = timing.first_tts_at or progress.first_tts_at
                timing.first_audio_at = timing.first_audio_at or progress.first_audio_at
            timing.reply_audio_at = progress.reply_audio_at if own else None
            timing.fillers += progress.fillers
            timing.interrupted = interrupted
            if reply.failed is not None and not own:
                self._unspoken_turn = timing  # the dialogue failed before its reply: the apology answers the turn
                timing = None
        if reply.written:
            self.dialogue.heard(planned, heard)
        if not planned:
            return
        if progress.played_s(self.line) <= 0:  # not one frame of it reached the caller: it was not said
            log.warning("a reply went unspoken: not in the transcript",
                        extra={"call_id": self.call_id, "reply": reply.kind, "failed": len(progress.failed)})
            return
        source = reply.outcome.source if reply.kind == "answer" else reply.kind
        utterance = Utterance(
            role="secretary",
            text=heard if interrupted else planned,
            start_s=reply.start_s,
            end_s=self.now_s(),
            interrupted=interrupted and heard != planned,
            planned_text=planned if interrupted and heard != planned else None,
            source=source,
            heard_by=HEARD_BY if interrupted and heard != planned else None,
            turn=timing.stages(self._t0) if timing is not None else None,
        )
        self._emit(utterance, timing)

    def _fall_back_to_script(self) -> None:
        scripted = ScriptedDialogue(self.persona, self.caller, slots=self.dialogue.slots)
        self.dialogue = scripted
        self.result.dialogue = "llm+scripted"
        apology = self.phrases.apology

        async def ask(reply: _Reply, feed: TextFeed) -> None:
            await scripted.next_question(feed, reply.outcome)

        timing, self._unspoken_turn = self._unspoken_turn, None
        self._start_reply("apology", cached=apology, text=None if apology else _APOLOGY[self.persona.language],
                          produce=ask, timing=timing)

    async def _on_dtmf(self, digit: str) -> None:
        keys = self.config.dtmf
        if self._ending is not None:
            return
        if digit == keys.end_call:
            await self._end("dtmf_end")
        elif digit == keys.leave_message:
            await self._leave_message()

    async def _leave_message(self) -> None:
        await self._stop_reply()
        if not isinstance(self.dialogue, ScriptedDialogue):
            self.dialogue = ScriptedDialogue(self.persona, self.caller, slots=self.dialogue.slots)
            self.result.dialogue += "+scripted"
        scripted = self.dialogue
        assert isinstance(scripted, ScriptedDialogue)

        async def ask(reply: _Reply, feed: TextFeed) -> None:
            await scripted.next_question(feed, reply.outcome)

        self._start_reply("prompt", produce=ask)

    async def _on_silence(self) -> None:
        if not self._silence_prompted:
            self._silence_prompted = True
            dialogue = self.dialogue

            async def prompt(reply: _Reply, feed: TextFeed) -> None:
                await dialogue.prompt_after_silence(feed, reply.outcome)

            self._start_reply("prompt", produce=prompt)
            return
        await self._end("silence")

    async def _end(self, reason: str, *, say_goodbye: bool = True) -> None:
        """Decide to end the call: stop what is being said, goodbye (not interruptible), hang up."""
        if self._ending is not None:
            return
        self._ending = reason
        await self._stop_reply()
        if say_goodbye:
            self._start_reply("goodbye", cached=self.phrases.goodbye, text=self.persona.goodbye, interruptible=False)
        else:
            self._hang_up_soon()

    def _hang_up_soon(self) -> None:
        assert self._tasks is not None
        self._tasks.create_task(self._do_hangup(), name="hangup")

    async def _do_hangup(self) -> None:
        try:
            await self._hangup()
        except Exception as exc:  # the call may already be gone
            log.info("hang-up failed", extra={"call_id": self.call_id, "error": str(exc)})
        self._events.put_nowait(_HungUp(self._ending or "secretary_ended"))

    # -- transcript ---------------------------------------------------------------------
    def _record_caller(self, heard: CallerUtterance) -> None:
        if not heard.text:
            return
        self._emit(Utterance(
            role="caller", text=heard.text, start_s=heard.start_s, end_s=heard.end_s,
            interrupted=heard.cut_by_hangup, source="stt",
        ))

    def _emit(self, utterance: Utterance, timing: TurnTiming | None = None) -> None:
        self.result.transcript.append(utterance)
        self._on_utterance(utterance, timing)

    def _finish_result(self) -> None:
        result = self.result
        result.slots = self.dialogue.slots
        reason = self._ending or self._hung_up or "caller_hung_up"
        result.end_reason = reason
        if self._outcome is not None:
            result.outcome = self._outcome
        elif not result.slots.missing(self.persona.asks):
            result.outcome = "message_taken"
        elif any(v for v in result.slots.as_dict().values()):
            result.outcome = "partial_message"
        elif reason == "silence" or not any(u.role == "caller" for u in result.transcript):
            result.outcome = "no_speech"
        else:
            result.outcome = reason


async def _one(text: str) -> AsyncIterator[str]:
    yield text


_PARDON = {"en": "Sorry, I didn't catch that. Could you say it again?", "ru": "Извините, я не расслышала. Повторите, пожалуйста."}
_APOLOGY = {
    "en": "I'm sorry, I'm having a little trouble. Let me just take a message.",
    "ru": "Извините, у меня небольшие неполадки. Давайте я просто запишу сообщение.",
}
FILLERS = {"en": ("One moment, please.", "Just a second."), "ru": ("Минутку.", "Секундочку.")}


def phrase_texts(persona: PersonaConfig) -> dict[str, str | tuple[str, ...]]:
    """The texts of a persona's ``CallPhrases`` (the service pre-synthesizes them)."""
    lang = persona.language
    return {
        "greeting": persona.greeting,
        "goodbye": persona.goodbye,
        "apology": _APOLOGY[lang],
        "pardon": _PARDON[lang],
        "fillers": FILLERS[lang],
    }
