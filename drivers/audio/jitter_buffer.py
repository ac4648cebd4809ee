"""Bounded jitter buffer between the TTS producer and the 20 ms line consumer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from drivers.audio.fades import fade_out_curve
from drivers.audio.pcm import AudioLike, Int16Array, as_int16

log = logging.getLogger(__name__)


class BufferState(StrEnum):
    """Where the buffer is in its play cycle."""

    IDLE = "idle"  # nothing to play; the line gets fill
    BUFFERING = "buffering"  # collecting pre-roll; the line gets fill
    PLAYING = "playing"  # frames go to the line


class Overflow(StrEnum):
    """What ``write_nowait`` does with samples that do not fit."""

    DROP_NEWEST = "drop_newest"  # keep what is queued, drop the excess of the new chunk
    DROP_OLDEST = "drop_oldest"  # make room by discarding the oldest queued samples


class Fill(StrEnum):
    """What the line gets when there is nothing (or not enough) to play."""

    SILENCE = "silence"
    COMFORT_NOISE = "comfort_noise"


@dataclass
class BufferStats:
    """Counters since the buffer was created."""

    frames_read: int = 0
    frames_played: int = 0  # frames that carried at least some buffered audio
    underruns: int = 0  # frames short of audio while playing (not pre-roll, not end of stream)
    underrun_samples: int = 0
    gap_frames: int = 0  # whole frames of fill while re-collecting pre-roll after an underrun
    overruns: int = 0  # writes that dropped samples
    dropped_samples: int = 0
    cuts: int = 0
    max_level: int = 0  # highest fill level seen, in samples


@dataclass(frozen=True)
class BufferEvent:
    """An underrun or overrun, passed to the ``on_event`` callback."""

    kind: str  # "underrun" | "overrun"
    samples: int  # samples filled (underrun) or dropped (overrun)
    level: int  # fill level after the event


class StreamingAudioBuffer:
    """Ring buffer of int16 line samples with pre-roll, gap fill and barge-in cut.

    The producer writes chunks of any size (``write`` waits for room,
    ``write_nowait`` drops per ``overflow``) and calls ``end_of_stream`` after
    an utterance; the consumer calls ``read_frame`` once per tick and always
    gets exactly one frame, never waits. Playback starts once ``preroll``
    samples are queued (or the stream has ended); a frame short of audio while
    playing is an underrun: the gap is filled and pre-roll is collected again.
    Not thread-safe: use it from the event loop (threads hand chunks over with
    ``loop.call_soon_threadsafe``).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        frame_size: int = 160,
        capacity_ms: float = 2000.0,
        preroll_ms: float = 100.0,
        overflow: Overflow | str = Overflow.DROP_NEWEST,
        fill: Fill | str = Fill.SILENCE,
        comfort_noise_dbfs: float = -65.0,
        cut_fade_ms: float = 10.0,
        on_event: Callable[[BufferEvent], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_size = frame_size
        self.capacity = max(frame_size, round(capacity_ms * sample_rate / 1000))
        self.preroll = min(self.capacity, max(0, round(preroll_ms * sample_rate / 1000)))
        self.overflow = Overflow(overflow)
        self.fill = Fill(fill)
        self.cut_fade = max(0, round(cut_fade_ms * sample_rate / 1000))
        self._noise_amplitude = 32768.0 * 10 ** (comfort_noise_dbfs / 20)
        self._rng = np.random.default_rng(seed)
        self._on_event = on_event
        self._ring = np.zeros(self.capacity, dtype=np.int16)
        self._start = 0  # read position
        self._count = 0  # queued samples
        self._state = BufferState.IDLE
        self._ended = False
        self._rebuffering = False
        self._generation = 0
        self._room = asyncio.Event()
        self._room_wanted = 1  # free samples that wake a waiting writer
        self._batch = max(frame_size, self.capacity // 4)
        self._drained = asyncio.Event()
        self._drained.set()
        self.stats = BufferStats()

    # --- state -----------------------------------------------------------

    @property
    def state(self) -> BufferState:
        """Current play state."""
        return self._state

    @property
    def level(self) -> int:
        """Queued samples."""
        return self._count

    @property
    def free(self) -> int:
        """Room left, in samples."""
        return self.capacity - self._count

    @property
    def generation(self) -> int:
        """Incremented by every ``cut``/``clear``; a producer can tell its audio was dropped."""
        return self._generation

    # --- producer --------------------------------------------------------

    def write_nowait(self, samples: AudioLike) -> int:
        """Queue samples without waiting; returns how many were queued.

        What does not fit is handled per ``overflow`` and reported as an overrun.
        """
        data = as_int16(samples)
        if data.size == 0:
            return 0
        dropped = 0
        if data.size > self.free:
            if self.overflow is Overflow.DROP_OLDEST:
                if data.size >= self.capacity:
                    dropped = self._count + data.size - self.capacity
                    data = data[data.size - self.capacity :]
                    self._start, self._count = 0, 0
                else:
                    discard = data.size - self.free
                    self._start = (self._start + discard) % self.capacity
                    self._count -= discard
                    dropped = discard
            else:
                dropped = data.size - self.free
                data = data[: self.free]
        self._put(data)
        if dropped:
            self.stats.overruns += 1
            self.stats.dropped_samples += dropped
            self._emit("overrun", dropped)
        return int(data.size)

    async def write(self, samples: AudioLike) -> bool:
        """Queue all samples, waiting for room as the line plays.

        A waiting writer is woken once a quarter of the buffer (or all it still
        needs) is free, not on every frame. Returns False (and stops) if the
        buffer was cut or cleared meanwhile.
        """
        data = as_int16(samples)
        generation = self._generation
        offset = 0
        while offset < data.size:
            if self._generation != generation:
                return False
            room = self.free
            if room == 0:
                self._room_wanted = min(data.size - offset, self._batch)
                self._room.clear()
                await self._room.wait()
                continue
            part = data[offset : offset + room]
            self._put(part)
            offset += part.size
        return self._generation == generation

    def end_of_stream(self) -> None:
        """The current utterance is complete: play out what is queued, then go idle."""
        self._ended = True
        if self._state is BufferState.BUFFERING:
            self._state = BufferState.PLAYING
            self._rebuffering = False
        if self._count == 0:
            self._go_idle()

    # --- consumer --------------------------------------------------------

    def read_frame(self) -> Int16Array:
        """Exactly one frame for the line; fill where audio is missing. Never blocks."""
        self.stats.frames_read += 1
        if self._state is not BufferState.PLAYING:
            if self._rebuffering:
                self.stats.gap_frames += 1
            return self._fill(self.frame_size)
        n = min(self.frame_size, self._count)
        frame = self._take(n)
        if n:
            self.stats.frames_played += 1
        if n < self.frame_size:
            missing = self.frame_size - n
            frame = np.concatenate((frame, self._fill(missing)))
            if self._ended:
                self._go_idle()
            else:
                self.stats.underruns += 1
                self.stats.underrun_samples += missing
                self._state = BufferState.BUFFERING
                self._rebuffering = True
                self._emit("underrun", missing)
        elif self._count == 0 and self._ended:
            self._go_idle()
        return frame

    def cut(self, fade_ms: float | None = None) -> None:
        """Barge-in: fade out over ``fade_ms`` of what is queued, drop the rest."""
        fade = self.cut_fade if fade_ms is None else max(0, round(fade_ms * self.sample_rate / 1000))
        self.stats.cuts += 1
        self._generation += 1
        playing = self._state is BufferState.PLAYING
        n = min(fade, self._count) if playing else 0
        head = self._take(n)
        self._start, self._count = 0, 0
        if n:
            faded = np.rint(head.astype(np.float32) * fade_out_curve(n)).astype(np.int16)
            self._put(faded)
            self._ended = True
        else:
            self._go_idle()
        self._room.set()

    def clear(self) -> None:
        """Drop everything at once (no fade) and go idle."""
        self._generation += 1
        self._start, self._count = 0, 0
        self._go_idle()
        self._room.set()

    async def wait_drained(self) -> None:
        """Wait until everything queued has been played (or cut/cleared)."""
        await self._drained.wait()

    # --- internals -------------------------------------------------------

    def _put(self, data: Int16Array) -> None:
        n = data.size
        if n == 0:
            return
        end = (self._start + self._count) % self.capacity
        first = min(n, self.capacity - end)
        self._ring[end : end + first] = data[:first]
        if first < n:
            self._ring[: n - first] = data[first:]
        self._count += n
        self.stats.max_level = max(self.stats.max_level, self._count)
        self._ended = False
        self._drained.clear()
        if self._state is BufferState.IDLE:
            self._state = BufferState.BUFFERING
        if self._state is BufferState.BUFFERING and self._count >= max(self.preroll, 1):
            self._state = BufferState.PLAYING
            self._rebuffering = False

    def _take(self, n: int) -> Int16Array:
        out = np.empty(n, dtype=np.int16)
        first = min(n, self.capacity - self._start)
        out[:first] = self._ring[self._start : self._start + first]
        if first < n:
            out[first:] = self._ring[: n - first]
        self._start = (self._start + n) % self.capacity
        self._count -= n
        if n and self.free >= self._room_wanted:
            self._room.set()
        return out

    def _fill(self, n: int) -> Int16Array:
        if self.fill is Fill.SILENCE or n == 0:
            return np.zeros(n, dtype=np.int16)
        noise = self._rng.standard_normal(n) * self._noise_amplitude
        return np.clip(np.rint(noise), -32768, 32767).astype(np.int16)

    def _go_idle(self) -> None:
        self._state = BufferState.IDLE
        self._ended = False
        self._rebuffering = False
        self._drained.set()

    def _emit(self, kind: str, samples: int) -> None:
        event = BufferEvent(kind=kind, samples=samples, level=self._count)
        log.debug("audio buffer %s: %d samples (level %d)", kind, samples, self._count)
        if self._on_event is not None:
            self._on_event(event)
