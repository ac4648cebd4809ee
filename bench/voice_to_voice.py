"""Voice-to-voice latency of whole calls, per stage, against the same stages measured in isolation.

Runs ``--calls`` whole calls through the box in-process (the SIM7600
simulator, the default CPU engines, the call service under the real
supervisor; the set-up is ``tests/calls/call_harness.py``, imported). Each
call: ring, wait for the greeting, play caller lines 1..3 of the bundled
English script, each one after the secretary's previous turn, wait for the
end. Every caller turn's ``TurnTiming`` becomes stages (ms):

    endpoint        = endpoint_at   - speech_end_at   (the VAD's silence window)
    stt             = final_at      - endpoint_at     (the STT final after the endpoint)
    llm_first_text  = first_text_at - final_at        (the first reply chunk from the dialogue)
    tts_first_audio = first_tts_at  - first_text_at   (the TTS's first audio)
    to_line         = first_audio_at - first_tts_at   (the first reply frame written to the modem)
    voice_to_voice  = first_audio_at - speech_end_at

Voice-to-voice counts EVERY turn, twice: to the first audio of the *reply*
(``voice_to_voice_ms``: what the caller waits for an answer; on a turn where a
filler played first, the reply's own first frame after the fillers, which
``TurnTiming`` does not date, so the bench watches ``Speaker.interject`` for
it: ``ReplyAudioWatch``) and to the first audio of anything, filler or reply
(``voice_to_voice_any_audio_ms``); the fillers are counted. A turn with no
reply audio at all (interrupted first) has no figure and is counted. The
per-stage figures from the STT final on are those of the turns without a
filler or interruption (``clean``; after a filler the later times are the
filler's), their voice-to-voice is kept as ``voice_to_voice_clean_ms``. ``--filler-after-ms`` (up to 2000) moves the
filler deadline when too many turns get one; ``--warmup-calls`` places calls
that are not counted (the LLM's first request after loading pays the whole
prompt's prefill, and may miss the 3 s first-token deadline on a small CPU:
the call then falls back to the scripted policy; ``--llm-first-token-timeout-s``
moves that deadline).
The caller answers once the secretary's utterance is out and the line has been
quiet for 0.5 s.

The default LLM (SmolLM2-135M) is not conversational, so the dialogue is the
scripted take-a-message policy; ``--llm smollm2`` marks the llama.cpp backend
conversational so the persona's ``dialogue: auto`` picks the LLM (its replies
are poor: the point is the timing of its first chunk).

After the calls, the engines are built again from the same config (as
``daemon/engine_host/engine_wiring.py`` does) and each stage is timed alone on the same
inputs, ``--repeats`` times, median per input: STT (the caller line
upsampled to 16 kHz, end of audio -> SttFinal; each run after an idle gap as
long as the line, which is the state the engine is in when a caller stops
talking, and also back to back, warm), TTS (first audio of the first chunk
of the reply the secretary said), LLM (``--llm`` only: the same conversation
rebuilt from the calls' turns; first text delta, and the first chunk the
reply chunker releases, which is what the call waits for).
Orchestration overhead per turn = (first_audio_at - endpoint_at) minus the
isolated STT (after idle) + LLM-first-chunk + TTS times for that turn's
inputs (the LLM's only for a reply the LLM wrote), also split by stage,
against the warm STT, and once more from the STT final on. The target is
< 30 ms p50; it is reported, never enforced. The overhead is defined for a
sequential turn: run with ``--early-stt-ms 0``. With the early STT on (the
default) whisper decodes inside the endpoint window, so the figure goes
below zero and measures that overlap instead.

The turn end: the call service gives each call's listener the turn-end
policy of ``call.turn_end`` (Smart Turn v3); ``TurnEndShim`` counts the
listeners that had it and how their turns ended (``--turn-end shim`` would
fill it in for a service that passes none: an older checkout, for comparison).

Prints tables, then ONE line of JSON with every figure. Never fails on time.

    .venv/bin/python bench/voice_to_voice.py [--calls 3] [--repeats 3] [--llm smollm2]
                                             [--warmup-calls 0] [--filler-after-ms MS] [--llm-first-token-timeout-s S]
                                             [--early-stt-ms MS] [--whisper-threads N] [--turn-end shim]
                                             [--models-dir /tmp/secretary-bench-models]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.json_line import machine, print_json_line  # noqa: E402
from config.schema import SecretaryConfig  # noqa: E402
from daemon.call.flow import FILLERS, TurnTiming  # noqa: E402
from daemon.call.listener import CallerStopped, TurnEndPolicy  # noqa: E402
from daemon.call.speaker import ReplyProgress, Speaker  # noqa: E402
from daemon.dialogue.llm_dialogue import END_CALL, SAVE_MESSAGE, system_prompt  # noqa: E402
from daemon.dialogue.reply_chunker import ReplyChunker  # noqa: E402
from daemon.engine_host.engine_wiring import llm_slots, models_dir_of, stt_slots, tts_slots  # noqa: E402
from daemon.tools.demo_caller import CallerLine, caller_script  # noqa: E402
from daemon.voices.persona_voice import PersonaVoice  # noqa: E402
from drivers.audio import ENGINE_RATE, StreamResampler, read_wav  # noqa: E402
from engines.chained_engine import ChainedEngine  # noqa: E402
from engines.engine_status import EngineState  # noqa: E402
from engines.fallback_chain import ChainExhausted, FallbackChain, RequestError  # noqa: E402
from engines.llm.interface import ChatMessage, ChatRequest  # noqa: E402
from engines.llm.llm_engine import LlmEngine  # noqa: E402
from engines.stt.interface import SttFinal  # noqa: E402
from engines.stt.stt_engine import SttEngine  # noqa: E402
from engines.tts.tts_engine import TtsEngine  # noqa: E402
from engines.turn_end.smart_turn_backend import SmartTurnBackend, SmartTurnSettings  # noqa: E402
from tests.calls.call_harness import CALLER, CallBox, box_config, call_box  # noqa: E402

LANGUAGE = "en"
LINES_PLAYED = 3
CHUNK = 320  # 20 ms at 16 kHz, as the line hands audio to the STT
OVERHEAD_TARGET_MS = 30.0
QUIET_S, QUIET_PEAK = 0.5, 100  # the caller answers once the line has been this quiet (s, PCM16 peak)
ISOLATED_LLM_DEADLINE_S = 60.0
STAGES: dict[str, tuple[str, str]] = {  # stage -> (from, to) TurnTiming fields
    "endpoint": ("speech_end_at", "endpoint_at"),
    "stt": ("endpoint_at", "final_at"),
    "llm_first_text": ("final_at", "first_text_at"),
    "tts_first_audio": ("first_text_at", "first_tts_at"),
    "to_line": ("first_tts_at", "first_audio_at"),
    "voice_to_voice": ("speech_end_at", "first_audio_at"),
}
PRE_REPLY = ("endpoint", "stt")  # stages that end before the reply: measured on every turn


# -- figures -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the house style of bench_tts.py); NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def spread(values: list[float], qs: tuple[int, ...] = (50, 95, 99)) -> dict[str, float | int]:
    figures: dict[str, float | int] = {f"p{q}": percentile(values, q) for q in qs}
    figures["n"] = len(values)
    return figures


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms_between(timing: TurnTiming, start: str, end: str) -> float | None:
    a, b = getattr(timing, start), getattr(timing, end)
    return None if a is None or b is None else (b - a) * 1000




def fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0f}"


# -- what the calls produced -------------------------------------------------------------


@dataclass
class Turn:
    """One caller turn and the secretary's answer, as measured in a call."""

    call: int
    index: int  # 0-based caller turn in its call
    line: CallerLine | None  # the caller line played for it (None: an unexpected extra turn)
    timing: TurnTiming
    reply_text: str  # what the secretary said, without a filler (empty: no utterance matched)
    reply_source: str
    history: list[tuple[str, str]]  # the call's earlier (caller text, secretary reply) pairs
    reply_audio_at: float | None = None  # monotonic: the reply's own first frame (after its fillers)
    isolated: dict[str, float] = field(default_factory=dict)  # stage -> median ms alone

    @property
    def clean(self) -> bool:
        t = self.timing
        return not t.filler and not t.interrupted and t.first_audio_at is not None

    def stage(self, name: str) -> float | None:
        """The stage's ms; None when not measured (after a filler, the later times are the filler's)."""
        if self.timing.filler and name not in PRE_REPLY:
            return None
        return ms_between(self.timing, *STAGES[name])

    @property
    def by_llm(self) -> bool:
        return self.reply_source.startswith("llm")

    @property
    def after_endpoint_ms(self) -> float | None:
        return ms_between(self.timing, "endpoint_at", "first_audio_at")

    @property
    def to_reply_ms(self) -> float | None:
        """Voice-to-voice to the reply's own first audio (after any filler); None: no reply audio."""
        at = self.reply_audio_at
        return None if at is None else (at - self.timing.speech_end_at) * 1000

    @property
    def to_any_audio_ms(self) -> float | None:
        """Voice-to-voice to the first audio of anything the box said: a filler or the reply."""
        return ms_between(self.timing, "speech_end_at", "first_audio_at")


class TurnEndShim:
    """Counts the calls' listeners that end turns with the turn-end model, and can give them the policy.

    ``daemon/call/service.py`` builds each call's ``CallerListener`` with
    ``turn_end=turn_end_policy(config.call.turn_end, vad)``. ``--turn-end shim``
    fills that keyword where a service passes none (with its own copy of the
    model file the VAD engine loads); a keyword the service passes is never replaced.
    """

    def __init__(self, config: SecretaryConfig, fill: bool) -> None:
        self.config = config
        self.fill = fill
        self.listeners = 0
        self.with_model = 0
        self.stops: dict[str, int] = {}  # CallerStopped.ended_by -> count

    @contextlib.asynccontextmanager
    async def installed(self) -> AsyncIterator[TurnEndShim]:
        import daemon.call.service as call_service

        original = call_service.CallerListener
        policy: TurnEndPolicy | None = None
        model: SmartTurnBackend | None = None
        spec = self.config.engines.vad.turn_end_model
        if self.fill and spec is not None and self.config.call.turn_end.enabled:
            model = SmartTurnBackend(SmartTurnSettings(model=spec))
            await model.load()
            await model.warm_up()
            turn_end = self.config.call.turn_end
            policy = TurnEndPolicy(model, turn_end.pause_ms / 1000, turn_end.threshold, turn_end.max_silence_ms)
        shim = self

        class Listener(original):  # type: ignore[misc, valid-type]
            def __init__(self, detector: Any, stt: Any, language: str, emit: Callable[[Any], None],
                         **keywords: Any) -> None:
                if policy is not None:
                    keywords.setdefault("turn_end", policy)
                shim.listeners += 1
                shim.with_model += keywords.get("turn_end") is not None

                def counted(event: Any) -> None:
                    if isinstance(event, CallerStopped):
                        shim.stops[event.ended_by] = shim.stops.get(event.ended_by, 0) + 1
                    emit(event)

                super().__init__(detector, stt, language, counted, **keywords)

        call_service.CallerListener = Listener  # type: ignore[misc]
        try:
            yield self
        finally:
            call_service.CallerListener = original  # type: ignore[misc]
            if model is not None:
                await model.close()


class ReplyAudioWatch:
    """Dates the first frame of a reply's own audio on a turn where fillers played first.

    ``TurnTiming.first_audio_at`` is the first reply frame of any kind, so on a
    filler turn it is the filler's. A filler is played whole before the reply's
    audio may join the line (``Speaker.interject`` holds the feed), so when it
    returns the reply's first frame is the one after everything queued then:
    the frames already sent plus the buffer's level. The watch wraps
    ``interject`` for the bench's process and waits for that frame.
    """

    def __init__(self) -> None:
        self._after_filler: dict[int, tuple[ReplyProgress, asyncio.Future[float]]] = {}

    @contextlib.contextmanager
    def installed(self) -> Any:
        original = Speaker.interject
        watch = self

        async def interject(speaker: Speaker, speech: Any, progress: ReplyProgress) -> bool:
            played = await original(speaker, speech, progress)
            if played:
                line = speaker.line
                queued = line._buffer.level  # the filler's frames not yet sent (no public view of the buffer)
                frame = line._buffer.frame_size
                mark = line.audible_frames + -(-queued // frame)
                old = watch._after_filler.pop(id(progress), None)
                if old is not None:
                    old[1].cancel()
                watch._after_filler[id(progress)] = (progress, line.first_audible_after(mark))
            return played

        Speaker.interject = interject  # type: ignore[method-assign]
        try:
            yield self
        finally:
            Speaker.interject = original  # type: ignore[method-assign]

    def reply_audio_at(self, timing: TurnTiming) -> float | None:
        """The reply's own first frame for ``timing``: its first audio, or the first frame after its fillers."""
        if not timing.filler:
            return timing.first_audio_at
        for progress, waiter in self._after_filler.values():
            if progress.first_audio_at == timing.first_audio_at and timing.first_audio_at is not None:
                return waiter.result() if waiter.done() and not waiter.cancelled() else None
        return None


@dataclass
class CallsRun:
    turns: list[Turn]
    greeting_ms: list[float]
    dialogues: list[str]  # CallResult.dialogue per call: scripted | llm | llm+scripted
    outcomes: list[str]
    wall_s: float


# -- the calls ---------------------------------------------------------------------------


def bench_config(
    data_dir: Path, models_dir: Path, llm: bool, filler_after_ms: int | None = None,
    first_token_timeout_s: float | None = None, whisper_threads: int | None = None, early_stt_ms: int | None = None,
) -> SecretaryConfig:
    overrides: dict[str, Any] = {"engines__models_dir": str(models_dir)}
    if early_stt_ms is not None:
        overrides["call__early_stt_ms"] = early_stt_ms
    if whisper_threads is not None:
        overrides["engines__stt__faster_whisper__cpu_threads"] = whisper_threads
    if filler_after_ms is not None:
        overrides["call__filler_after_ms"] = filler_after_ms
    if first_token_timeout_s is not None:
        overrides["engines__llm__first_token_timeout_s"] = first_token_timeout_s
    if llm:  # the whole backend entry: `kind` is the union's discriminator
        overrides["engines__llm__backends__local"] = {"kind": "llama_cpp", "conversational": True}
    return box_config(data_dir, **overrides)


def call_events(box: CallBox, call_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in box.events(kind) if e.get("call_id") == call_id]


def secretary_turns(box: CallBox, call_id: str) -> list[dict[str, Any]]:
    return [e for e in call_events(box, call_id, "utterance") if e["role"] == "secretary"]


def call_ended(box: CallBox, call_id: str) -> bool:
    return bool(call_events(box, call_id, "ended"))


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def ring(box: CallBox) -> str:
    """Place a call (the harness's ``ring`` only knows the box's first call) and return its id."""
    seen = {e["call_id"] for e in box.events("answered")}
    await box.sim.incoming_call(CALLER)
    answered = await box.wait_event(lambda e: e["type"] == "answered" and e["call_id"] not in seen, 15)
    return str(answered["call_id"])


def line_quiet(box: CallBox, quiet_s: float) -> bool:
    """The box has sent only silence for the last ``quiet_s`` (the simulator keeps the call's uplink PCM16)."""
    window = int(quiet_s * 8000) * 2
    tail = bytes(box.sim.uplink_audio[-window:])
    return len(tail) == window and int(np.abs(np.frombuffer(tail, "<i2").astype(np.int32)).max()) < QUIET_PEAK


async def secretary_done(box: CallBox, call_id: str, turns: int, timeout: float) -> bool:
    """The secretary's ``turns``-th utterance is out and the line stayed quiet for ``QUIET_S`` after it.

    If the secretary goes on talking (a filler-only reply whose LLM failed is
    followed at once by an apology), wait for that utterance too.
    """
    while True:
        if not await until(lambda: len(secretary_turns(box, call_id)) >= turns or call_ended(box, call_id), timeout):
            return False
        await asyncio.sleep(QUIET_S)
        if call_ended(box, call_id) or line_quiet(box, QUIET_S):
            return True
        turns = len(secretary_turns(box, call_id)) + 1


async def one_call(box: CallBox, lines: list[CallerLine]) -> str:
    call_id = await ring(box)
    await secretary_done(box, call_id, 1, 30)
    for line in lines:
        if call_ended(box, call_id):
            break
        before = len(secretary_turns(box, call_id))
        await box.sim.caller_speaks(line.wav)
        if not await secretary_done(box, call_id, before + 1, 60):
            print(f"  (call {call_id}: no secretary turn within 60 s after {line.wav.name})", file=sys.stderr)
    if not await until(lambda: call_ended(box, call_id), 10):
        await box.sim.caller_hangs_up()  # an LLM dialogue may not end by itself
        await until(lambda: call_ended(box, call_id), 30)
    await until(lambda: box.sim.call is None and call_id in box.calls.results, 10)
    await asyncio.sleep(0.5)  # let the modem settle to idle before the next ring
    return call_id


def without_filler(text: str) -> str:
    """The reply as the dialogue wrote it: the fillers played before it are part of the utterance's text."""
    fillers = FILLERS[LANGUAGE]
    while found := next((f for f in fillers if text.startswith(f)), None):
        text = text[len(found):].strip()
    return text


def turns_of(box: CallBox, number: int, call_id: str, lines: list[CallerLine], watch: ReplyAudioWatch) -> list[Turn]:
    """The call's TurnTimings, each matched with the utterance event it produced (same latency figures)."""
    result = box.calls.results.get(call_id)
    if result is None:  # the call flow failed: the service published `ended` without a result
        print(f"  (call {call_id}: no CallResult, the call flow failed; its turns are not counted)", file=sys.stderr)
        return []
    answers = [e for e in secretary_turns(box, call_id) if "voice_to_voice_ms" in e.get("latency_ms", {})]
    turns: list[Turn] = []
    history: list[tuple[str, str]] = []
    for index, timing in enumerate(result.turns):
        figures = {k: v for k, v in timing.as_dict().items() if k != "caller_text"}
        event = next((e for e in answers if e["latency_ms"] == figures), None)
        text = str(event["text"]) if event else ""
        text = without_filler(text) if timing.filler else text
        line = lines[index] if index < len(lines) else None
        turns.append(Turn(number, index, line, timing, text, str(event.get("source")) if event else "", list(history),
                          reply_audio_at=watch.reply_audio_at(timing)))
        history.append((timing.caller_text, text))
    return turns


async def run_calls(config: SecretaryConfig, calls: int, warmup_calls: int) -> CallsRun:
    lines = caller_script(LANGUAGE)[:LINES_PLAYED]
    turns: list[Turn] = []
    started = time.monotonic()
    watch = ReplyAudioWatch()
    with watch.installed():
        async with call_box(config) as box:
            print(f"box up in {time.monotonic() - started:.1f} s (engines loaded, phrases synthesized)", flush=True)
            for number in range(1, warmup_calls + 1):
                call_started = time.monotonic()
                call_id = await one_call(box, lines)
                print(f"warm-up call {number}/{warmup_calls} ({call_id}) done in {time.monotonic() - call_started:.1f} s "
                      "(not counted)", flush=True)
            started = time.monotonic()
            ids: list[str] = []
            for number in range(1, calls + 1):
                call_started = time.monotonic()
                call_id = await one_call(box, lines)
                ids.append(call_id)
                turns += turns_of(box, number, call_id, lines, watch)
                print(f"call {number}/{calls} ({call_id}) done in {time.monotonic() - call_started:.1f} s", flush=True)
            greetings = [
                float(e["latency_ms"]["greeting_ms"]) for e in box.events("utterance")
                if e.get("call_id") in ids and e.get("source") == "greeting" and "greeting_ms" in e.get("latency_ms", {})
            ]
            results = [box.calls.results.get(i) for i in ids]
    return CallsRun(turns, greetings, [r.dialogue if r else "failed" for r in results],
                    [r.outcome if r else "failed" for r in results], time.monotonic() - started)


# -- the stages alone --------------------------------------------------------------------


@dataclass
class Engines:
    stt: SttEngine
    tts: TtsEngine
    llm: LlmEngine | None

    def all(self) -> list[ChainedEngine[Any]]:
        return [e for e in (self.stt, self.tts, self.llm) if e is not None]


@contextlib.asynccontextmanager
async def isolated_engines(config: SecretaryConfig, llm: bool) -> AsyncIterator[Engines]:
    """The STT, TTS (and LLM) engines built from the config's sections, loaded and warmed up."""
    section = config.engines
    models_dir = models_dir_of(section, config.data_dir)
    engines = Engines(
        stt=SttEngine(FallbackChain("stt", stt_slots(section.stt, models_dir))),
        tts=TtsEngine(tts_slots(section.tts, models_dir)),
        llm=LlmEngine(llm_slots(section.llm, models_dir), first_token_timeout_s=section.llm.first_token_timeout_s)
        if llm else None,
    )
    try:
        for engine in engines.all():
            status = await engine.start()
            if status.state is EngineState.FAILED:
                raise RuntimeError(f"{status.engine} did not load: {status.detail}")
        yield engines
    finally:
        for engine in engines.all():
            await engine.close()


def line_audio_16k(wav: Path) -> np.ndarray:
    """The caller line as the STT hears it: 8 kHz upsampled to 16 kHz float32."""
    samples, rate = read_wav(wav)
    resampler = StreamResampler(rate, ENGINE_RATE)
    return np.concatenate([resampler.process(samples), resampler.flush()])


async def stt_once(stt: SttEngine, pcm: np.ndarray) -> tuple[float, str]:
    """(ms from the last audio chunk handed over to SttFinal, the text)."""
    handed_over: list[float] = []

    async def chunks() -> AsyncIterator[np.ndarray]:
        for at in range(0, len(pcm), CHUNK):
            yield pcm[at:at + CHUNK]
        handed_over.append(time.monotonic())

    final: SttFinal | None = None
    async with contextlib.aclosing(stt.transcribe(chunks(), LANGUAGE)) as events:
        async for event in events:
            if isinstance(event, SttFinal):
                final = event
    done = time.monotonic()
    return (done - handed_over[0]) * 1000, final.text.strip() if final else ""


async def tts_once(tts: TtsEngine, voice: PersonaVoice, text: str) -> float:
    """ms to the first audio chunk (the whole text is still synthesized, as in a call)."""
    started = time.monotonic()
    first: float | None = None
    async with contextlib.aclosing(tts.synthesize(voice.request(text), voice.backends)) as chunks:
        async for _ in chunks:
            first = first or time.monotonic()
    return float("nan") if first is None else (first - started) * 1000


async def llm_once(llm: LlmEngine, request: ChatRequest, chain: list[str] | None) -> tuple[float, float]:
    """(ms to the first text delta, ms to the first chunk the reply chunker releases); NaN: none.

    The first-token deadline is lifted (the call's is ``first_token_timeout_s``) so a slow start is measured.
    """
    chunker = ReplyChunker(LANGUAGE)
    started = time.monotonic()
    first_text = first_chunk = float("nan")
    try:
        async with contextlib.aclosing(llm.stream(request, chain, ISOLATED_LLM_DEADLINE_S)) as deltas:
            async for delta in deltas:
                if not delta.text:
                    continue
                if math.isnan(first_text):
                    first_text = (time.monotonic() - started) * 1000
                if chunker.feed(delta.text):
                    first_chunk = (time.monotonic() - started) * 1000
                    break  # closing the stream stops the generation
    except (ChainExhausted, RequestError) as exc:
        print(f"  (isolated llm request failed: {exc})", file=sys.stderr)
        return first_text, first_chunk
    if math.isnan(first_chunk) and chunker.flush():
        first_chunk = (time.monotonic() - started) * 1000
    return first_text, first_chunk


async def repeated(measure: Callable[[], Awaitable[float]], repeats: int) -> float:
    return median([await measure() for _ in range(repeats)])


def first_piece(reply: str) -> str:
    """The first text chunk the dialogue fed the TTS for this reply (both dialogues cut with the ReplyChunker)."""
    chunker = ReplyChunker(LANGUAGE)
    pieces = chunker.feed(reply) + chunker.flush()
    return pieces[0] if pieces else reply


def llm_request(config: SecretaryConfig, turn: Turn) -> ChatRequest:
    """The turn's conversation as the LlmDialogue would send it (earlier tool calls are not known here)."""
    persona = config.personas[config.call.persona]
    messages = [ChatMessage("system", system_prompt(persona, CALLER)), ChatMessage("assistant", persona.greeting)]
    for caller_text, reply in turn.history:
        messages += [ChatMessage("user", caller_text), ChatMessage("assistant", reply)]
    messages.append(ChatMessage("user", turn.timing.caller_text))
    settings = config.engines.llm
    return ChatRequest(messages=tuple(messages), tools=(SAVE_MESSAGE, END_CALL), max_tokens=settings.max_tokens,
                       temperature=settings.temperature, persona=persona.llm.lora)


@dataclass
class Isolated:
    stt: dict[str, tuple[float, str]] = field(default_factory=dict)  # wav name -> (median ms after idle, text)
    stt_warm: dict[str, float] = field(default_factory=dict)  # wav name -> median ms, runs back to back
    tts: dict[str, float] = field(default_factory=dict)  # first piece -> median ms
    llm: dict[tuple[str, ...], tuple[float, float]] = field(default_factory=dict)  # conversation -> (text, chunk)
    llm_cold: tuple[float, float] | None = None  # the engine's very first request (empty prompt cache)
    load_s: float = 0.0


async def measure_isolated(config: SecretaryConfig, turns: list[Turn], repeats: int, llm: bool) -> Isolated:
    found = Isolated()
    persona = config.personas[config.call.persona]
    voice = PersonaVoice.of(persona)
    started = time.monotonic()
    async with isolated_engines(config, llm) as engines:
        found.load_s = time.monotonic() - started
        for line in caller_script(LANGUAGE)[:LINES_PLAYED]:
            pcm = line_audio_16k(line.wav)
            warm = [await stt_once(engines.stt, pcm) for _ in range(repeats)]
            found.stt_warm[line.wav.name] = median([ms for ms, _ in warm])
            idle = []
            for _ in range(repeats):  # as in the call: the engine sat idle while the caller spoke the line
                await asyncio.sleep(line.seconds)
                idle.append(await stt_once(engines.stt, pcm))
            found.stt[line.wav.name] = (median([ms for ms, _ in idle]), idle[-1][1])
        for turn in turns:
            if turn.reply_text:
                piece = first_piece(turn.reply_text)
                if piece not in found.tts:
                    found.tts[piece] = await repeated(lambda: tts_once(engines.tts, voice, piece), repeats)
                turn.isolated["tts"] = found.tts[piece]
            if turn.line is not None:
                turn.isolated["stt"] = found.stt[turn.line.wav.name][0]
                turn.isolated["stt_warm"] = found.stt_warm[turn.line.wav.name]
            if engines.llm is not None and turn.by_llm:
                request = llm_request(config, turn)
                key = tuple(m.content for m in request.messages)
                if key not in found.llm:
                    runs = [await llm_once(engines.llm, request, persona.llm.chain) for _ in range(repeats)]
                    found.llm_cold = found.llm_cold or runs[0]
                    found.llm[key] = (median([r[0] for r in runs]), median([r[1] for r in runs]))
                turn.isolated["llm_first_text"], turn.isolated["llm_first_chunk"] = found.llm[key]
    return found


def isolated_sum(turn: Turn, stages: tuple[str, ...]) -> float | None:
    """The sum of the turn's isolated stages (the LLM's only when the LLM wrote the reply); None if one is missing."""
    names = [n for n in stages if n != "llm_first_chunk" or turn.by_llm]
    values = [turn.isolated.get(n) for n in names]
    if any(v is None or math.isnan(v) for v in values):
        return None
    return sum(v for v in values if v is not None)


def overhead_ms(turn: Turn, stt: str = "stt") -> float | None:
    """(first_audio_at - endpoint_at) minus the isolated STT + LLM-first-chunk + TTS times (clean turns only).

    ``stt`` picks the isolated STT figure: "stt" (after an idle gap as long as
    the caller's line, the state the engine is in when a caller stops) or
    "stt_warm" (runs back to back: caches and threads hot). With the early
    STT on, part of the STT ran before the endpoint, so the figure can go
    below zero: then it measures the pipelining, not an overhead.
    """
    total = turn.after_endpoint_ms if turn.clean else None
    alone = isolated_sum(turn, (stt, "llm_first_chunk", "tts"))
    return None if total is None or alone is None else total - alone


def overhead_after_stt_ms(turn: Turn) -> float | None:
    """The same without the STT: (first_audio_at - final_at) minus isolated LLM-first-chunk + TTS.

    Whisper's run-to-run spread (hundreds of ms on a small CPU) swamps the full
    figure; this one holds only the dialogue -> TTS -> line path.
    """
    total = ms_between(turn.timing, "final_at", "first_audio_at") if turn.clean else None
    alone = isolated_sum(turn, ("llm_first_chunk", "tts"))
    return None if total is None or alone is None else total - alone


def overhead_parts(turn: Turn) -> dict[str, float | None]:
    """The overhead split by stage: each in-call stage minus the same stage alone (they sum to the overhead).

    A scripted reply has no engine in the dialogue stage, so all of that stage is overhead.
    """

    def excess(in_call: float | None, alone: float | None) -> float | None:
        return None if in_call is None or alone is None or math.isnan(alone) else in_call - alone

    dialogue = turn.stage("llm_first_text")
    return {
        "stt": excess(turn.stage("stt"), turn.isolated.get("stt")),
        "dialogue": excess(dialogue, turn.isolated.get("llm_first_chunk")) if turn.by_llm else dialogue,
        "tts": excess(turn.stage("tts_first_audio"), turn.isolated.get("tts")),
        "to_line": turn.stage("to_line"),
    }


# -- the report --------------------------------------------------------------------------



def overhead_summary(clean: list[Turn]) -> dict[str, Any]:
    measured = [t for t in clean if overhead_ms(t) is not None]
    values = [v for t in measured if (v := overhead_ms(t)) is not None]
    parts = [overhead_parts(t) for t in measured]
    return {
        **spread(values, (50, 95)),
        "parts_p50": {
            name: percentile([v for p in parts if (v := p[name]) is not None], 50)
            for name in ("stt", "dialogue", "tts", "to_line")
        },
        "target_p50_ms": OVERHEAD_TARGET_MS,
        "met": bool(values) and percentile(values, 50) < OVERHEAD_TARGET_MS,
        "after_stt_final": spread([v for t in clean if (v := overhead_after_stt_ms(t)) is not None], (50, 95)),
        "against_warm_stt": spread([v for t in clean if (v := overhead_ms(t, "stt_warm")) is not None], (50, 95)),
    }


def isolated_summary(isolated: Isolated, repeats: int, llm: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "repeats": repeats,
        "engines_load_s": isolated.load_s,
        "stt": {**spread([ms for ms, _ in isolated.stt.values()]),
                "per_line": [{"wav": k, "ms": ms, "warm_ms": isolated.stt_warm[k], "text": text}
                             for k, (ms, text) in isolated.stt.items()]},
        "stt_warm": spread(list(isolated.stt_warm.values())),
        "tts_first_audio": {**spread(list(isolated.tts.values())),
                            "per_text": [{"text": k, "ms": ms} for k, ms in isolated.tts.items()]},
    }
    if llm:
        figures["llm_first_text"] = spread([a for a, _ in isolated.llm.values()])
        figures["llm_first_chunk"] = spread([b for _, b in isolated.llm.values()])
        if isolated.llm_cold is not None:
            figures["llm_cold_first_request"] = {"first_text": isolated.llm_cold[0], "first_chunk": isolated.llm_cold[1]}
    return figures


def summarize(run: CallsRun, isolated: Isolated, args: argparse.Namespace, load_at_start: float) -> dict[str, Any]:
    llm = args.llm is not None
    clean = [t for t in run.turns if t.clean]
    stages = {
        name: spread([v for t in (run.turns if name in PRE_REPLY else clean) if (v := t.stage(name)) is not None])
        for name in STAGES
    }
    return {
        "mode": "llm:smollm2" if llm else "scripted",
        "dialogues": run.dialogues,
        "outcomes": run.outcomes,
        "calls": args.calls,
        "warmup_calls": args.warmup_calls,
        "turns": len(run.turns),
        "fillers": sum(t.timing.filler for t in run.turns),
        "excluded": {  # from the per-stage figures after the STT final (not from voice_to_voice_ms)
            "filler": sum(t.timing.filler for t in run.turns),
            "interrupted": sum(t.timing.interrupted for t in run.turns),
            "no_audio": sum(t.timing.first_audio_at is None for t in run.turns),
        },
        "no_reply_audio": sum(t.to_reply_ms is None for t in run.turns),
        "voice_to_voice_ms": spread([v for t in run.turns if (v := t.to_reply_ms) is not None]),
        "voice_to_voice_any_audio_ms": spread([v for t in run.turns if (v := t.to_any_audio_ms) is not None]),
        "voice_to_voice_clean_ms": stages["voice_to_voice"],
        "stt_engine_in_call_ms": spread([t.timing.stt_engine_s * 1000 for t in run.turns if t.timing.stt_engine_s is not None]),
        "stages_ms": {k: v for k, v in stages.items() if k != "voice_to_voice"},
        "isolated_ms": isolated_summary(isolated, args.repeats, llm),
        "overhead_ms": overhead_summary(clean),
        "greeting_ms": {"p50": percentile(run.greeting_ms, 50), "max": max(run.greeting_ms, default=float("nan")),
                        "n": len(run.greeting_ms)},
        "per_turn": [per_turn(t) for t in run.turns],
        "machine": {**machine(), "loadavg_1m_at_start": load_at_start},
        "wall_s": {"calls": run.wall_s},
    }


def per_turn(turn: Turn) -> dict[str, Any]:
    return {
        "call": turn.call, "turn": turn.index + 1, "caller_text": turn.timing.caller_text,
        "reply": turn.reply_text, "source": turn.reply_source, "clean": turn.clean, "filler": turn.timing.filler,
        "to_reply_ms": turn.to_reply_ms, "to_any_audio_ms": turn.to_any_audio_ms,
        **{f"{name}_ms": turn.stage(name) for name in STAGES},
        **{f"iso_{k}_ms": v for k, v in turn.isolated.items()},
        "stt_engine_ms": None if turn.timing.stt_engine_s is None else turn.timing.stt_engine_s * 1000,
        "overhead_ms": overhead_ms(turn),
    }


def print_report(summary: dict[str, Any]) -> None:
    m = summary["machine"]
    ex = summary["excluded"]
    print(f"\nvoice-to-voice: mode {summary['mode']} (dialogues {', '.join(summary['dialogues'])}; "
          f"outcomes {', '.join(summary['outcomes'])}), {summary['calls']} calls, {summary['turns']} caller turns, "
          f"{summary['fillers']} with a filler; stages after the STT final leave out {ex['filler']} filler, "
          f"{ex['interrupted']} interrupted, {ex['no_audio']} without audio")
    print("settings: " + ", ".join(f"{k} {v}" for k, v in summary["settings"].items()))
    t = summary["turn_end"]
    print(f"turn end: {t['with_model']} of {t['listeners']} calls' listeners asked the turn-end model; the turns ended "
          f"by {', '.join(f'{k} {v}' for k, v in sorted(t['turn_ends'].items())) or '-'}")
    print(f"machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu']}; "
          f"load avg 1 min {m['loadavg_1m_at_start']:.2f} at start, {m['loadavg_1m']:.2f} at end")
    print_stages(summary)
    for label, key in (("all turns, to the reply", "voice_to_voice_ms"),
                       ("all turns, to any audio", "voice_to_voice_any_audio_ms")):
        fig = summary[key]
        print(f"{'v2v ' + label:22} {fig['n']:>3} {fmt(fig['p50']):>7} {fmt(fig['p95']):>7} {fmt(fig['p99']):>7}")
    print(f"{'':22} ({summary['fillers']} of {summary['turns']} turns had a filler; "
          f"{summary['no_reply_audio']} without reply audio have no figure)")
    e = summary["stt_engine_in_call_ms"]
    print(f"{'(stt engine, in call)':22} {e['n']:>3} {fmt(e['p50']):>7} {fmt(e['p95']):>7} {fmt(e['p99']):>7}"
          "  (the decode itself; with the early STT it began before the endpoint)")
    print_isolated(summary["isolated_ms"])
    print_turns(summary["per_turn"])
    print_overhead(summary["overhead_ms"])
    g = summary["greeting_ms"]
    print(f"greeting latency (line up -> first greeting frame): p50 {g['p50']:.1f} ms, max {g['max']:.1f} ms (n={g['n']})")


def print_stages(summary: dict[str, Any]) -> None:
    header = f"{'stage (in the call)':22} {'n':>3} {'p50':>7} {'p95':>7} {'p99':>7}  ms"
    print(header)
    print("-" * len(header))
    for name, fig in [*summary["stages_ms"].items(), ("v2v (clean turns)", summary["voice_to_voice_clean_ms"])]:
        print(f"{name:22} {fig['n']:>3} {fmt(fig['p50']):>7} {fmt(fig['p95']):>7} {fmt(fig['p99']):>7}")


def print_isolated(iso: dict[str, Any]) -> None:
    print(f"\nstages alone (median of {iso['repeats']} repeats per input; engines loaded in {iso['engines_load_s']:.1f} s)")
    for row in iso["stt"]["per_line"]:
        print(f"  stt  {row['wav']:22} {fmt(row['ms']):>6} ms after idle, {fmt(row['warm_ms']):>6} ms back to back"
              f"  heard: {row['text']}")
    for row in iso["tts_first_audio"]["per_text"]:
        print(f"  tts  first audio {fmt(row['ms']):>6} ms  for: {row['text']}")
    if "llm_first_text" in iso:
        a, b = iso["llm_first_text"], iso["llm_first_chunk"]
        print(f"  llm  first text p50 {fmt(a['p50'])} / p95 {fmt(a['p95'])} ms, first chunk p50 {fmt(b['p50'])} "
              f"/ p95 {fmt(b['p95'])} ms over {a['n']} conversations")
        if "llm_cold_first_request" in iso:
            cold = iso["llm_cold_first_request"]
            print(f"  llm  the engine's first request (cold prompt cache; one of its input's repeats): first text "
                  f"{fmt(cold['first_text'])} ms, first chunk {fmt(cold['first_chunk'])} ms")


def print_turns(turns: list[dict[str, Any]]) -> None:
    print(f"\n{'call/turn':9} {'reply by':9} {'v2v':>6} {'any':>6} {'stt':>6} {'stt*':>6} {'llm':>6} {'llm*':>6} {'tts':>6} {'tts*':>6} "
          f"{'line':>6} {'ovh':>6}  caller said  (* = alone; ovh = after-endpoint time - stt* - llm* - tts*)")
    for t in turns:
        llm_iso = t.get("iso_llm_first_chunk_ms")
        mark = " (f)" if t["filler"] else "" if t["clean"] else " (x)"
        print(f"{t['call']}/{t['turn']}{mark:7} {t['source'][:9]:9} {fmt(t['to_reply_ms']):>6} {fmt(t['to_any_audio_ms']):>6} "
              f"{fmt(t['stt_ms']):>6} {fmt(t.get('iso_stt_ms')):>6} {fmt(t['llm_first_text_ms']):>6} "
              f"{fmt(llm_iso):>6} {fmt(t['tts_first_audio_ms']):>6} {fmt(t.get('iso_tts_ms')):>6} "
              f"{fmt(t['to_line_ms']):>6} {fmt(t['overhead_ms']):>6}  {t['caller_text']}")
    print("(v2v: to the reply's first audio; any: to the first audio, filler or reply; (f) a filler played, "
          "(x) interrupted or no audio)")


def print_overhead(o: dict[str, Any]) -> None:
    verdict = "met" if o["met"] else "NOT met"
    print(f"\norchestration overhead: p50 {fmt(o['p50'])} ms, p95 {fmt(o['p95'])} ms (n={o['n']}); "
          f"target p50 < {o['target_p50_ms']:.0f} ms: {verdict}")
    parts = ", ".join(f"{name} {value:+.0f}" for name, value in o["parts_p50"].items() if not math.isnan(value))
    print(f"  by stage, in the call minus alone, p50 ms: {parts}  (stt/tts: engine run-to-run spread is in these)")
    w = o["against_warm_stt"]
    print(f"  against the STT run back to back (warm) instead of after idle: p50 {fmt(w['p50'])} ms, p95 {fmt(w['p95'])} ms")
    a = o["after_stt_final"]
    print(f"  from the STT final on (dialogue -> TTS -> line, minus llm* + tts*): p50 {fmt(a['p50'])} ms, "
          f"p95 {fmt(a['p95'])} ms (n={a['n']})")


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = os.getloadavg()[0]
    models_dir = Path(args.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-v2v-") as tmp:
        config = bench_config(
            Path(tmp) / "data", models_dir, args.llm is not None, args.filler_after_ms, args.llm_first_token_timeout_s,
            args.whisper_threads, args.early_stt_ms,
        )
        async with TurnEndShim(config, fill=args.turn_end == "shim").installed() as shim:
            run = await run_calls(config, args.calls, args.warmup_calls)
        print("measuring the stages alone ...", flush=True)
        isolated = await measure_isolated(config, run.turns, args.repeats, args.llm is not None)
    summary = summarize(run, isolated, args, load_at_start)
    summary["settings"] = {
        "endpoint_silence_ms": config.call.endpoint_silence_ms, "filler_after_ms": config.call.filler_after_ms,
        "llm_first_token_timeout_s": config.engines.llm.first_token_timeout_s,
        "whisper_cpu_threads": config.engines.stt.faster_whisper.cpu_threads,
        "early_stt_ms": config.call.early_stt_ms,
        "turn_end": args.turn_end, "turn_end_threshold": config.call.turn_end.threshold,
        "turn_end_pause_ms": config.call.turn_end.pause_ms,
    }
    summary["turn_end"] = {"listeners": shim.listeners, "with_model": shim.with_model, "turn_ends": shim.stops}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3, help="whole calls to place (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="isolated runs per input, median taken (default 3)")
    parser.add_argument("--llm", choices=["smollm2"], default=None,
                        help="force the LLM dialogue (the packaged SmolLM2 marked conversational)")
    parser.add_argument("--warmup-calls", type=int, default=0,
                        help="calls placed first and not counted (e.g. to warm the LLM's prompt cache; default 0)")
    parser.add_argument("--filler-after-ms", type=int, default=None,
                        help="override call.filler_after_ms (200..2000; default: the config's, 1000)")
    parser.add_argument("--llm-first-token-timeout-s", type=float, default=None,
                        help="override engines.llm.first_token_timeout_s (default: the config's, 3 s)")
    parser.add_argument("--whisper-threads", type=int, default=None,
                        help="override engines.stt.faster_whisper.cpu_threads (default: the config's, 2)")
    parser.add_argument("--early-stt-ms", type=int, default=None,
                        help="override call.early_stt_ms (0: whisper decodes only at the endpoint; default: the config's, 200)")
    parser.add_argument("--turn-end", choices=["service", "shim"], default="service",
                        help="service: the turn-end policy the call service gives its listeners (call.turn_end); "
                             "shim: the bench gives it too, to count how turns ended (default: service)")
    parser.add_argument("--models-dir", default="/tmp/secretary-bench-models",
                        help="persistent models dir (packaged models are assembled there once)")
    args = parser.parse_args(argv)
    summary = asyncio.run(amain(args))
    print_report(summary)
    print_json_line(summary, digits=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
