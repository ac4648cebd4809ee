"""Outbound chain: engine audio -> crossfade -> resample -> level -> int16 -> jitter buffer -> line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np

from drivers.audio.call_recorder import CallRecorder
from drivers.audio.crossfade import DEFAULT_CROSSFADE_SAMPLES, SegmentCrossfader
from drivers.audio.jitter_buffer import StreamingAudioBuffer
from drivers.audio.level import LineLeveler
from drivers.audio.line_codec import LineCodec
from drivers.audio.pcm import AudioLike, Float32Array, Int16Array, as_float32, float_to_int16
from drivers.audio.resample import ResampleQuality, StreamResampler

log = logging.getLogger("secretary.audio")


class LinePlayout:
    """Feeds synthesized speech (any rate, float or int16, uneven chunks) into a line buffer.

    Call ``new_segment`` before each synthesized segment (sentence) after the
    first, ``feed`` its chunks, and ``end`` when the reply is complete. DSP runs
    on the loop in slices of at most ``slice_ms`` with a yield between them, so
    the pacing clock keeps time. ``cut`` is barge-in: a feed or end still in
    progress returns False; calls made after ``cut`` start a new reply. (If the
    buffer is cut directly, calls return False until ``reset``.)
    """

    def __init__(
        self,
        buffer: StreamingAudioBuffer,
        *,
        quality: ResampleQuality | str = ResampleQuality.MEDIUM,
        crossfade_samples: int = DEFAULT_CROSSFADE_SAMPLES,
        leveler: LineLeveler | None = None,
        slice_ms: float = 40.0,
    ) -> None:
        self.buffer = buffer
        self.line_rate = buffer.sample_rate
        self.quality = ResampleQuality(quality)
        self.leveler = leveler if leveler is not None else LineLeveler(self.line_rate)
        self._crossfader = SegmentCrossfader(crossfade_samples)
        self._resampler: StreamResampler | None = None
        self._slice_ms = slice_ms
        self._generation = buffer.generation

    @property
    def source_rate(self) -> int | None:
        """Rate of the audio being fed, once known."""
        return None if self._resampler is None else self._resampler.in_rate

    def new_segment(self) -> None:
        """The next chunk starts a new segment: crossfade it with the previous one."""
        self._crossfader.new_segment()

    async def feed(self, chunk: AudioLike, sample_rate: int) -> bool:
        """Convert and queue one chunk, waiting for buffer room. False if playback was cut."""
        generation = self._generation
        if not self._live(generation):
            return False
        if self._resampler is None or self._resampler.in_rate != sample_rate:
            if not await self._switch_rate(sample_rate, generation):
                return False
        x = as_float32(chunk)
        step = max(1, int(sample_rate * self._slice_ms / 1000))
        for i in range(0, x.size, step):
            if i:
                await asyncio.sleep(0)
                if not self._live(generation):
                    return False
            if not await self._push(self._crossfader.process(x[i : i + step]), generation, flush=False):
                return False
        return True

    async def end(self) -> bool:
        """Flush every stage and mark the end of the utterance. False if playback was cut."""
        generation = self._generation
        if not self._live(generation) or not await self._drain(generation):
            return False
        self.buffer.end_of_stream()
        return True

    def cut(self, fade_ms: float | None = None) -> None:
        """Barge-in: fade out what the line is about to play and drop everything else."""
        self.buffer.cut(fade_ms)
        self.reset()

    def reset(self) -> None:
        """Drop the state of every stage (not the buffer) and accept new audio."""
        self._crossfader.reset()
        if self._resampler is not None:
            self._resampler.reset()
        self.leveler.reset()
        self._generation = self.buffer.generation

    def _live(self, generation: int) -> bool:
        return generation == self._generation == self.buffer.generation

    async def _switch_rate(self, sample_rate: int, generation: int) -> bool:
        # the old rate's crossfade and resampler tails go out first; the leveler runs on
        if self._resampler is not None and not await self._drain(generation, level_tail=False):
            return False
        self._resampler = StreamResampler(sample_rate, self.line_rate, self.quality)
        return True

    async def _drain(self, generation: int, *, level_tail: bool = True) -> bool:
        return await self._push(self._crossfader.flush(), generation, flush=True, level_tail=level_tail)

    async def _push(
        self, x: Float32Array, generation: int, *, flush: bool, level_tail: bool = False
    ) -> bool:
        if self._resampler is None:
            return self._live(generation)
        y = self._resampler.process(x) if x.size else np.zeros(0, dtype=np.float32)
        if flush:
            y = np.concatenate((y, self._resampler.flush()))
        z = self.leveler.process(y)
        if flush and level_tail:
            z = np.concatenate((z, self.leveler.flush()))
        if z.size == 0:
            return self._live(generation)
        return await self.buffer.write(float_to_int16(z)) and self._live(generation)


class FrameSender:
    """The line's one 20 ms tick: one buffer frame -> call record -> codec -> line writer.

    A ``PacingClock`` calls it every period; the call's line (``daemon/call/line.py``)
    and ``bench/bench_audio.py`` run this same tick. It counts the frames that
    carried reply audio (``audible_frames``, dated by ``last_audible_at``) and
    tells ``on_audible`` of each, so the speaker knows how much of a reply the
    caller heard and when its first frame went out.
    """

    def __init__(
        self,
        buffer: StreamingAudioBuffer,
        codec: LineCodec | str,
        write: Callable[[bytes], object],
        recorder: CallRecorder | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_audible: Callable[[float], None] | None = None,
        on_sent: Callable[[Int16Array], None] | None = None,
    ) -> None:
        self.buffer = buffer
        self.on_sent = on_sent  # told of every frame sent, silence included (the call's echo gate)
        self.codec = LineCodec(codec)
        self._write = write
        self.recorder = recorder
        self._clock = clock
        self.on_audible = on_audible
        self.frames_sent = 0
        self.audible_frames = 0  # frames that carried reply audio
        self.last_audible_at: float | None = None

    def __call__(self) -> None:
        played_before = self.buffer.stats.frames_played
        frame = self.buffer.read_frame()
        if self.on_sent is not None:
            try:
                self.on_sent(frame)
            except Exception:  # a side job (the echo gate) never stops the line: it is dropped, the frame goes out
                log.exception("the line's on_sent hook failed: it is off for the rest of this call")
                self.on_sent = None
        if self.recorder is not None:
            self.recorder.write_secretary(frame)
        self._write(self.codec.encode(frame))  # a frame the writer drops is counted by the writer
        self.frames_sent += 1
        if self.buffer.stats.frames_played != played_before:
            self.audible_frames += 1
            now = self.last_audible_at = self._clock()
            if self.on_audible is not None:
                self.on_audible(now)
