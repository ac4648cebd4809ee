"""The audio line of a call that does not come through the modem: the web page's test call, a Twilio call.

It stands where the modem's ``PcmSession`` stands in a phone call, so the
call flow (``CallLine``) runs unchanged: caller audio arrives over a
stream (a WebSocket, the line socket) in chunks of any size and is re-cut into 320-byte frames (20 ms of
8 kHz mono PCM16 little-endian) for ``read_frame``; reply frames written by
the line's 20 ms pacing clock wait in a queue that ``outgoing`` hands to the
stream's sender. Both directions are bounded and drop their oldest frame when
full (a stale frame is worth less than the newest), counting what they drop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from drivers.sim7600.drop_oldest_queue import DropOldestQueue

FRAME_BYTES: Final = 320  # 20 ms of 8 kHz PCM16 mono


class StreamLineSession:
    """The PcmSession of a call that arrives over a stream: caller audio comes in as bytes, reply frames go out."""

    def __init__(
        self,
        call_id: str,
        *,
        max_rx_frames: int = 250,
        max_tx_frames: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_id = call_id
        self._clock = clock
        self._rx: DropOldestQueue[bytes] = DropOldestQueue(max_rx_frames)
        self._tx: DropOldestQueue[bytes] = DropOldestQueue(max_tx_frames)
        self._partial = bytearray()
        self.started = clock()
        self.enabled_at: float | None = self.started
        self.on_dtmf: Callable[[str], None] | None = None  # set by the call service: keys the caller pressed  # the stream carries audio from the start
        self.closed_at: float | None = None
        self.rx_bytes = 0
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped_frames = 0  # the call flow fell behind the caller; oldest frames dropped
        self.tx_dropped_frames = 0  # the WebSocket sender fell behind; oldest reply frames dropped

    @property
    def closed(self) -> bool:
        return self._rx.closed

    @property
    def pending_bytes(self) -> int:
        """Caller bytes waiting for the rest of their frame."""
        return len(self._partial)

    async def wait_enabled(self, timeout: float | None = None) -> bool:
        """Audio is on as soon as the session exists: True unless the call already ended."""
        return not self.closed

    # ------------------------------------------------------------------ caller audio

    def deliver(self, data: bytes) -> None:
        """Caller audio from the browser, any length; whole frames go to ``read_frame``, the rest waits."""
        if self.closed or not data:
            return
        self.rx_bytes += len(data)
        self._partial += data
        whole = len(self._partial) - len(self._partial) % FRAME_BYTES
        for start in range(0, whole, FRAME_BYTES):
            self.rx_frames += 1
            if self._rx.push(bytes(self._partial[start : start + FRAME_BYTES])):
                self.rx_dropped_frames += 1
        del self._partial[:whole]

    async def read_frame(self, timeout: float | None = None) -> bytes | None:
        """Next 320-byte caller frame; None on timeout, or once the session ended and its frames were read."""
        return await self._rx.get(timeout)

    # ------------------------------------------------------------------- reply audio

    def write_frame(self, frame: bytes) -> bool:
        """Queue one reply frame for the browser; False once the session ended.

        When the queue is full the oldest queued frame makes room (counted in
        ``tx_dropped_frames``) and this one is still accepted.
        """
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"PCM frames are {FRAME_BYTES} bytes, got {len(frame)}")
        if self._tx.closed:
            return False
        self.tx_frames += 1
        if self._tx.push(bytes(frame)):
            self.tx_dropped_frames += 1
        return True

    async def outgoing(self) -> AsyncIterator[bytes]:
        """Reply frames for the WebSocket sender, in order; ends once the session is closed and drained."""
        while True:
            frame = await self._tx.get()
            if frame is None:
                return
            yield frame

    # ---------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """End the call's audio (idempotent): readers wake, what is queued can still be drained."""
        if self.closed:
            return
        self.closed_at = self._clock()
        self._partial.clear()
        self._rx.close()
        self._tx.close()
