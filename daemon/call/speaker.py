"""The secretary's mouth: text chunks -> TTS -> the line, and what the caller actually heard.

``Speaker.say`` takes the reply as an async stream of text chunks (the LLM is
still writing the later ones while the first is spoken), synthesizes each in
turn and feeds the audio to the line (``CallLine.play``). A ``ReplyProgress`` follows
the reply: the seconds of audio each chunk produced and the line's count of
reply frames when the reply began, so that after a barge-in (the caller
talks over the secretary: the line is cut, the reply task cancelled) the
words the caller heard can be told from the words that were never played.

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


@dataclass
class ReplyProgress:
    """What one reply has sent to the line so far."""

    mark: int  # line.audible_frames when the reply began
    segments: list[tuple[str, float]] = field(default_factory=list)  # (text, seconds of audio)
    first_audio_at: float | None = None  # monotonic time of the first reply frame on the line
    first_tts_at: float | None = None  # monotonic time the TTS delivered its first audio
    failed: list[str] = field(default_factory=list)  # chunks no TTS backend could speak
    finished: bool = False  # every chunk was played out to the end
    started: bool = False  # the reply's own audio (not a filler) began, or the reply ended: no filler now

    @property
    def planned_text(self) -> str:
        return " ".join(text for text, _ in self.segments).strip()

    def played_s(self, line: CallLine) -> float:
        return max(0, line.audible_frames - self.mark) * FRAME_S

    def heard_text(self, line: CallLine) -> str:
        """The words that reached the caller: whole chunks played, and the played share of a cut one."""
        if self.finished:
            return self.planned_text
        left = self.played_s(line)
        heard: list[str] = []
        for text, seconds in self.segments:
            if seconds <= 0:
                continue
            if left >= seconds - FRAME_S:
                heard.append(text)
                left -= seconds
                continue
            words = text.split()
            share = int(len(words) * max(0.0, left) / seconds)
            if share:
                heard.append(" ".join(words[:share]) + "…")
            break
        return " ".join(heard).strip()


class Speaker:
    def __init__(
        self,
        line: CallLine,
        tts: TtsEngine | None,
        voice: PersonaVoice,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.line = line
        self.tts = tts
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
                text, seconds = piece.text, await self._play_cached(piece, progress)
            else:
                text, seconds = piece, await self._speak_chunk(piece, progress)
            progress.segments.append((text, seconds))
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
            progress.segments.append((speech.text, speech.seconds))
            progress.first_tts_at = progress.first_tts_at or self._clock()
            played = await self.line.play(speech.samples, LINE_RATE) and await self.line.end_reply()
            self.line.begin_reply()
            return played

    async def say_cached(self, speech: CachedSpeech, progress: ReplyProgress) -> None:
        """Play a pre-synthesized phrase as a whole reply (greeting, goodbye); fillers go through ``interject``."""
        self.line.begin_reply()
        progress.segments.append((speech.text, speech.seconds))
        progress.first_tts_at = progress.first_tts_at or self._clock()
        await self.line.play(speech.samples, LINE_RATE)
        await self._finish(progress)

    def cut(self, fade_ms: float) -> None:
        """Barge-in: fade out what is playing, drop what is queued (cancel the reply task too)."""
        self.line.cut(fade_ms)

    async def _play_cached(self, speech: CachedSpeech, progress: ReplyProgress) -> float:
        async with self._feeding:
            progress.started = True
            progress.first_tts_at = progress.first_tts_at or self._clock()
            return speech.seconds if await self.line.play(speech.samples, LINE_RATE) else 0.0

    async def _speak_chunk(self, text: str, progress: ReplyProgress) -> float:
        if self.tts is None:
            log.error("no TTS engine is loaded: a reply chunk goes unspoken", extra={"text": text[:80]})
            progress.failed.append(text)
            return 0.0
        seconds = 0.0
        try:
            chunks = self.tts.synthesize(self.voice.request(text), self.voice.backends)
            async with contextlib.aclosing(chunks) as stream:
                async for chunk in stream:
                    async with self._feeding:
                        progress.started = True
                        if progress.first_tts_at is None:
                            progress.first_tts_at = self._clock()
                        if not await self.line.play(chunk.samples, chunk.sample_rate):
                            break
                    seconds += chunk.duration_s
        except (ChainExhausted, RequestError) as exc:
            log.error("tts could not speak a reply chunk", extra={"text": text[:80], "error": str(exc)})
            progress.failed.append(text)
        return seconds

    async def _finish(self, progress: ReplyProgress) -> None:
        if await self.line.end_reply():
            await self.line.wait_played()
            progress.finished = True


def _note_first_audio(progress: ReplyProgress, waiter: asyncio.Future[float]) -> None:
    if not waiter.cancelled() and progress.first_audio_at is None:
        progress.first_audio_at = waiter.result()
