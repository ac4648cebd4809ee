"""The secretary's ears: caller audio -> VAD endpointing -> STT, as events for the call flow.

Caller audio (float32 at ``ENGINE_RATE``, 20 ms pieces) goes through a ``SpeechDetector``.
When speech starts the listener reports ``CallerSpeechStarted`` at once (the
call flow uses it for barge-in). When the detector's silence window closes it
reports ``CallerStopped`` at once (the endpoint: the call flow starts its
reply, and its filler clock, there); the transcript follows as the
``CallerUtterance`` of the same ``seq``. Sounds shorter than
``min_utterance_ms`` are ``CallerNoise`` instead, and are never transcribed.

How the transcript is made depends on the STT backend:

- a streaming recogniser (Vosk) hears the utterance live from its onset (kept
  in a short history), with partials; its final comes right after the end;
- a segment recogniser (whisper) reads the whole utterance and then decodes
  it, which takes most of a second on a small CPU. So the listener does not
  wait for the endpoint: once the caller has been quiet for ``early_stt_ms``
  it starts decoding what they said so far. If they stay quiet until the
  endpoint, that decode is the transcript, and it has had the rest of the
  silence window to run; if they speak again it is dropped and the utterance
  is decoded whole at the endpoint. Decodes run one at a time. Whisper gets
  the silence after the words too: cut right after the last word, it drops
  words (whisper-base turned a Russian sentence into "и").

With a turn-end model (``turn_end``: Smart Turn v3, ``engines.turn_end``) the
turn does not wait for the fixed silence window. Once the caller has been
quiet ``pause_ms`` the model is asked, in a worker thread, about the utterance
so far (its last 8 s, the pause included): a complete turn (probability at or
above ``threshold``) ends now, if the caller is still quiet when the answer
comes; an unfinished one ("my number is eight nine one six ...") waits for
the caller up to ``max_silence_ms``, so the detector's own window is raised
to that. A judgment still running at the detector's configured window
(``call.endpoint_silence_ms``) is waited for, and so is one that waits for
the judgment of an earlier pause (a busy CPU must not cut the caller off);
a pause the model failed on, or a sound too short to be an utterance, ends
there as it would without a model. ``CallerStopped.ended_by`` says which.

With an ``echo_gate`` (``engines.vad.echo_gate``, told of every frame the
line sends) the detector hears the caller audio the box's own echo does not
explain, so the box's voice coming back over the network is not a barge-in;
STT and the turn-end model keep the real audio.

Times are call times: seconds of caller audio since the line came up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from config.call_schema import TurnEndConfig
from daemon.records.call_record import ENDED_BY_HANGUP, ENDED_BY_LONG_SILENCE, ENDED_BY_SILENCE, ENDED_BY_TURN_END
from drivers.audio import ENGINE_RATE
from engines.fallback_chain import ChainExhausted, RequestError
from engines.stt.interface import SttFinal, SttPartial
from engines.stt.stt_engine import SttEngine
from engines.turn_end.interface import TurnEndModel
from engines.vad.echo_gate import EchoGate
from engines.vad.speech_detector import SpeechDetector, SpeechEnded, SpeechStarted
from engines.vad.vad_engine import VadEngine

log = logging.getLogger("secretary.call")

HISTORY_S = 1.5


@dataclass(frozen=True)
class TurnEndPolicy:
    """A loaded turn-end model and when to ask it (``call.turn_end``)."""

    model: TurnEndModel
    pause_s: float
    threshold: float
    max_silence_ms: int


def turn_end_policy(config: TurnEndConfig, vad: VadEngine | None) -> TurnEndPolicy | None:
    """The call's turn-end policy: None when it is turned off or the VAD engine has no model loaded."""
    model = vad.turn_end if vad is not None else None
    if not config.enabled or model is None:
        return None
    return TurnEndPolicy(model, config.pause_ms / 1000, config.threshold, config.max_silence_ms)


@dataclass(frozen=True)
class CallerSpeechStarted:
    at_s: float
    detected_at: float  # monotonic


@dataclass(frozen=True)
class CallerPartial:
    text: str


@dataclass(frozen=True)
class CallerStopped:
    """The endpoint: the caller's turn is over; its transcript follows as the ``CallerUtterance`` of the same seq."""

    seq: int
    start_s: float
    end_s: float
    endpoint_at: float  # monotonic: the silence window closed
    voiced_end_s: float  # the caller's voice ended here: ``end_s`` without the detector's speech padding
    ended_by: str = ENDED_BY_SILENCE  # one of TURN_ENDED_BY (daemon/records/call_record.py)


@dataclass(frozen=True)
class CallerUtterance:
    seq: int
    text: str
    start_s: float
    end_s: float
    endpoint_at: float  # monotonic: the silence window closed
    final_at: float  # monotonic: the STT final arrived
    stt_s: float  # the STT's own processing time
    understood: bool = True  # False: no STT backend could transcribe it
    cut_by_hangup: bool = False


@dataclass(frozen=True)
class CallerNoise:
    start_s: float
    end_s: float


ListenerEvent = CallerSpeechStarted | CallerPartial | CallerStopped | CallerUtterance | CallerNoise


class CallerListener:
    def __init__(
        self,
        detector: SpeechDetector,
        stt: SttEngine | None,
        language: str,
        emit: Callable[[ListenerEvent], None],
        *,
        min_utterance_ms: int = 250,
        early_stt_ms: int | None = 200,
        turn_end: TurnEndPolicy | None = None,
        echo_gate: EchoGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detector = detector
        self.echo_gate = echo_gate
        self.stt = stt
        self.language = language
        self._emit = emit
        self._min_utterance_s = min_utterance_ms / 1000
        self._early_s = None if early_stt_ms is None else early_stt_ms / 1000
        self._clock = clock
        self._history: deque[tuple[int, np.ndarray]] = deque()  # (first sample index, audio)
        self._position = 0  # samples received
        self._feed: asyncio.Queue[_FeedItem] | None = None  # a streaming recogniser hears the utterance live
        self._collected: list[np.ndarray] | None = None  # a segment recogniser gets it whole
        self._early: _EarlyDecode | None = None
        self._decoding = asyncio.Lock()  # one segment decode at a time: they share the CPU
        self._utterance_start = 0.0
        self._seq = 0  # utterances endpointed so far
        self.decodes = 0  # segment decodes started (early ones included)
        self._turn_end = turn_end
        self._fixed_window_s = detector.settings.min_silence_ms / 1000  # the turn's end without a verdict
        self._history_s = HISTORY_S
        self._asked: float | None = None  # the pause (last voiced end, s) the model was asked about
        self._failed: float | None = None  # the pause the model failed to judge
        self._asking: asyncio.Task[None] | None = None
        self.turn_end_asks = 0  # judgments asked of the model
        self.turn_end_ms: deque[float] = deque(maxlen=32)  # how long the recent ones took (wall ms)
        if turn_end is not None:
            self._history_s = max(HISTORY_S, turn_end.model.window_s)
            detector.set_min_silence_ms(max(turn_end.max_silence_ms, detector.settings.min_silence_ms))

    async def run(self, audio: AsyncIterator[np.ndarray]) -> None:
        """Listen until ``audio`` ends (the call's audio is gone); an utterance in progress is finished."""
        async with asyncio.TaskGroup() as tasks:
            async for chunk in audio:
                self._remember(chunk)
                if self._feed is not None:
                    self._feed.put_nowait(chunk)
                if self._collected is not None:
                    self._collected.append(chunk)
                heard = chunk if self.echo_gate is None else self.echo_gate.clean(chunk)
                for event in self.detector.feed(heard):
                    self._on_vad(event, tasks, ended_by=ENDED_BY_LONG_SILENCE if self._turn_end is not None else ENDED_BY_SILENCE)
                self._maybe_ask_turn_end(tasks)
                self._maybe_decode_early(tasks)
            for event in self.detector.finish():
                self._on_vad(event, tasks, cut_by_hangup=True, ended_by=ENDED_BY_HANGUP)

    def _remember(self, chunk: np.ndarray) -> None:
        self._history.append((self._position, chunk))
        self._position += chunk.size
        keep_from = self._position - int(self._history_s * ENGINE_RATE)
        while self._history and self._history[0][0] + self._history[0][1].size < keep_from:
            self._history.popleft()

    def _since(self, at_s: float) -> list[np.ndarray]:
        start = int(at_s * ENGINE_RATE)
        parts = []
        for first, chunk in self._history:
            if first + chunk.size <= start:
                continue
            parts.append(chunk[max(0, start - first):])
        return parts

    def _on_vad(
        self, event: SpeechStarted | SpeechEnded, tasks: asyncio.TaskGroup, *, cut_by_hangup: bool = False,
        ended_by: str = ENDED_BY_SILENCE,
    ) -> None:
        if isinstance(event, SpeechStarted):
            self._emit(CallerSpeechStarted(at_s=event.at_s, detected_at=self._clock()))
            self._utterance_start = event.at_s
            self._early = None
            if self.stt is not None and not self.stt.streams:
                self._collected = self._since(event.at_s)
                return
            feed: asyncio.Queue[_FeedItem] = asyncio.Queue()
            for part in self._since(event.at_s):
                feed.put_nowait(part)
            self._feed = feed
            tasks.create_task(self._transcribe(feed, event.at_s), name="stt-utterance")
            return
        live, self._feed = self._feed, None
        collected, self._collected = self._collected, None
        early, self._early = self._early, None
        start, end = self._utterance_start, event.at_s
        if live is None and collected is None:
            return
        if event.speech_s < self._min_utterance_s and not cut_by_hangup:
            if live is not None:
                live.put_nowait(_DISCARD)
            self._emit(CallerNoise(start_s=start, end_s=end))
            return
        self._seq += 1
        ending = _End(self._seq, end, self._clock(), cut_by_hangup)
        voiced_end = end - self.detector.settings.speech_pad_ms / 1000
        self._emit(CallerStopped(seq=ending.seq, start_s=start, end_s=end, endpoint_at=ending.endpoint_at,
                                 voiced_end_s=voiced_end, ended_by=ended_by))
        if live is not None:
            live.put_nowait(ending)
            return
        assert collected is not None
        if early is not None and early.voiced_until == self.detector.last_voiced_end_s and not cut_by_hangup:
            decode = early.task  # the caller stayed quiet since it began: it heard everything
        else:
            decode = tasks.create_task(self._decode(collected), name="stt-utterance")
        tasks.create_task(self._deliver(decode, start, ending), name="stt-final")

    def _maybe_ask_turn_end(self, tasks: asyncio.TaskGroup) -> None:
        """At ``pause_ms`` of quiet ask the model once per pause; without its verdict end at the fixed window."""
        policy = self._turn_end
        if policy is None or not self.detector.in_speech:
            return
        quiet = self.detector.quiet_s
        if quiet < policy.pause_s:
            return
        voiced_until = self.detector.last_voiced_end_s
        if self._failed == voiced_until or voiced_until - self._utterance_start < self._min_utterance_s:
            # the model failed on this pause, or there is only a noise so far: the fixed window, as without a model
            if quiet >= self._fixed_window_s:
                for event in self.detector.end_now():
                    self._on_vad(event, tasks, ended_by=ENDED_BY_SILENCE)
            return
        if self._asked == voiced_until:
            return  # judged, or being judged: a complete verdict ends the turn, else the long window does
        if self._asking is not None and not self._asking.done():
            return  # still judging an earlier pause: this one is asked next (the long window bounds the wait)
        self._asked = voiced_until
        now_s = self._position / ENGINE_RATE
        audio = np.concatenate(self._since(max(self._utterance_start, now_s - policy.model.window_s)) or [_DISCARD])
        self._asking = tasks.create_task(self._judge_turn(policy, audio, voiced_until, tasks), name="turn-end")

    async def _judge_turn(
        self, policy: TurnEndPolicy, audio: np.ndarray, voiced_until: float, tasks: asyncio.TaskGroup,
    ) -> None:
        """Ask the model about the pause after ``voiced_until``; end the turn if complete and the caller is still quiet."""
        self.turn_end_asks += 1
        started = time.monotonic()
        try:
            p = await policy.model.completion(audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed judgment leaves the fixed window, never the ears
            log.warning("turn-end model failed: the turn ends after the silence window", extra={"error": str(exc)})
            self._failed = voiced_until
            return
        self.turn_end_ms.append((time.monotonic() - started) * 1000)
        complete = p >= policy.threshold
        log.debug("turn end judged", extra={"p": round(p, 3), "complete": complete})
        if complete and self.detector.in_speech and self.detector.last_voiced_end_s == voiced_until:
            for event in self.detector.end_now():
                self._on_vad(event, tasks, ended_by=ENDED_BY_TURN_END)

    def _maybe_decode_early(self, tasks: asyncio.TaskGroup) -> None:
        """Start decoding a segment recogniser's utterance once the caller has paused ``early_stt_ms``."""
        if self._collected is None or self._early_s is None or not self.detector.in_speech:
            return
        if self.detector.quiet_s < self._early_s:
            return
        voiced_until = self.detector.last_voiced_end_s
        if voiced_until - self._utterance_start < self._min_utterance_s:
            return  # so far only a noise: it may never be transcribed
        if self._early is not None and self._early.voiced_until == voiced_until:
            return  # already decoding this pause
        if self._early is not None and not self._early.task.done():
            return  # the caller spoke again while the last one runs: the endpoint decodes it all
        self._early = _EarlyDecode(voiced_until, tasks.create_task(self._decode(list(self._collected)), name="stt-early"))

    async def _decode(self, audio: list[np.ndarray]) -> tuple[SttFinal | None, bool]:
        """A segment recogniser's transcript of ``audio``: (final, understood)."""
        assert self.stt is not None
        async with self._decoding:
            self.decodes += 1

            async def chunks() -> AsyncIterator[np.ndarray]:
                for chunk in audio:
                    yield chunk

            final: SttFinal | None = None
            try:
                async with contextlib.aclosing(self.stt.transcribe(chunks(), self.language)) as events:
                    async for event in events:
                        if isinstance(event, SttFinal):
                            final = event
            except (ChainExhausted, RequestError) as exc:
                log.error("stt failed on a caller utterance", extra={"error": str(exc)})
                return None, False
            return final, True

    async def _deliver(self, decode: asyncio.Task[tuple[SttFinal | None, bool]], start_s: float, ending: _End) -> None:
        final, understood = await decode
        self._emit_utterance(ending, start_s, final, understood)

    def _emit_utterance(self, ending: _End, start_s: float, final: SttFinal | None, understood: bool) -> None:
        self._emit(CallerUtterance(
            seq=ending.seq, text=final.text.strip() if final is not None else "", start_s=start_s, end_s=ending.end_s,
            endpoint_at=ending.endpoint_at, final_at=self._clock(), stt_s=final.processing_s if final is not None else 0.0,
            understood=understood, cut_by_hangup=ending.cut_by_hangup,
        ))

    async def _transcribe(self, feed: asyncio.Queue[_FeedItem], start_s: float) -> None:
        discarded = False
        ending: _End | None = None

        async def audio() -> AsyncIterator[np.ndarray]:
            nonlocal discarded, ending
            while True:
                part = await feed.get()
                if isinstance(part, _End):
                    ending = part
                    return
                if part is _DISCARD:
                    discarded = True
                    return
                yield part

        final: SttFinal | None = None
        understood = True
        if self.stt is None:
            understood = False
            async for _ in audio():
                pass
        else:
            try:
                async with contextlib.aclosing(self.stt.transcribe(audio(), self.language)) as events:
                    async for event in events:
                        if discarded:
                            break
                        if isinstance(event, SttPartial) and event.text:
                            self._emit(CallerPartial(event.text))
                        elif isinstance(event, SttFinal):
                            final = event
            except (ChainExhausted, RequestError) as exc:
                log.error("stt failed on a caller utterance", extra={"error": str(exc)})
                understood = False
        if ending is None and not discarded:
            async for _ in audio():  # the STT gave up early: wait for the end of the utterance
                pass
        if discarded or ending is None:
            return
        self._emit_utterance(ending, start_s, final, understood)


@dataclass(frozen=True)
class _EarlyDecode:
    voiced_until: float  # the detector's last voiced audio when it began (s): later speech makes it stale
    task: asyncio.Task[tuple[SttFinal | None, bool]]


@dataclass(frozen=True)
class _End:
    seq: int
    end_s: float
    endpoint_at: float
    cut_by_hangup: bool


_DISCARD = np.zeros(0, dtype=np.float32)
_FeedItem = np.ndarray | _End
