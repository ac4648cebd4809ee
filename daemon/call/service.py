"""The call flow as a supervised service: answered calls become conversations and call records.

For every incoming call the modem answers, the service waits for the call's
PCM audio, opens the call record (both WAV tracks, transcript, SQLite index
row marked in progress), builds the line, the ears (VAD + STT), the mouth
(TTS + the persona's pre-synthesized phrases) and the dialogue (the LLM when
a conversational backend is configured and up, else the scripted
take-a-message policy), and runs the ``CallFlow``. Utterances go to the record
and to ``call/event`` as they happen. When the call is over it writes the
summary, finishes the record and publishes ``ended`` (duration, reason,
outcome, message, summary). Everything on ``call/state`` and ``call/event``,
for the modem's calls and the stream lines' alike, goes out through its
``CallAnnouncer`` (``announcer.py``), which also hears every driver event. In the background it keeps the persona's phrases
synthesized, recovers records a crash left in progress (and publishes their
``ended``, reason ``daemon_stopped``: the owner hears of them), and deletes
records older than the retention period.

A call already on the line before the box can speak (the modem had it at
start: the caller stayed on through a crash and restart) waits up to
``call.max_answer_wait_s`` for the engines and is greeted as a new call, or
hears the goodbye if it can be said and is hung up (``not_ready``). When the
daemon stops (``wind_down``), a live call hears the goodbye, is hung up, and
its record, index row and ``ended`` say ``daemon_stopping``; ``call/state``
goes idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from channels.bus_contract.call_payloads import NOT_READY, EndedEvent, MissedEvent, UtteranceEvent
from channels.bus_contract.verbs import CALLS_DELETE, CALLS_GET, CALLS_LIST
from config.schema import SecretaryConfig
from daemon.bus.commands import CommandError
from daemon.bus.connection import Bus
from daemon.call.announcer import CallAnnouncer, stamp
from daemon.call.flow import CallFlow, CallPhrases, CallResult, TurnTiming, phrase_texts
from daemon.call.line import CallLine, LineSession
from daemon.call.listener import CallerListener, ListenerEvent, turn_end_policy
from daemon.call.speaker import Speaker
from daemon.dialogue.call_summary import llm_summary, slots_summary
from daemon.dialogue.interface import Dialogue
from daemon.dialogue.llm_dialogue import LlmDialogue
from daemon.dialogue.message_slots import MessageSlots
from daemon.dialogue.scripted_dialogue import ScriptedDialogue
from daemon.engine_host.speech_readiness import SpeechReadiness
from daemon.records.call_index import CallIndex, CallSummaryRow
from daemon.records.call_record import (
    INTERRUPTED,
    CallRecord,
    CallRecordHeader,
    Utterance,
    is_valid_call_id,
    read_utterances,
)
from daemon.records.recorder_service import RecordingWatch
from daemon.records.retention import run_retention
from daemon.runtime.service import Service, ServiceStatus
from daemon.voices.persona_voice import PersonaVoice
from daemon.voices.phrase_cache import CachedSpeech, SpeechCache
from drivers.audio import ENGINE_RATE
from drivers.sim7600 import (
    CallAnswered,
    CallAudioReady,
    CallDirection,
    CallDtmf,
    CallEnded,
    ModemEvent,
    PcmAlarm,
    PcmSession,
    Sim7600Modem,
)
from drivers.sim7600.event_hub import EventHub
from engines.engine_status import EngineState
from engines.llm.llm_engine import LlmEngine
from engines.tts.tts_engine import TtsEngine
from engines.vad.echo_gate import EchoGate
from engines.vad.speech_detector import SpeechDetector
from engines.vad.vad_engine import VadEngine

log = logging.getLogger("secretary.call")

class LoadedEngine(Protocol):
    """What the call flow needs of an engine service: the engine once loaded."""

    @property
    def engine(self) -> Any: ...

    async def wait_loaded(self) -> Any: ...

    def lease(self) -> contextlib.AbstractAsyncContextManager[Any]: ...


AUDIO_WAIT_S = 5.0
DAEMON_STOPPING = "daemon_stopping"  # the end reason of a call the daemon's stop ended (goodbye, hang-up)
HARD_STOP_S = 1.0  # of a wind-down's budget: kept for ending calls whose goodbye overran (no goodbye then)
MISSED = "missed"  # the outcome of a call that was never answered
FAILED = "failed"  # the outcome of a call whose flow could not go on
FLOW_ERROR = "error"  # the end reason of a call whose flow crashed
RETENTION_INTERVAL_S = 3600.0
PHRASES_RETRY_S = 10.0  # the persona's phrases could not be synthesized: try again at the latest after this
PHRASES_POLL_S = 0.5  # ...and as soon as the TTS engine is ready again
ENGINES = ("vad", "stt", "llm", "tts")  # what a call uses, looked up by name
RESULTS_KEPT = 200  # CallService.results: the last calls' results in memory (their records are on disk)
DRAIN_MARGIN_S = 30.0  # a reload waits for live calls at most call.max_duration_s plus this (their goodbye, record)


class CallServiceDraining(CommandError):
    """This call service is being replaced (a reload): the streamed call goes to the one that follows it."""

    def __init__(self) -> None:
        super().__init__("unavailable", "the call service is restarting after a settings change; try again in a moment")


class CallService(Service):
    name = "calls"

    def __init__(
        self,
        bus: Bus,
        config: SecretaryConfig,
        relay: EventHub[ModemEvent],
        modem: Callable[[], Sim7600Modem | None],
        engine: Callable[[str], LoadedEngine | None],
        readiness: SpeechReadiness | None = None,
        recording: RecordingWatch | None = None,
    ) -> None:
        self.bus = bus
        self.announcer = CallAnnouncer(bus)  # the one writer of call/state and call/event
        self.config = config
        self.relay = relay
        self._modem = modem
        self._engine_service = engine  # looked up on use: a reload may replace an engine service
        self.data_dir = config.data_dir
        self.calls_dir = config.data_dir / "calls"
        tts_tag = hashlib.sha256(config.engines.tts.model_dump_json().encode()).hexdigest()[:12]
        self.speech_cache = SpeechCache(config.data_dir / "cache" / "speech", tts_tag)
        self.index: CallIndex | None = None
        self._flows: dict[str, CallFlow] = {}
        self._records: dict[str, tuple[CallRecord, asyncio.TaskGroup]] = {}
        self._ended_calls: dict[str, str] = {}  # the driver's end reason of calls still being handled
        self._audio: dict[str, asyncio.Future[PcmSession]] = {}  # modem calls' PCM sessions, pushed by the driver
        self._live: set[str] = set()  # calls whose record is being written (retention keeps off)
        self._channels: dict[str, str] = {}  # how calls that did not come through the modem arrived
        self._stopping: str | None = None  # the daemon stops: new and live calls end with this reason
        self._draining = False  # a reload replaces this service: live calls finish here, new ones wait for the next
        self.results: dict[str, CallResult] = {}  # the last RESULTS_KEPT calls (tests, the demo, the benches)
        self.phrases_ready = asyncio.Event()
        # Whether the box can speak on a call (the app's, shared with whoever else decides about calls).
        self.readiness = readiness if readiness is not None else SpeechReadiness(engine)
        self.recording = recording if recording is not None else RecordingWatch()  # a full disk never ends a call
        self._holding: dict[str, float] = {}  # calls due to be answered, ringing on until the box can speak
        self._tasks: asyncio.TaskGroup | None = None

    def config_slice(self) -> Any:
        c = self.config
        return (c.call, c.personas, c.data_dir, c.engines.llm.max_tokens, c.engines.llm.temperature,
                c.engines.vad, c.engines.tts, {k: b.model_dump() for k, b in c.engines.llm.backends.items()})

    @property
    def persona_name(self) -> str:
        return self.config.call.persona

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self, status: ServiceStatus) -> None:
        self.calls_dir.mkdir(parents=True, exist_ok=True)
        index = CallIndex(self.data_dir / "secretary.db")
        self.index = index
        events = self.relay.subscribe()
        modem = self._modem()
        self.announcer.modem_call(modem.call if modem is not None else None)  # call/state from the start
        self.bus.register_command(CALLS_LIST, self._cmd_calls_list)
        self.bus.register_command(CALLS_GET, self._cmd_calls_get)
        self.bus.register_command(CALLS_DELETE, self._cmd_calls_delete)
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._keep_phrases(status), name="phrases")
                tasks.create_task(
                    run_retention(self.calls_dir, index, self.config.call.retention_days, RETENTION_INTERVAL_S,
                                  lambda: set(self._live) | self.recording.waiting_call_ids(),
                                  on_interrupted=self._announce_interrupted),
                    name="retention",
                )
                status.degraded("synthesizing the persona's phrases")
                async for event in events:
                    self.announcer.modem_event(event)
                    self._on_modem_event(event, tasks)
        finally:
            self.readiness.phrases_ready(False)  # no calls are taken until a call service is back
            self._tasks = None
            self._holding.clear()
            for verb in (CALLS_LIST, CALLS_GET, CALLS_DELETE):
                self.bus.commands.unregister(verb)
            events.close()
            if self._stopping is not None:  # the daemon is going: no call is handled (any more) on this box
                self.announcer.modem_call(None)
            self.index = None
            await asyncio.to_thread(index.close)

    async def wind_down(self, budget_s: float) -> None:
        """The daemon stops: each live call hears a goodbye and is hung up; its record is finished, ``ended`` out.

        Calls whose goodbye has not ended ``HARD_STOP_S`` before the budget is
        spent are ended at once (no goodbye) so their records are still final.
        """
        self._stopping = DAEMON_STOPPING
        self.readiness.phrases_ready(False)  # no new call is answered now: a ringing one rings on
        deadline = time.monotonic() + budget_s
        for flow in list(self._flows.values()):  # a flow still being set up stops as it starts (_converse)
            flow.stop(DAEMON_STOPPING)
        if await self._calls_over(deadline - HARD_STOP_S):
            return
        log.warning("a goodbye did not end in time: ending the call now", extra={"calls": sorted(self._live)})
        for flow in list(self._flows.values()):
            flow.hung_up(DAEMON_STOPPING)
        modem = self._modem()
        if modem is not None and modem.call.call_id is not None:
            with contextlib.suppress(Exception):  # the caller may be gone already
                await modem.hangup()
        await self._calls_over(deadline)

    # -- a reload replaces this service: live calls finish on it first ----------------------
    def busy(self) -> bool:
        return bool(self._live or self._audio)

    @property
    def draining(self) -> bool:
        return self._draining

    async def drain(self) -> None:
        """A reload replaces this service: the live calls go on here to their end; no new call is taken.

        A call that rings meanwhile is held (it rings on) and answered by the
        new service once that one can speak, as at start-up.
        """
        self._draining = True
        self.readiness.phrases_ready(False)  # the new service's greeting is not made yet: ringing calls ring on
        log.info("the call service waits for its live calls before a reload replaces it",
                 extra={"calls": sorted(self._live)})
        while self.busy():
            await asyncio.sleep(0.05)

    def drain_budget_s(self) -> float:
        return self.config.call.max_duration_s + DRAIN_MARGIN_S

    async def _calls_over(self, deadline: float) -> bool:
        """Wait until no call is being answered or conducted (False: ``deadline`` came first)."""
        while self._live or self._audio:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def _announce_interrupted(self, headers: tuple[CallRecordHeader, ...]) -> None:
        """Calls whose records recovery just closed (the daemon died mid-call): each one's ``ended`` at last."""
        for h in headers:
            log.info("announcing the end of a call the daemon died in", extra={"call_id": h.call_id})
            self._publish_ended(
                h.call_id, h.caller, h.duration_s or 0.0, h.end_reason or INTERRUPTED, h.outcome, dict(h.message),
                h.summary, started_at=h.started_at, record_dir=self.calls_dir / h.call_id, persona=h.persona,
            )

    async def _keep_phrases(self, status: ServiceStatus) -> None:
        persona = self.config.personas[self.persona_name]
        while True:
            tts_service = self._engine_service("tts")
            if tts_service is None:
                return
            await tts_service.wait_loaded()
            tts = tts_service.engine
            if tts is None:
                continue
            try:
                await self._phrases(tts, persona, synthesize=True)
            except Exception as exc:  # no TTS backend up: try again when the engine recovers
                log.warning("could not synthesize the persona's phrases", extra={"error": str(exc)})
                status.degraded(f"phrases not synthesized yet: {exc}")
                await self._tts_back(PHRASES_RETRY_S)
                continue
            self.phrases_ready.set()
            if not self._draining:
                self.readiness.phrases_ready(True)
            status.ready(f"answering as {self.persona_name}")
            return

    async def _tts_back(self, longest_s: float) -> None:
        """After a failed synthesis: wait a moment, then until the TTS engine is ready again (at most ``longest_s``)."""
        deadline = time.monotonic() + longest_s
        await asyncio.sleep(PHRASES_POLL_S)
        while time.monotonic() < deadline:
            service = self._engine_service("tts")
            engine = service.engine if service is not None else None
            if engine is not None and engine.status.state in (EngineState.READY, EngineState.DEGRADED):
                return  # a call that rings meanwhile waits for the greeting: try again at once
            await asyncio.sleep(PHRASES_POLL_S)

    async def _phrases(self, tts: TtsEngine | None, persona: Any, *, synthesize: bool) -> CallPhrases:
        voice = PersonaVoice.of(persona)
        texts = phrase_texts(persona)

        async def one(text: str) -> CachedSpeech | None:
            cached = self.speech_cache.get(voice, text)
            if cached is None and synthesize and tts is not None:
                cached = await self.speech_cache.ensure(tts, voice, text)
            return cached

        fillers = [f for f in [await one(t) for t in texts["fillers"]] if f is not None]
        return CallPhrases(
            greeting=await one(str(texts["greeting"])),
            goodbye=await one(str(texts["goodbye"])),
            apology=await one(str(texts["apology"])),
            pardon=await one(str(texts["pardon"])),
            fillers=tuple(fillers),
        )

    def _on_modem_event(self, event: ModemEvent, tasks: asyncio.TaskGroup) -> None:
        match event:
            case CallAnswered(direction=CallDirection.INCOMING):
                self._holding.pop(event.call_id, None)
                self._audio[event.call_id] = asyncio.get_running_loop().create_future()
                self.announcer.hold_ending(event.call_id)  # the flow announces how the call ended
                answering = tasks.create_task(self._answer(event), name=f"call-{event.call_id}")
                answering.add_done_callback(lambda _, call_id=event.call_id: self.announcer.release(call_id))
            case CallAudioReady():
                self._audio_came(event.call_id, event.session, None)
            case PcmAlarm(kind="enable_failed", call_id=str(call_id)):
                self._audio_came(call_id, None, f"no call audio: {event.detail}")
            case CallDtmf():
                self.dtmf(event.call_id, event.digit)
            case CallEnded(answered=False) if event.call_id in self._holding:
                since = self._holding.pop(event.call_id)
                tasks.create_task(self._not_answered(event, since), name=f"missed-{event.call_id}")
            case CallEnded():
                self._ended_calls[event.call_id] = event.reason.value
                self._audio_came(event.call_id, None, "the call ended before its audio came up")
                flow = self._flows.get(event.call_id)
                if flow is not None:
                    flow.hung_up(event.reason.value)

    # -- answering only when the box can speak ---------------------------------------
    def may_answer(self, call_id: str) -> bool:
        """The driver asks before it answers a ringing call: yes once the box can speak, else it rings on.

        A call held here is answered as soon as ``readiness`` says the box can
        speak; if that takes longer than ``call.max_answer_wait_s`` it is
        turned away (the network's voicemail or busy takes it) and reported
        missed with reason ``not_ready`` in the record, the index and on the bus.
        """
        if self._stopping is not None:
            return False  # the daemon is going: the call rings on to the network's voicemail
        if self.readiness.ready_to_speak() and not self._draining:
            self._holding.pop(call_id, None)  # a ring came after the box got ready: the driver answers now
            return True
        tasks = self._tasks
        if tasks is None:
            return False  # not running: the next ring asks the service that runs then
        if call_id not in self._holding:
            modem = self._modem()
            since = modem.call.since if modem is not None and modem.call.call_id == call_id else time.time()
            self._holding[call_id] = since
            self.announcer.hold_ending(call_id)  # its missed and ended say why it was not answered
            log.warning("a call rings before the box can speak: letting it ring",
                        extra={"call_id": call_id, "missing": self.readiness.missing()})
            tasks.create_task(self._answer_when_ready(call_id), name=f"hold-{call_id}")
        return False

    async def _answer_when_ready(self, call_id: str) -> None:
        ready = await self.readiness.wait_ready(self.config.call.max_answer_wait_s)
        if call_id not in self._holding or self._stopping is not None or (ready and self._draining):
            return  # answered on a later ring, or over, or the daemon is going
        modem = self._modem()
        if modem is None:
            return
        try:
            if ready:
                log.info("the box can speak now: answering the waiting call", extra={"call_id": call_id})
                await modem.answer()
            else:
                log.warning("the box could not speak in time: turning the call away",
                            extra={"call_id": call_id, "missing": self.readiness.missing(),
                                   "waited_s": self.config.call.max_answer_wait_s})
                await modem.hangup()
        except Exception as exc:  # the caller hung up meanwhile, or the modem went away: its ending tells
            log.info("the waiting call could not be %s", "answered" if ready else "turned away",
                     extra={"call_id": call_id, "error": str(exc)})

    async def _not_answered(self, ended: CallEnded, since: float) -> None:
        """A held call that ended unanswered: missed with reason not_ready, the same in record, index and bus."""
        call_id, caller = ended.call_id, ended.caller
        persona_name = self.persona_name
        persona = self.config.personas[persona_name]
        call_dir = self.calls_dir / call_id
        header = CallRecordHeader(
            call_id=call_id, caller=caller, persona=persona_name, language=persona.language, started_at=since,
            ended_at=ended.ts, duration_s=0.0, outcome=MISSED, end_reason=NOT_READY,
        )
        try:
            record = await asyncio.to_thread(CallRecord, call_dir, header)
            if self.index is not None:
                await self.index.aupsert(record.header, call_dir)
        except (OSError, ValueError) as exc:  # a full disk: the owner still hears of the call
            log.error("could not record a missed call", extra={"call_id": call_id, "error": str(exc)})
        finally:
            self.announcer.missed(MissedEvent(call_id=call_id, ts=stamp(ended.ts), caller=caller, reason=NOT_READY))
            self.announcer.flow_ended(EndedEvent(
                call_id=call_id, ts=stamp(ended.ts), caller=caller, direction="incoming", answered=False,
                duration_s=0.0, reason=NOT_READY, outcome=MISSED, message={}, summary=None, persona=persona_name,
                started_at=since, record_dir=str(call_dir), channel="gsm",
            ))
            self._ended_calls.pop(call_id, None)

    def dtmf(self, call_id: str, digit: str) -> None:
        """A key the caller pressed (from the modem or a channel): to the flow and the record."""
        flow = self._flows.get(call_id)
        live = self._records.get(call_id)
        if flow is not None and live is not None:
            flow.dtmf(digit)
            record, writes = live
            at_s = round(flow.now_s(), 2)
            writes.create_task(_logged(record.aadd_dtmf(digit, at_s), call_id), name="record-dtmf")

    # -- one call -----------------------------------------------------------------------
    def _audio_came(self, call_id: str, session: PcmSession | None, failure: str | None) -> None:
        """The driver pushed an answered call's PCM session, or said it will not come."""
        audio = self._audio.get(call_id)
        if audio is None or audio.done():
            return  # not a call this service answers (dialled out), or already settled
        if session is not None:
            audio.set_result(session)
        else:
            audio.set_exception(TimeoutError(failure))

    # -- a call on the line before the box can speak (found active at start, e.g. after a crash) --------
    async def _voice_within_wait(self, call_id: str) -> bool:
        """True once the box can speak on this call; False if not within ``call.max_answer_wait_s``.

        A call the box answered itself never waits (it answers only when it can
        speak); one the modem already had at start (the caller stayed on the
        line through a crash and restart) waits here on a silent line until the
        engines and the greeting are ready, then is greeted as a new call.
        """
        if self.readiness.ready_to_speak():
            return True
        bound = self.config.call.max_answer_wait_s
        log.warning("a call is on the line before the box can speak: it waits for the engines",
                    extra={"call_id": call_id, "missing": self.readiness.missing(), "max_wait_s": bound})
        deadline = time.monotonic() + bound
        while not self.readiness.ready_to_speak():
            if call_id in self._ended_calls or self._stopping is not None or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)
        log.info("the box can speak now: greeting the call that waited", extra={"call_id": call_id})
        return True

    async def _farewell(self, answered: CallAnswered, session: LineSession) -> None:
        """A call the box cannot take: the persona's goodbye if it can be said (cached, or a TTS up), hang up.

        Its record, index row and ``ended`` say ``failed``, reason ``not_ready``
        (or how it ended: the caller hung up, the daemon stopped).
        """
        call_id, caller = answered.call_id, answered.caller
        persona = self.config.personas[self.persona_name]
        call_dir = self.calls_dir / call_id
        started = time.time()
        header = CallRecordHeader(call_id=call_id, caller=caller, persona=self.persona_name,
                                  language=persona.language, started_at=answered.ts, answered_at=started)
        record = await asyncio.to_thread(CallRecord, call_dir, header)
        index = self._require_index()
        await index.aupsert(record.header, call_dir)
        tts = self._engine("tts")
        goodbye = await self.speech_cache.load(PersonaVoice.of(persona), persona.goodbye)  # an earlier run's?
        if call_id not in self._ended_calls and (goodbye is not None or tts is not None):
            async with CallLine(session, None) as line:
                speaker = Speaker(line, tts, PersonaVoice.of(persona))
                progress = speaker.begin()
                at = time.time() - started
                if goodbye is not None:
                    await speaker.say_cached(goodbye, progress)
                else:
                    await speaker.say(_spoken(persona.goodbye), progress)
                heard = progress.heard_text(line)
                if heard:
                    await record.aadd_utterance(Utterance(role="secretary", text=heard, start_s=round(at, 2),
                                                          end_s=round(time.time() - started, 2), source="goodbye"))
        modem = self._modem()
        if call_id not in self._ended_calls and modem is not None:
            with contextlib.suppress(Exception):  # the call may be gone already
                await modem.hangup()
        reason = self._ended_calls.get(call_id) or self._stopping or NOT_READY
        ended = time.time()
        duration = round(ended - started, 2)
        await record.aupdate(ended_at=ended, duration_s=duration, outcome=FAILED, end_reason=reason)
        await index.aupsert(record.header, call_dir)
        self._publish_ended(call_id, caller, duration, reason, FAILED, {}, None, started_at=answered.ts,
                            record_dir=call_dir, persona=self.persona_name)

    async def _answer(self, answered: CallAnswered) -> None:
        call_id = answered.call_id
        try:
            async with asyncio.timeout(AUDIO_WAIT_S):
                session = await self._audio[call_id]
        except TimeoutError as exc:
            log.error("no call audio: the call is not handled", extra={"call_id": call_id, "error": str(exc)})
            self._publish_ended(call_id, answered.caller, 0.0, self._ended_calls.pop(call_id, "no_audio"), "failed", {}, None)
            return
        finally:
            self._audio.pop(call_id, None)
        self._live.add(call_id)
        try:
            if not await self._voice_within_wait(call_id):
                await self._farewell(answered, session)
                return
            await self._conduct(answered, session)
        except Exception as exc:
            log.exception("call flow failed", extra={"call_id": call_id})
            await self._give_up(answered, exc)
        finally:
            self._live.discard(call_id)
            self._ended_calls.pop(call_id, None)

    async def _give_up(self, answered: CallAnswered, exc: Exception) -> None:
        """The flow could not run: end the call rather than leave the caller on a silent line."""
        if answered.call_id not in self._ended_calls:
            modem = self._modem()
            with contextlib.suppress(Exception):
                if modem is not None:
                    await modem.hangup()
        reason = self._ended_calls.get(answered.call_id, "failed")
        duration = round(max(0.0, time.time() - answered.ts), 2)
        self._publish_ended(answered.call_id, answered.caller, duration, reason, "failed", {}, f"call flow failed: {exc}")

    async def _conduct(
        self, answered: CallAnswered, session: LineSession, *, hangup: Callable[[], Awaitable[None]] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None, persona_name: str | None = None,
    ) -> CallResult:
        cfg = self.config
        call_id, caller = answered.call_id, answered.caller
        persona_name = persona_name or self.persona_name
        persona = cfg.personas[persona_name]
        started = time.time()
        call_dir = self.calls_dir / call_id
        header = CallRecordHeader(
            call_id=call_id, caller=caller, persona=persona_name, language=persona.language,
            started_at=answered.ts, answered_at=started,
        )
        record = await asyncio.to_thread(CallRecord, call_dir, header, write_later=True)  # a full disk: kept in memory
        index = self.index
        assert index is not None
        await self.recording.keep(call_id, "index", lambda: index.aupsert(record.header, call_dir))
        try:
            async with self._leased_engines() as engines:  # a reload's new engines never close these under the call
                return await self._converse(answered, session, record, persona_name, started, hangup, on_event,
                                            engines)
        except Exception as exc:  # the flow crashed: the call ends now, the same in record, index and bus
            log.exception("call flow failed", extra={"call_id": call_id})
            return await self._end_failed(answered, record, started, exc, hangup)

    async def _end_failed(
        self, answered: CallAnswered, record: CallRecord, started: float, exc: Exception,
        hangup: Callable[[], Awaitable[None]] | None,
    ) -> CallResult:
        """A call whose flow crashed: hang up, then outcome ``failed``, reason ``error`` in record, index and bus."""
        call_id, caller = answered.call_id, answered.caller
        if call_id not in self._ended_calls:
            with contextlib.suppress(Exception):
                await (hangup or self._modem_hangup)()
        ended = time.time()
        duration = round(ended - started, 2)
        summary = f"call flow failed: {type(exc).__name__}: {exc}"
        try:
            await record.aupdate(ended_at=ended, duration_s=duration, outcome=FAILED, end_reason=FLOW_ERROR,
                                 summary=summary)
        except OSError as write_error:  # a full disk: the index and the bus still say how it ended
            log.error("could not finish the failed call's record", extra={"call_id": call_id, "error": str(write_error)})
        try:
            if self.index is not None:
                await self.index.aupsert(record.header, record.call_dir)
        except Exception as index_error:
            log.error("could not index the failed call", extra={"call_id": call_id, "error": str(index_error)})
        result = CallResult(outcome=FAILED, end_reason=FLOW_ERROR, slots=MessageSlots(), dialogue="failed")
        self._keep_result(call_id, result)
        self._publish_ended(
            call_id, caller, duration, FLOW_ERROR, FAILED, {}, summary, started_at=record.header.started_at,
            record_dir=record.call_dir, persona=record.header.persona, channel=self._channels.get(call_id, "gsm"),
        )
        return result

    async def _modem_hangup(self) -> None:
        modem = self._modem()
        if modem is not None:
            await modem.hangup()

    async def _converse(
        self, answered: CallAnswered, session: LineSession, record: CallRecord, persona_name: str, started: float,
        hangup: Callable[[], Awaitable[None]] | None, on_event: Callable[[dict[str, Any]], None] | None,
        engines: dict[str, Any],
    ) -> CallResult:
        """The call itself, once its record is open: line, ears, mouth, dialogue, the flow, then the summary.

        ``engines`` are the ones the call started with (leased): the ears keep theirs to the end; the mouth
        takes the current TTS before each chunk (a reload's new one once it is loaded, else the call's own).
        """
        cfg = self.config
        call_id, caller = answered.call_id, answered.caller
        persona = cfg.personas[persona_name]
        call_dir = record.call_dir
        recorder = self.recording.recorder(call_id, call_dir) if cfg.call.record_audio else None
        tts = engines["tts"]
        async with contextlib.AsyncExitStack() as stack:
            writes = await stack.enter_async_context(asyncio.TaskGroup())  # record writes, awaited at the end
            if recorder is not None:
                stack.push_async_callback(recorder.aclose)  # closed after the line's clock has stopped
            margin = cfg.call.barge_in.echo_margin_db
            echo_gate = EchoGate(margin_db=margin) if margin is not None else None
            line = await stack.enter_async_context(
                CallLine(session, recorder, on_sent=echo_gate.sent if echo_gate is not None else None))
            greeting_heard = line.first_audible_after(0)
            voice = PersonaVoice.of(persona)
            speaker = Speaker(line, tts, voice, current_tts=lambda: self._engine("tts") or tts)
            # The active persona's phrases are kept ready; another persona's are made (and cached) on first use.
            phrases = await self._phrases(tts, persona, synthesize=persona_name != self.persona_name)
            dialogue = self._dialogue(persona, caller, engines["llm"])
            detector = self._detector(engines["vad"])
            stt = engines["stt"]

            def listener(emit: Callable[[ListenerEvent], None]) -> CallerListener:
                return CallerListener(
                    detector, stt, persona.language, emit, min_utterance_ms=cfg.call.min_utterance_ms,
                    early_stt_ms=cfg.call.early_stt_ms or None,
                    turn_end=turn_end_policy(cfg.call.turn_end, engines["vad"]), echo_gate=echo_gate,
                )

            def on_utterance(utterance: Utterance, timing: TurnTiming | None) -> None:
                writes.create_task(_logged(record.aadd_utterance(utterance), call_id), name="record-utterance")
                latency: dict[str, Any] | None = None
                if timing is not None:
                    latency = {k: v for k, v in timing.as_dict().items() if k != "caller_text"}
                elif (utterance.source == "greeting" and greeting_heard.done() and not greeting_heard.cancelled()
                      and session.enabled_at is not None):
                    latency = {"greeting_ms": round((greeting_heard.result() - session.enabled_at) * 1000, 1)}
                event = UtteranceEvent(
                    call_id=call_id, ts=stamp(), role=utterance.role, text=utterance.text,
                    start_s=round(utterance.start_s, 2), end_s=round(utterance.end_s, 2),
                    interrupted=utterance.interrupted, source=utterance.source, latency_ms=latency,
                    heard_by=utterance.heard_by,
                )
                self.announcer.utterance(event)
                if on_event is not None:  # the line's own stream of events: the same, without the bus's ts
                    on_event({k: v for k, v in event.encode().items() if k != "ts"})

            async def modem_hangup() -> None:
                modem = self._modem()
                if modem is not None:
                    await modem.hangup()

            flow = CallFlow(
                call_id=call_id, caller=caller, persona=persona, config=cfg.call, line=line, speaker=speaker,
                listener_factory=listener, dialogue=dialogue, phrases=phrases,
                on_utterance=on_utterance, hangup=hangup or modem_hangup,
            )
            self._flows[call_id] = flow
            self._records[call_id] = (record, writes)
            if call_id in self._ended_calls:  # the caller hung up while the call was being set up
                flow.hung_up(self._ended_calls[call_id])
            elif self._stopping is not None:  # the daemon stops: goodbye at once
                flow.stop(self._stopping)
            try:
                result = await flow.run()
            finally:
                self._flows.pop(call_id, None)
                self._records.pop(call_id, None)
        if recorder is not None:  # closed by now: what the tracks hold, and what was lost
            record.note(recording=recorder.summary())
        await self._finish(record, call_dir, result, persona, caller, started, engines["llm"])
        return result

    # -- calls that do not come through the modem ------------------------------------
    async def line_call(
        self, session: LineSession, on_event: Callable[[dict[str, Any]], None], *, caller: str | None = None,
        channel: str = "browser", persona: str | None = None,
    ) -> str:
        """Run the call flow on a streamed line (the web page's test call, a Twilio call); returns the end reason.

        The same flow, record and events as a phone call, with ``channel`` on
        its events; the other side hanging up closes the session.
        """
        if self._draining:
            raise CallServiceDraining()
        if self.index is None:
            raise CommandError("unavailable", "the call service is not running")
        if persona is not None and persona not in self.config.personas:
            raise CommandError("invalid", f"no persona {persona!r}")
        call_id = session.call_id
        assert call_id is not None
        # Like a phone call, a streamed one starts only when the box can speak: it waits (the other side hears
        # nothing yet, as while connecting) up to call.max_answer_wait_s, then is refused with what is missing.
        if not await self.readiness.wait_ready(self.config.call.max_answer_wait_s):
            raise CommandError("unavailable", "the secretary cannot speak yet ("
                               + ", ".join(self.readiness.missing()) + "); try again in a moment")
        if self._draining:  # a reload began while it waited: the service that replaces this one takes it
            raise CallServiceDraining()
        answered = CallAnswered(call_id=call_id, caller=caller, direction=CallDirection.INCOMING, ts=time.time())
        self._channels[call_id] = channel
        self.announcer.line_answered(call_id, caller, channel, answered.ts)

        async def hangup() -> None:
            session.close()

        if hasattr(session, "on_dtmf"):
            session.on_dtmf = lambda digit: self.dtmf(call_id, digit)

        async def watch_line() -> None:
            while not session.closed:
                await asyncio.sleep(0.05)
            self._ended_calls.setdefault(call_id, "caller_hung_up")  # seen by a flow still being set up
            flow = self._flows.get(call_id)
            if flow is not None:
                flow.hung_up()

        self._live.add(call_id)
        try:
            async with asyncio.TaskGroup() as tasks:
                watcher = tasks.create_task(watch_line(), name=f"line-watch-{call_id}")
                try:
                    result = await self._conduct(answered, session, hangup=hangup, on_event=on_event,
                                                 persona_name=persona)
                finally:
                    watcher.cancel()
            on_event({"type": "ended", "call_id": call_id, "reason": result.end_reason, "outcome": result.outcome})
            return result.end_reason
        finally:
            self._live.discard(call_id)
            self._ended_calls.pop(call_id, None)
            self._channels.pop(call_id, None)
            session.close()
            self.announcer.line_over(call_id)

    async def _finish(
        self, record: CallRecord, call_dir: Path, result: CallResult, persona: Any, caller: str | None,
        started: float, llm: LlmEngine | None,
    ) -> None:
        summary = None
        stopping = self._stopping is not None  # no time for the LLM: the slots' summary
        if llm is not None and not stopping and self._conversational_chain(persona) and result.dialogue != "scripted":
            summary = await llm_summary(
                llm, persona.llm.chain, result.transcript, result.slots, persona.language,
                self.config.call.summary_timeout_s,
            )
        summary = summary or slots_summary(result.slots, caller, persona.language)
        ended = time.time()
        duration = round(ended - started, 2)
        message = result.slots.as_dict()
        record.note(
            ended_at=ended, duration_s=duration, outcome=result.outcome, end_reason=result.end_reason,
            message=message, summary=summary,
        )
        index = self.index
        assert index is not None
        call_id = record.header.call_id  # a full disk: written when space returns, the call still ends on the bus
        await self.recording.keep(call_id, "record", record.aflush)
        await self.recording.keep(call_id, "index", lambda: index.aupsert(record.header, call_dir))
        self._keep_result(record.header.call_id, result)
        self._publish_ended(
            record.header.call_id, caller, duration, result.end_reason, result.outcome, message, summary,
            started_at=record.header.started_at, record_dir=call_dir, persona=record.header.persona,
            channel=self._channels.get(record.header.call_id, "gsm"),
        )

    def _keep_result(self, call_id: str, result: CallResult) -> None:
        self.results[call_id] = result
        while len(self.results) > RESULTS_KEPT:  # a box takes calls for years: the oldest result goes
            del self.results[next(iter(self.results))]

    def _publish_ended(
        self, call_id: str, caller: str | None, duration: float, reason: str, outcome: str,
        message: dict[str, str | None], summary: str | None, *, started_at: float | None = None,
        record_dir: Path | None = None, persona: str | None = None, channel: str = "gsm",
    ) -> None:
        self.announcer.flow_ended(EndedEvent(
            call_id=call_id, ts=stamp(), caller=caller, direction="incoming", answered=True, duration_s=duration,
            reason=reason, outcome=outcome, message=message, summary=summary, persona=persona or self.persona_name,
            started_at=started_at, record_dir=str(record_dir) if record_dir is not None else None, channel=channel,
        ))

    # -- call history over the bus -----------------------------------------------------
    async def _cmd_calls_list(self, args: dict[str, Any]) -> dict[str, Any]:
        limit, caller = args.get("limit", 10), args.get("caller")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
            raise CommandError("invalid", "limit must be a whole number from 1 to 200")
        if caller is not None and not isinstance(caller, str):
            raise CommandError("invalid", "caller must be a phone number string")
        index = self._require_index()
        rows = await index.arecent(limit=limit, caller=caller)
        return {"calls": [call_row_payload(row) for row in rows]}

    async def _cmd_calls_get(self, args: dict[str, Any]) -> dict[str, Any]:
        call_id = args.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise CommandError("invalid", 'expected {"call_id": "..."}')
        row = await self._require_index().aget(call_id)
        if row is None:
            raise CommandError("not_found", f"no call {call_id!r}")
        transcript = await asyncio.to_thread(_read_transcript, Path(row.record_dir))
        return {**call_row_payload(row), "transcript": transcript}

    async def _cmd_calls_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        call_id = args.get("call_id")
        if not isinstance(call_id, str) or not is_valid_call_id(call_id):
            raise CommandError("invalid", 'expected {"call_id": "..."} naming a call')
        if call_id in self._live:
            raise CommandError("busy", "the call is still in progress")
        index = self._require_index()
        row = await index.aget(call_id)
        if row is None:
            raise CommandError("not_found", f"no call {call_id!r}")
        record_dir = Path(row.record_dir)
        if record_dir.resolve().parent == self.calls_dir.resolve():  # only ever inside calls/
            await asyncio.to_thread(shutil.rmtree, record_dir, True)
        await index.adelete([call_id])
        log.info("call record deleted", extra={"call_id": call_id})
        return {"deleted": call_id}

    def _require_index(self) -> CallIndex:
        if self.index is None:
            raise CommandError("unavailable", "the call index is not open")
        return self.index

    # -- engines ------------------------------------------------------------------------
    def _engines(self) -> dict[str, Any]:
        """The loaded engines (None for one that is not loaded: the call goes on without it)."""
        return {name: self._engine(name) for name in ENGINES}

    def _engine(self, name: str) -> Any:
        """One loaded engine, or None (not loaded, or a failed chain a call must go on without)."""
        service = self._engine_service(name)
        return _usable(name, service.engine if service is not None else None)

    @contextlib.asynccontextmanager
    async def _leased_engines(self) -> AsyncIterator[dict[str, Any]]:
        """The loaded engines as ``_engines``, each held open until the block ends (see engine_users.py)."""
        async with contextlib.AsyncExitStack() as stack:
            found: dict[str, Any] = {}
            for name in ENGINES:
                service = self._engine_service(name)
                engine = await stack.enter_async_context(service.lease()) if service is not None else None
                found[name] = _usable(name, engine)
            yield found

    def _conversational_chain(self, persona: Any) -> bool:
        backends = self.config.engines.llm.backends
        names = persona.llm.chain if persona.llm.chain is not None else list(self.config.engines.llm.chain)
        return any(backends[name].is_conversational for name in names if name in backends)

    def _dialogue(self, persona: Any, caller: str | None, llm: LlmEngine | None) -> Dialogue:
        mode = persona.dialogue
        usable = llm is not None and llm.status.state is not EngineState.FAILED
        if mode == "llm" or (mode == "auto" and usable and self._conversational_chain(persona)):
            if llm is not None:
                settings = self.config.engines.llm
                return LlmDialogue(llm, persona, caller, max_tokens=settings.max_tokens, temperature=settings.temperature)
        return ScriptedDialogue(persona, caller)

    def _detector(self, vad: VadEngine | None) -> SpeechDetector:
        if vad is None:
            raise RuntimeError("no VAD engine is loaded: the call cannot be heard")
        base = vad.detector
        call = self.config.call
        settings = replace(base, min_speech_ms=call.barge_in.min_speech_ms, min_silence_ms=call.endpoint_silence_ms)
        return vad.open_detector(ENGINE_RATE, settings)


def _usable(name: str, engine: Any) -> Any:
    """The engine, or None where a call must go on without it (a failed chain; a failed LLM still scripts)."""
    if engine is not None and engine.status.state is EngineState.FAILED and name != "llm":
        return None
    return engine


async def _logged(write: Coroutine[Any, Any, None], call_id: str) -> None:
    """A call-record write: a failure (disk full) is logged, the call goes on; the record retries on its next write."""
    try:
        await write
    except OSError as exc:
        log.error("call record write failed", extra={"call_id": call_id, "error": str(exc)})


async def _spoken(text: str) -> AsyncIterator[str]:
    yield text


def call_row_payload(row: CallSummaryRow) -> dict[str, Any]:
    return {
        "call_id": row.call_id, "caller": row.caller, "persona": row.persona, "started_at": row.started_at,
        "duration_s": row.duration_s, "outcome": row.outcome, "end_reason": row.end_reason,
        "summary": row.summary, "message": row.message,
    }


def _read_transcript(record_dir: Path) -> list[dict[str, Any]]:
    """The utterances of a finished call (role, text, times, interrupted); [] if the record is gone."""
    return [{k: u.get(k) for k in ("role", "text", "start_s", "end_s", "interrupted")} for u in read_utterances(record_dir)]
