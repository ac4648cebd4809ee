"""One call's audio line: reply audio paced out to the modem, caller audio in for VAD and STT.

Outbound: ``playout`` (crossfade, resample to 8 kHz, level) -> jitter buffer ->
a 20 ms pacing clock whose tick takes one frame, records it on the
secretary track and writes it to the modem. Inbound: the modem's 20 ms
frames -> decode -> caller track -> 16 kHz int16 for VAD and STT. Both
tracks get a frame every 20 ms (silence included), so they stay aligned.

The line counts the frames that carried reply audio (``audible_frames``) so
the speaker knows how much of a reply the caller actually heard, and
``first_audible_after`` dates the first reply frame (the voice-to-voice end
point).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import numpy as np

from drivers.audio import (
    CallRecorder,
    LineCapture,
    LineCodec,
    LinePlayout,
    PacingClock,
    StreamingAudioBuffer,
)
from drivers.audio.pcm import float_to_int16

STT_RATE = 16_000


class LineSession(Protocol):
    """The audio of one call as the line uses it: the modem's PcmSession or a browser's."""

    call_id: str | None
    enabled_at: float | None

    @property
    def closed(self) -> bool: ...

    async def read_frame(self, timeout: float | None = None) -> bytes | None: ...

    def write_frame(self, frame: bytes) -> bool: ...


class CallLine:
    def __init__(
        self,
        session: LineSession,
        recorder: CallRecorder | None,
        *,
        codec: LineCodec | str = LineCodec.PCM16,
        capacity_ms: float = 2000.0,
        preroll_ms: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.recorder = recorder
        self.codec = LineCodec(codec)
        self.buffer = StreamingAudioBuffer(capacity_ms=capacity_ms, preroll_ms=preroll_ms)
        self.playout = LinePlayout(self.buffer)
        self.capture = LineCapture(self.codec, out_rate=STT_RATE, recorder=recorder)
        self.pacer = PacingClock(self._tick, name=f"line-{session.call_id}")
        self._clock = clock
        self.frames_sent = 0
        self.audible_frames = 0  # frames that carried reply audio
        self.last_audible_at: float | None = None
        self._waiters: list[tuple[int, asyncio.Future[float]]] = []
        self._inbound_ending = False

    def end_inbound(self) -> None:
        """The call is over: ``caller_audio`` ends once the frames already received are read."""
        self._inbound_ending = True

    # -- lifecycle ----------------------------------------------------------------
    async def __aenter__(self) -> CallLine:
        self.pacer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pacer.stop()
        for _, waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()

    # -- outbound -----------------------------------------------------------------
    def _tick(self) -> None:
        before = self.buffer.stats.frames_played
        frame = self.buffer.read_frame()
        if self.recorder is not None:
            self.recorder.write_secretary(frame)
        self.session.write_frame(self.codec.encode(frame))  # a dropped frame is counted by the session
        self.frames_sent += 1
        if self.buffer.stats.frames_played != before:
            self.audible_frames += 1
            now = self._clock()
            self.last_audible_at = now
            if self._waiters:
                self._wake(now)

    def _wake(self, now: float) -> None:
        keep: list[tuple[int, asyncio.Future[float]]] = []
        for mark, waiter in self._waiters:
            if waiter.done():
                continue
            if self.audible_frames > mark:
                waiter.set_result(now)
            else:
                keep.append((mark, waiter))
        self._waiters = keep

    def first_audible_after(self, mark: int) -> asyncio.Future[float]:
        """Resolves with the monotonic time of the first reply frame sent after ``audible_frames == mark``."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if self.audible_frames > mark and self.last_audible_at is not None:
            waiter.set_result(self.last_audible_at)
        else:
            self._waiters.append((mark, waiter))
        return waiter

    # -- inbound ------------------------------------------------------------------
    async def caller_audio(self, frame_timeout_s: float = 1.0) -> AsyncIterator[np.ndarray]:
        """16 kHz int16 caller audio, 20 ms per item, until the call's audio ends.

        A frame that does not arrive within ``frame_timeout_s`` (the modem sent
        nothing) is replaced by silence so time keeps moving for VAD and the
        silence timers.
        """
        session = self.session
        silence = bytes(self.codec.bytes_per_sample * 160)
        while True:
            frame = await session.read_frame(timeout=0.05 if self._inbound_ending else frame_timeout_s)
            if frame is None:
                if session.closed or self._inbound_ending:
                    return
                frame = silence
            yield float_to_int16(self.capture.feed(frame))
