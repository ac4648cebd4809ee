"""The secretary's mouth: text chunks -> TTS -> the line, and what the caller actually heard.

``Speaker.say`` takes the reply as an async stream of text chunks (the LLM is
still writing the later ones while the first is spoken), synthesizes each in
turn and feeds the audio to the line (``CallLine.play``). A ``ReplyProgress`` follows
the reply: the seconds of audio each chunk handed to the line (counted as it
is fed, so a chunk cut while the TTS is still speaking it counts too) and the
line's count of reply frames when the reply began, so that after a barge-in
(the caller talks over the secretary: the line is cut, the reply task
cancelled) the words the caller heard can be told from the words that were
never played.

No TTS backend gives word timings, so the heard words are estimated
(``HEARD_BY``): the played share of a chunk's audio is its share of the
chunk's words, each word weighted by its length. A chunk whose synthesis had
not finished at the cut is measured against its estimated length (the speech
rate of the sentences the TTS finished, else ``DEFAULT_CHARS_PER_S``), and
its last word is never counted as heard.

While a reply is still being written (the STT, the LLM or the TTS is slow)
the call flow may ``interject`` a cached filler: it goes out only if none of
the reply's own audio has, and the reply's audio waits behind it. One lock
keeps the two from ever feeding the line at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field

from daemon.call.line import CallLine
from daemon.voices.persona_voice import PersonaVoice
from daemon.voices.phrase_cache import CachedSpeech
from drivers.audio import FRAME_MS, LINE_RATE
from engines.fallback_chain import ChainExhausted, RequestError
from engines.tts.tts_engine import TtsEngine

log = logging.getLogger("secretary.call")

FRAME_S = FRAME_MS / 1000
HEARD_BY = "audio_share"  # how the heard words of a cut reply were found (the record's ``heard_by``)
DEFAULT_CHARS_PER_S = 14.0  # a TTS voice's speech rate when none was measured (about 150 words a minute)


@dataclass
class SpokenSegment:
    """One chunk of a reply (a clause, or a cached phrase) and the seconds of its audio fed to the line."""

    text: str
    seconds: float = 0.0
    complete: bool = True  # all of its audio was fed (False while the TTS is still speaking it)
    marked_chars: int = 0  # characters of the sentences the TTS finished within it...
    marked_s: float = 0.0  # ...and the seconds of audio they took (a measured speech rate)

    def length_s(self) -> float:
        """Its audio's length: known once complete, else estimated from the speech rate."""
        if self.complete:
            return self.seconds
        chars_per_s = self.marked_chars / self.marked_s if self.marked_s > 0 else DEFAULT_CHARS_PER_S
        return max(self.seconds, len(self.text) / chars_per_s)


def words_heard(text: str, share: float, *, last_word: bool = True) -> str:
    """The words of ``text`` said within the first ``share`` (0..1) of its audio, each word weighted by its length.

    A word counts once all of it was said; ``last_word=False`` never counts the
    last one (its audio was not all synthesized).
    """
    words = text.split()
    weights = [sum(ch.isalnum() for ch in word) + 1 for word in words]
    budget = max(0.0, min(1.0, share)) * sum(weights)
    said, total = 0, 0.0
    for weight in weights:
        total += weight
        if total > budget + 1e-9:
            break
        said += 1
    if not last_word:
        said = min(said, len(words) - 1)
    return " ".join(words[:said])


def heard_text_of(segments: list[SpokenSegment], played_s: float) -> str:
    """What the caller heard of ``segments`` when ``played_s`` seconds of them went out: whole chunks, then a share."""
    left = played_s
    heard: list[str] = []
    for segment in segments:
        if segment.seconds <= 0:
            continue  # none of its audio was fed (the TTS failed, or had not begun)
        length = segment.length_s()
        if segment.complete and left >= length - FRAME_S:
            heard.append(segment.text)
            left -= length
            continue
        words = words_heard(segment.text, left / length, last_word=segment.complete)
        if words:
            heard.append(words + "…")
        break
    return " ".join(heard).strip()


@dataclass
class ReplyProgress:
    """What one reply has sent to the line so far."""

    mark: int  # line.audible_frames when the reply began
    segments: list[SpokenSegment] = field(default_factory=list)  # in order, each added as it begins
    first_audio_at: float | None = None  # monotonic time of the first reply frame on the line
    first_tts_at: float | None = None  # monotonic time the TTS delivered its first audio
    failed: list[str] = field(default_factory=list)  # chunks no TTS backend could speak
    finished: bool = False  # every chunk was played out to the end
    started: bool = False  # the reply's own audio (not a filler) began, or the reply ended: no filler now
    fillers: int = 0  # fillers played before the reply's own audio
    after_fillers: asyncio.Future[float] | None = None  # dates the first frame after the last filler

    @property
    def reply_audio_at(self) -> float | None:
        """Monotonic time of the reply's own first frame (after its fillers); None: none went out."""
        if not self.fillers:
            return self.first_audio_at
        waiter = self.after_fillers
        if not self.started or waiter is None or not waiter.done() or waiter.cancelled():
            return None
        return waiter.result()

    @property
    def planned_text(self) -> str:
        return " ".join(segment.text for segment in self.segments).strip()

    def played_s(self, line: CallLine) -> float:
        return max(0, line.audible_frames - self.mark) * FRAME_S

    def heard_text(self, line: CallLine) -> str:
        """The words that reached the caller: whole chunks played, and the played share of a cut one."""
        if self.finished:
            return self.planned_text
        return heard_text_of(self.segments, self.played_s(line))


class Speaker:
    def __init__(
        self,
        line: CallLine,
        tts: TtsEngine | None,
        voice: PersonaVoice,
        clock: Callable[[], float] = time.monotonic,
        current_tts: Callable[[], TtsEngine | None] | None = None,
    ) -> None:
        self.line = line
        self.tts = tts
        # Asked before each chunk when given: a TTS that loads mid-call (or replaces a reloaded one) speaks
        # the next chunk, instead of the call staying with the engine it started with.
        self._current_tts = current_tts
        self.voice = voice
        self._clock = clock
        self._feeding = asyncio.Lock()  # the reply or a filler put before it: one feeds the line at a time

    def begin(self) -> ReplyProgress:
        progress = ReplyProgress(mark=self.line.audible_frames)
        waiter = self.line.first_audible_after(progress.mark)
        waiter.add_done_callback(lambda f: _note_first_audio(progress, f))
        return progress

    async def say(self, pieces: AsyncIterable[str | CachedSpeech], progress: ReplyProgress) -> None:
        """Speak every text chunk (or cached phrase) of ``pieces``; returns once the line has played it all."""
        self.line.begin_reply()
        async for piece in pieces:
            if progress.segments:
                self.line.next_segment()
            if isinstance(piece, CachedSpeech):
                await self._play_cached(piece, progress)
            else:
                await self._speak_chunk(piece, progress)
        async with self._feeding:
            progress.started = True
        await self._finish(progress)

    async def interject(self, speech: CachedSpeech, progress: ReplyProgress) -> bool:
        """Play a filler before the reply, if none of the reply's audio has gone out yet; False if too late.

        The filler is played to its end (the line goes idle after it, not into
        an underrun); reply audio that arrives meanwhile queues behind it.
        """
        async with self._feeding:
            if progress.started:
                return False
            progress.segments.append(SpokenSegment(speech.text, speech.seconds))
            progress.first_tts_at = progress.first_tts_at or self._clock()
            played = await self.line.play(speech.samples, LINE_RATE) and await self.line.end_reply()
            self.line.begin_reply()
            if played:  # the reply's own audio queues behind every frame now in the buffer (to a frame)
                progress.fillers += 1
                if progress.after_fillers is not None:
                    progress.after_fillers.cancel()
                progress.after_fillers = self.line.first_audible_after(self.line.audible_frames + self.line.queued_frames)
            return played

    async def say_cached(self, speech: CachedSpeech, progress: ReplyProgress) -> None:
        """Play a pre-synthesized phrase as a whole reply (greeting, goodbye); fillers go through ``interject``."""
        self.line.begin_reply()
        progress.started = True  # the reply's own audio: no filler after it (an apology's question follows)
        progress.segments.append(SpokenSegment(speech.text, speech.seconds))
        progress.first_tts_at = progress.first_tts_at or self._clock()
        await self.line.play(speech.samples, LINE_RATE)
        await self._finish(progress)

    def cut(self, fade_ms: float) -> None:
        """Barge-in: fade out what is playing, drop what is queued (cancel the reply task too)."""
        self.line.cut(fade_ms)

    async def _play_cached(self, speech: CachedSpeech, progress: ReplyProgress) -> None:
        async with self._feeding:
            progress.started = True
            progress.first_tts_at = progress.first_tts_at or self._clock()
            progress.segments.append(SpokenSegment(speech.text, speech.seconds))
            await self.line.play(speech.samples, LINE_RATE)

    async def _speak_chunk(self, text: str, progress: ReplyProgress) -> None:
        """Synthesize and play one chunk; its segment counts each piece of audio as it is handed to the line.

        The segment joins the reply with its first audio (a filler may still
        go before it until then), or at the end if it got none.
        """
        segment = SpokenSegment(text, complete=False)
        placed = False
        if self._current_tts is not None:
            self.tts = self._current_tts() or self.tts
        if self.tts is None:
            log.error("no TTS engine is loaded: a reply chunk goes unspoken", extra={"text": text[:80]})
            progress.failed.append(text)
            progress.segments.append(segment)
            return
        try:
            chunks = self.tts.synthesize(self.voice.request(text), self.voice.backends)
            async with contextlib.aclosing(chunks) as stream:
                async for chunk in stream:
                    async with self._feeding:
                        progress.started = True
                        if progress.first_tts_at is None:
                            progress.first_tts_at = self._clock()
                        if not placed:
                            progress.segments.append(segment)
                            placed = True
                        segment.seconds += chunk.duration_s  # before the play: the line may take it partly
                        if chunk.text:
                            segment.marked_chars += len(chunk.text.strip())
                            segment.marked_s = segment.seconds
                        if not await self.line.play(chunk.samples, chunk.sample_rate):
                            return
            segment.complete = True
        except (ChainExhausted, RequestError) as exc:
            log.error("tts could not speak a reply chunk", extra={"text": text[:80], "error": str(exc)})
            progress.failed.append(text)
        if not placed:
            progress.segments.append(segment)

    async def _finish(self, progress: ReplyProgress) -> None:
        if await self.line.end_reply():
            await self.line.wait_played()
            progress.finished = True


def _note_first_audio(progress: ReplyProgress, waiter: asyncio.Future[float]) -> None:
    if not waiter.cancelled() and progress.first_audio_at is None:
        progress.first_audio_at = waiter.result()
