"""StreamLineSession: the web page's stand-in for the modem's PcmSession."""

from __future__ import annotations

import asyncio

import pytest

from daemon.call.stream_line import FRAME_BYTES, StreamLineSession


def ramp(count: int, start: int = 0) -> bytes:
    return bytes((start + i) % 256 for i in range(count))


def frame(value: int) -> bytes:
    return bytes([value % 256]) * FRAME_BYTES


async def drain_rx(session: StreamLineSession) -> list[bytes]:
    frames: list[bytes] = []
    while (item := await session.read_frame(timeout=0)) is not None:
        frames.append(item)
    return frames


async def test_enabled_from_the_start() -> None:
    session = StreamLineSession("web-1", clock=lambda: 12.5)
    assert session.call_id == "web-1"
    assert session.enabled_at == 12.5
    assert not session.closed
    assert await session.wait_enabled(timeout=0.01) is True


async def test_odd_chunks_are_recut_into_exact_frames_in_order() -> None:
    session = StreamLineSession("web-1")
    audio = ramp(FRAME_BYTES * 7 + 5)
    sizes = [1, 319, 3, 641, 17, 1, 960, 77]
    chunks: list[bytes] = []
    offset = 0
    for size in sizes:
        chunks.append(audio[offset : offset + size])
        offset += size
    chunks.append(audio[offset:])
    for chunk in chunks:
        session.deliver(chunk)

    frames = await drain_rx(session)
    assert [len(f) for f in frames] == [FRAME_BYTES] * 7
    assert b"".join(frames) == audio[: FRAME_BYTES * 7]
    assert session.pending_bytes == 5
    assert session.rx_frames == 7

    session.deliver(ramp(FRAME_BYTES - 5, start=len(audio)))  # completes the eighth frame
    eighth = await session.read_frame(timeout=0)
    assert eighth == ramp(FRAME_BYTES * 8)[FRAME_BYTES * 7 :]
    assert session.pending_bytes == 0


async def test_rx_drops_oldest_when_full() -> None:
    session = StreamLineSession("web-1", max_rx_frames=3)
    session.deliver(b"".join(frame(i) for i in range(5)))
    assert session.rx_frames == 5
    assert session.rx_dropped_frames == 2
    assert await drain_rx(session) == [frame(2), frame(3), frame(4)]


async def test_read_frame_timeout_returns_none() -> None:
    session = StreamLineSession("web-1")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await session.read_frame(timeout=0.05) is None
    assert loop.time() - started >= 0.04
    assert not session.closed


async def test_close_wakes_a_waiting_reader() -> None:
    session = StreamLineSession("web-1")
    reader = asyncio.create_task(session.read_frame())
    await asyncio.sleep(0.01)
    assert not reader.done()
    session.close()
    assert await asyncio.wait_for(reader, 1.0) is None
    assert session.closed
    assert await session.wait_enabled() is False


async def test_close_lets_queued_caller_frames_drain_then_ends() -> None:
    session = StreamLineSession("web-1")
    session.deliver(frame(1) + frame(2) + b"\x07")
    session.close()
    assert session.pending_bytes == 0  # a partial frame is dropped with the call
    assert await session.read_frame() == frame(1)
    assert await session.read_frame() == frame(2)
    assert await session.read_frame() is None


async def test_write_frame_size_is_checked() -> None:
    session = StreamLineSession("web-1")
    with pytest.raises(ValueError):
        session.write_frame(b"\x00" * (FRAME_BYTES - 1))
    with pytest.raises(ValueError):
        session.write_frame(b"\x00" * (FRAME_BYTES + 2))
    assert session.tx_frames == 0


async def test_tx_drops_oldest_when_full() -> None:
    session = StreamLineSession("web-1", max_tx_frames=2)
    assert all(session.write_frame(frame(i)) for i in range(5))
    assert session.tx_frames == 5
    assert session.tx_dropped_frames == 3
    session.close()
    assert [f async for f in session.outgoing()] == [frame(3), frame(4)]


async def test_outgoing_streams_and_ends_after_close_and_drain() -> None:
    session = StreamLineSession("web-1")
    received: list[bytes] = []

    async def consume() -> None:
        async for item in session.outgoing():
            received.append(item)

    consumer = asyncio.create_task(consume())
    session.write_frame(frame(1))
    await asyncio.sleep(0.01)
    assert received == [frame(1)]
    session.write_frame(frame(2))
    session.write_frame(frame(3))
    session.close()
    await asyncio.wait_for(consumer, 1.0)
    assert received == [frame(1), frame(2), frame(3)]


async def test_after_close_nothing_goes_in() -> None:
    session = StreamLineSession("web-1")
    session.close()
    session.close()  # idempotent
    session.deliver(frame(1))
    assert session.rx_frames == 0
    assert await session.read_frame(timeout=0.5) is None
    assert session.write_frame(frame(1)) is False
    assert session.tx_frames == 0
    assert [f async for f in session.outgoing()] == []
    with pytest.raises(ValueError):
        session.write_frame(b"short")
