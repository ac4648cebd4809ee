"""One call's audio line: reply audio paced out to the modem, caller audio in for VAD and STT.

Outbound: the speaker's verbs (``begin_reply``, ``next_segment``, ``play``,
``end_reply``, ``wait_played``, ``cut``) -> ``LinePlayout`` (crossfade,
resample to 8 kHz, level) -> jitter buffer -> the line's one 20 ms tick
(``drivers/audio`` ``FrameSender`` on a ``PacingClock``): one frame, recorded
on the secretary track and written to the session. Inbound: the session's
20 ms frames -> ``LineCapture`` (decode, caller track, resample) -> float32 at
``ENGINE_RATE`` for VAD and STT. Both tracks get a frame every 20 ms (silence
included), so they stay aligned.

The tick counts the frames that carried reply audio (``audible_frames``) so
the speaker knows how much of a reply the caller actually heard, and
``first_audible_after`` dates the first reply frame (the voice-to-voice end
point).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from drivers.audio import (
    CallRecorder,
    FrameSender,
    LineCapture,
    LineCodec,
    LinePlayout,
    PacingClock,
    StreamingAudioBuffer,
    frame_samples,
)
from drivers.audio.pcm import AudioLike, Float32Array, Int16Array


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
        on_sent: Callable[[Int16Array], None] | None = None,
    ) -> None:
        """``on_sent`` is told of every frame the tick sends, silence included (the call's echo gate)."""
        self.session = session
        self.codec = LineCodec(codec)
        self._buffer = StreamingAudioBuffer(capacity_ms=capacity_ms, preroll_ms=preroll_ms)
        self._playout = LinePlayout(self._buffer)
        self._capture = LineCapture(self.codec, recorder=recorder)
        self._sender = FrameSender(self._buffer, self.codec, session.write_frame, recorder, clock=clock,
                                   on_audible=self._wake, on_sent=on_sent)
        self.pacer = PacingClock(self._sender, name=f"line-{session.call_id}")
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

    # -- outbound: the speaker's verbs ----------------------------------------------
    def begin_reply(self) -> None:
        """What is fed next starts a new reply (after a cut, or the previous reply's end)."""
        self._playout.reset()

    def next_segment(self) -> None:
        """The next audio fed is a new synthesized segment: crossfade it with the previous one."""
        self._playout.new_segment()

    async def play(self, samples: AudioLike, sample_rate: int) -> bool:
        """Queue reply audio at any rate, waiting for room; False once the reply was cut."""
        return await self._playout.feed(samples, sample_rate)

    async def end_reply(self) -> bool:
        """Flush the reply into the buffer and mark its end; False once it was cut."""
        return await self._playout.end()

    async def wait_played(self) -> None:
        """Until the line has played everything queued."""
        await self._buffer.wait_drained()

    def cut(self, fade_ms: float | None = None) -> None:
        """Barge-in: fade out what is playing within ``fade_ms``, drop what is queued."""
        self._playout.cut(fade_ms)

    @property
    def audible_frames(self) -> int:
        """Frames that carried reply audio, since the line came up."""
        return self._sender.audible_frames

    @property
    def queued_frames(self) -> int:
        """Frames of reply audio queued and not sent yet (a partial frame counts as one)."""
        return -(-self._buffer.level // self._buffer.frame_size)

    def first_audible_after(self, mark: int) -> asyncio.Future[float]:
        """Resolves with the monotonic time of the first reply frame sent after ``audible_frames == mark``."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        heard_at = self._sender.last_audible_at
        if self.audible_frames > mark and heard_at is not None:
            waiter.set_result(heard_at)
        else:
            self._waiters.append((mark, waiter))
        return waiter

    def _wake(self, now: float) -> None:
        if not self._waiters:
            return
        keep: list[tuple[int, asyncio.Future[float]]] = []
        for mark, waiter in self._waiters:
            if waiter.done():
                continue
            if self.audible_frames > mark:
                waiter.set_result(now)
            else:
                keep.append((mark, waiter))
        self._waiters = keep

    # -- inbound ------------------------------------------------------------------
    async def caller_audio(self, frame_timeout_s: float = 1.0) -> AsyncIterator[Float32Array]:
        """The caller's audio as the engines take it (float32 at ``ENGINE_RATE``), 20 ms per item, until it ends.

        A frame that does not arrive within ``frame_timeout_s`` (the modem sent
        nothing) is replaced by silence so time keeps moving for VAD and the
        silence timers.
        """
        session = self.session
        silence = bytes(self.codec.bytes_per_sample * frame_samples())
        while True:
            frame = await session.read_frame(timeout=0.05 if self._inbound_ending else frame_timeout_s)
            if frame is None:
                if session.closed or self._inbound_ending:
                    return
                frame = silence
            yield self._capture.feed(frame)
