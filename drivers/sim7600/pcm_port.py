"""The PCM voice port: 8 kHz mono PCM16 over the modem's audio tty (USB interface 4).

The port is a plain byte pipe with no framing (sim7600.md §4.4): reads may
return partial or several frames, so bytes are reassembled into exact
320-byte (20 ms) frames.  Writing never blocks the loop: frames go to the
transport's buffer, and once that buffer holds more than a bound (the modem
stopped consuming uplink) new frames are dropped and counted.  Pacing is the
caller's job (drivers/audio); this module only moves bytes and measures
bytes/s both ways, because a silent downlink or a stalled uplink is a known
firmware failure mode that should be reported, not guessed at.

``AT+CPCMREG=1`` / ``=0`` live here too (``enable_pcm``/``disable_pcm``):
send ``=1`` only after the call is connected, retry it on ERROR, send ``=0``
after the call ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

import serial_asyncio_fast

from drivers.sim7600.at_channel import AtCommander
from drivers.sim7600.drop_oldest_queue import DropOldestQueue
from drivers.sim7600.result_codes import AtTimeoutError
from drivers.sim7600.serial_link import DEFAULT_BAUDRATE, SerialPortProtocol, open_serial_transport

log = logging.getLogger(__name__)

SAMPLE_RATE: Final = 8000
SAMPLE_BYTES: Final = 2
FRAME_MS: Final = 20
FRAME_BYTES: Final = SAMPLE_RATE * SAMPLE_BYTES * FRAME_MS // 1000  # 320
BYTES_PER_SECOND: Final = SAMPLE_RATE * SAMPLE_BYTES  # 16000


class FrameAssembler:
    """Bytes in, exact frames out; the remainder waits for the next chunk."""

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        self.frame_bytes = frame_bytes
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()

    def push(self, data: bytes) -> list[bytes]:
        self._buffer += data
        size = self.frame_bytes
        count = len(self._buffer) // size
        if count == 0:
            return []
        frames = [bytes(self._buffer[i * size : (i + 1) * size]) for i in range(count)]
        del self._buffer[: count * size]
        return frames


class RateMeter:
    """Bytes per second over a sliding window."""

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, count: int) -> None:
        now = self._clock()
        self._samples.append((now, count))
        self._sum += count
        self._expire(now)

    def rate(self) -> float:
        self._expire(self._clock())
        return self._sum / self.window_s

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        samples = self._samples
        while samples and samples[0][0] < horizon:
            self._sum -= samples.popleft()[1]


@dataclass(frozen=True, slots=True)
class PcmStats:
    rx_bytes: int
    tx_bytes: int
    rx_frames: int
    tx_frames: int
    rx_dropped_frames: int  # the reader fell behind; oldest frames dropped
    tx_dropped_frames: int  # the modem stopped draining uplink; frames dropped
    rx_bytes_per_s: float
    tx_bytes_per_s: float
    tx_buffered_bytes: int
    session_age_s: float


class PcmSession:
    """The audio of one call: read caller frames, write reply frames."""

    def __init__(self, port: PcmPort, call_id: str | None, max_rx_frames: int, clock: Callable[[], float]) -> None:
        self.call_id = call_id
        self._port = port
        self._clock = clock
        self._frames: DropOldestQueue[bytes] = DropOldestQueue(max_rx_frames)
        self.started = clock()
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped_frames = 0
        self.tx_dropped_frames = 0
        self.rx_meter = RateMeter(clock=clock)
        self.tx_meter = RateMeter(clock=clock)
        self._alarms_raised: set[str] = set()
        self._tx_dropped_at_check = 0
        self._enabled = asyncio.Event()
        self.enabled_at: float | None = None

    @property
    def enabled(self) -> bool:
        """``AT+CPCMREG=1`` succeeded for this call: audio flows both ways."""
        return self._enabled.is_set()

    def mark_enabled(self) -> None:
        self.enabled_at = self._clock()
        self._enabled.set()

    async def wait_enabled(self, timeout: float | None = None) -> bool:
        """Wait until PCM is on for this call; False on timeout or if the session ended first."""
        if self._enabled.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                while not self._enabled.is_set() and not self._frames.closed:
                    waiter = asyncio.ensure_future(self._enabled.wait())
                    try:
                        await asyncio.wait({waiter}, timeout=0.05)
                    finally:
                        waiter.cancel()
        except TimeoutError:
            return False
        return self._enabled.is_set()

    @property
    def closed(self) -> bool:
        return self._frames.closed

    # ---------------------------------------------------------------- read

    async def read_frame(self, timeout: float | None = None) -> bytes | None:
        """Next 320-byte downlink frame; None once the session ended (or on timeout)."""
        return await self._frames.get(timeout)

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            frame = await self.read_frame()
            if frame is None:
                return
            yield frame

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.frames()

    # --------------------------------------------------------------- write

    def write_frame(self, frame: bytes) -> bool:
        """Queue one uplink frame; False if the session ended or the uplink is stalled (dropped)."""
        if len(frame) != self._port.frame_bytes:
            raise ValueError(f"PCM frames are {self._port.frame_bytes} bytes, got {len(frame)}")
        if self._frames.closed:
            return False
        if not self._port._send(frame):
            self.tx_dropped_frames += 1
            return False
        self.tx_bytes += len(frame)
        self.tx_frames += 1
        self.tx_meter.add(len(frame))
        return True

    # --------------------------------------------------------------- stats

    def stats(self) -> PcmStats:
        return PcmStats(
            rx_bytes=self.rx_bytes,
            tx_bytes=self.tx_bytes,
            rx_frames=self.rx_frames,
            tx_frames=self.tx_frames,
            rx_dropped_frames=self.rx_dropped_frames,
            tx_dropped_frames=self.tx_dropped_frames,
            rx_bytes_per_s=self.rx_meter.rate(),
            tx_bytes_per_s=self.tx_meter.rate(),
            tx_buffered_bytes=self._port.tx_buffered_bytes,
            session_age_s=self._clock() - self.started,
        )

    def new_alarms(self, min_age_s: float) -> list[tuple[str, str]]:
        """Problems seen since the last check, each kind reported once per session."""
        alarms: list[tuple[str, str]] = []
        if self._frames.closed or self._clock() - self.started < min_age_s:
            return alarms
        if "downlink_silent" not in self._alarms_raised and self.rx_meter.rate() == 0:
            alarms.append(("downlink_silent", f"no audio from the modem for {min_age_s:g} s after PCM was enabled"))
        if "uplink_stalled" not in self._alarms_raised and self.tx_dropped_frames > self._tx_dropped_at_check:
            alarms.append(
                (
                    "uplink_stalled",
                    f"the modem is not consuming uplink audio ({self.tx_dropped_frames} frames dropped)",
                )
            )
        self._tx_dropped_at_check = self.tx_dropped_frames
        for kind, _ in alarms:
            self._alarms_raised.add(kind)
        return alarms

    # ------------------------------------------------------------ internals

    def _deliver(self, frame: bytes) -> None:
        self.rx_bytes += len(frame)
        self.rx_frames += 1
        self.rx_meter.add(len(frame))
        if self._frames.push(frame):
            self.rx_dropped_frames += 1

    def _close(self) -> None:
        self._frames.close()


class PcmPort(SerialPortProtocol):
    """The audio tty, open for the whole connection; one ``PcmSession`` per call."""

    port_kind = "audio port"

    def __init__(
        self,
        *,
        frame_bytes: int = FRAME_BYTES,
        max_tx_buffer_bytes: int = 10 * FRAME_BYTES,
        max_rx_frames: int = 50,
        name: str = "pcm",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name)
        self.frame_bytes = frame_bytes
        self.max_tx_buffer_bytes = max_tx_buffer_bytes
        self.max_rx_frames = max_rx_frames
        self._clock = clock
        self._assembler = FrameAssembler(frame_bytes)
        self._session: PcmSession | None = None
        self.idle_rx_bytes = 0  # bytes that arrived with no call (discarded)

    @classmethod
    async def open(cls, path: str, *, baudrate: int = DEFAULT_BAUDRATE, exclusive: bool = True) -> PcmPort:
        port = cls(name=path)
        await open_serial_transport(path, port, baudrate=baudrate, exclusive=exclusive)
        await asyncio.sleep(0)
        return port

    # ------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        session = self._session
        if session is None or session.closed:
            self.idle_rx_bytes += len(data)
            return
        for frame in self._assembler.push(data):
            session._deliver(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._session is not None:
            self._session._close()
        self._report_lost(exc)

    # ----------------------------------------------------------------- API

    @property
    def session(self) -> PcmSession | None:
        return self._session

    @property
    def tx_buffered_bytes(self) -> int:
        transport = self._transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            return transport.get_write_buffer_size()
        return 0

    def start_session(self, call_id: str | None = None) -> PcmSession:
        """Begin a call's audio (before ``AT+CPCMREG=1``); ends any previous session."""
        self.end_session()
        self._assembler.reset()
        session = PcmSession(self, call_id, self.max_rx_frames, self._clock)
        if self._closed:
            session._close()
        self._session = session
        return session

    def end_session(self) -> None:
        """Stop the call's audio: close the session, drop unsent uplink."""
        session, self._session = self._session, None
        if session is not None:
            session._close()
        self._assembler.reset()
        transport = self._transport
        if isinstance(transport, serial_asyncio_fast.SerialTransport) and not transport.is_closing():
            transport.flush()
            port = transport.serial
            if port is not None:
                try:
                    port.reset_output_buffer()
                except Exception:
                    log.debug("reset_output_buffer failed", exc_info=True)

    def write_frame(self, frame: bytes) -> bool:
        session = self._session
        if session is None:
            if len(frame) != self.frame_bytes:
                raise ValueError(f"PCM frames are {self.frame_bytes} bytes, got {len(frame)}")
            return False
        return session.write_frame(frame)

    async def close(self, timeout_s: float = 2.0) -> None:
        self.end_session()
        await self._close_transport(timeout_s)

    # ------------------------------------------------------------ internals

    def _send(self, frame: bytes) -> bool:
        transport = self._transport
        if self._closed or not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return False
        if transport.get_write_buffer_size() + len(frame) > self.max_tx_buffer_bytes:
            return False
        transport.write(frame)
        return True


async def enable_pcm(
    channel: AtCommander, *, attempts: int = 3, retry_delay_s: float = 0.3, timeout_s: float = 5.0
) -> bool:
    """``AT+CPCMREG=1``, retried on ERROR (first =1 of a call can fail; sim7600.md §4.4)."""
    for attempt in range(1, attempts + 1):
        try:
            response = await channel.command("AT+CPCMREG=1", timeout=timeout_s, response_prefix=None)
        except AtTimeoutError:
            response = None
        if response is not None and response.ok:
            if attempt > 1:
                log.info("AT+CPCMREG=1 succeeded on attempt %d", attempt)
            return True
        log.warning(
            "AT+CPCMREG=1 attempt %d/%d failed: %s",
            attempt,
            attempts,
            "timeout" if response is None else response.final,
        )
        if attempt < attempts:
            await asyncio.sleep(retry_delay_s)
    return False


async def disable_pcm(channel: AtCommander, *, timeout_s: float = 5.0) -> bool:
    try:
        response = await channel.command("AT+CPCMREG=0", timeout=timeout_s, response_prefix=None)
    except AtTimeoutError:
        log.warning("AT+CPCMREG=0: no answer")
        return False
    if not response.ok:
        log.info("AT+CPCMREG=0 -> %s", response.final)
    return response.ok


__all__ = [
    "BYTES_PER_SECOND",
    "FRAME_BYTES",
    "FRAME_MS",
    "SAMPLE_RATE",
    "FrameAssembler",
    "PcmPort",
    "PcmSession",
    "PcmStats",
    "RateMeter",
    "disable_pcm",
    "enable_pcm",
]
