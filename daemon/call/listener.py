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

from drivers.audio import ENGINE_RATE
from engines.fallback_chain import ChainExhausted, RequestError
from engines.stt.interface import SttFinal, SttPartial
from engines.stt.stt_engine import SttEngine
from engines.vad.speech_detector import SpeechDetector, SpeechEnded, SpeechStarted

log = logging.getLogger("secretary.call")

HISTORY_S = 1.5


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detector = detector
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

    async def run(self, audio: AsyncIterator[np.ndarray]) -> None:
        """Listen until ``audio`` ends (the call's audio is gone); an utterance in progress is finished."""
        async with asyncio.TaskGroup() as tasks:
            async for chunk in audio:
                self._remember(chunk)
                if self._feed is not None:
                    self._feed.put_nowait(chunk)
                if self._collected is not None:
                    self._collected.append(chunk)
                for event in self.detector.feed(chunk):
                    self._on_vad(event, tasks)
                self._maybe_decode_early(tasks)
            for event in self.detector.finish():
                self._on_vad(event, tasks, cut_by_hangup=True)

    def _remember(self, chunk: np.ndarray) -> None:
        self._history.append((self._position, chunk))
        self._position += chunk.size
        keep_from = self._position - int(HISTORY_S * ENGINE_RATE)
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

    def _on_vad(self, event: SpeechStarted | SpeechEnded, tasks: asyncio.TaskGroup, *, cut_by_hangup: bool = False) -> None:
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
                                 voiced_end_s=voiced_end))
        if live is not None:
            live.put_nowait(ending)
            return
        assert collected is not None
        if early is not None and early.voiced_until == self.detector.last_voiced_end_s and not cut_by_hangup:
            decode = early.task  # the caller stayed quiet since it began: it heard everything
        else:
            decode = tasks.create_task(self._decode(collected), name="stt-utterance")
        tasks.create_task(self._deliver(decode, start, ending), name="stt-final")

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
