"""PCM voice port: frame reassembly, rates, a stalled modem never blocks the loop."""

from __future__ import annotations

import asyncio
import os
import time
import tty

from hypothesis import given
from hypothesis import strategies as st

from drivers.sim7600.pcm_port import FRAME_BYTES, FrameAssembler, PcmPort, RateMeter


@given(st.binary(max_size=3000), st.lists(st.integers(1, 700), min_size=1, max_size=20))
def test_assembler_yields_exact_frames_for_any_split(data: bytes, cuts: list[int]) -> None:
    assembler = FrameAssembler()
    frames: list[bytes] = []
    i = k = 0
    while i < len(data):
        size = cuts[k % len(cuts)]
        frames += assembler.push(data[i : i + size])
        i += size
        k += 1
    assert all(len(f) == FRAME_BYTES for f in frames)
    assert b"".join(frames) == data[: len(frames) * FRAME_BYTES]
    assert assembler.pending == len(data) % FRAME_BYTES


def test_rate_meter_window() -> None:
    now = [0.0]
    meter = RateMeter(window_s=1.0, clock=lambda: now[0])
    for _ in range(50):
        meter.add(320)
        now[0] += 0.02
    assert 15600 <= meter.rate() <= 16000  # one 20 ms sample may sit on the window edge
    now[0] += 2
    assert meter.rate() == 0


async def test_reads_partial_chunks_as_frames_and_stalled_writes_never_block() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    port = await PcmPort.open(os.ttyname(slave), exclusive=False)
    try:
        os.write(master, b"\x01" * 100)  # no call yet: discarded
        await asyncio.sleep(0.05)
        assert port.idle_rx_bytes == 100

        session = port.start_session("call-1")
        payload = bytes(range(256)) * 5  # 1280 bytes = 4 frames
        for offset in range(0, len(payload), 333):
            os.write(master, payload[offset : offset + 333])
            await asyncio.sleep(0.005)
        frames = [await session.read_frame(timeout=1) for _ in range(4)]
        assert b"".join(f for f in frames if f) == payload

        # Nobody drains the uplink (PCM not enabled on the modem): writes must stay instant.
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        started = time.monotonic()
        accepted = 0
        for _ in range(400):  # 8 s of audio, far beyond the pty buffer
            accepted += session.write_frame(bytes(FRAME_BYTES))
            await asyncio.sleep(0)
        elapsed = time.monotonic() - started
        tick.cancel()
        await asyncio.gather(tick, return_exceptions=True)
        stats = session.stats()
        assert elapsed < 1.0
        assert stats.tx_dropped_frames > 0 and accepted == stats.tx_frames
        assert stats.tx_buffered_bytes <= port.max_tx_buffer_bytes
        assert max(gaps, default=0) < 0.1
        alarms = dict(session.new_alarms(min_age_s=0))
        assert "uplink_stalled" in alarms

        port.end_session()
        assert session.closed and await session.read_frame(timeout=0.1) is None
        assert port.write_frame(bytes(FRAME_BYTES)) is False
    finally:
        await port.close()
        os.close(master)
        os.close(slave)


async def test_port_loss_closes_the_session() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    port = await PcmPort.open(os.ttyname(slave), exclusive=False)
    session = port.start_session("c")
    os.close(master)
    os.close(slave)
    await asyncio.wait_for(port.wait_closed(), 2)
    assert port.closed and await session.read_frame(timeout=0.5) is None
    await port.close()
