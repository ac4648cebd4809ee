"""StreamingAudioBuffer: pre-roll, underrun/overrun accounting, gap fill, barge-in cut."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from drivers.audio.jitter_buffer import BufferEvent, BufferState, StreamingAudioBuffer

FRAME = 160


def ramp(n: int, start: int = 1) -> np.ndarray:
    return (np.arange(start, start + n) % 30000).astype(np.int16)


def make(**kw: object) -> StreamingAudioBuffer:
    kw.setdefault("capacity_ms", 200.0)  # 1600 samples
    kw.setdefault("preroll_ms", 60.0)  # 480 samples = 3 frames
    return StreamingAudioBuffer(**kw)  # type: ignore[arg-type]


def test_preroll_holds_playback_and_is_not_an_underrun() -> None:
    buf = make()
    assert buf.state is BufferState.IDLE
    assert not buf.read_frame().any()
    buf.write_nowait(ramp(400))
    assert buf.state is BufferState.BUFFERING
    assert not buf.read_frame().any()  # still collecting pre-roll
    buf.write_nowait(ramp(80, 401))
    assert buf.state is BufferState.PLAYING
    assert buf.read_frame().tolist() == ramp(160).tolist()
    assert buf.stats.underruns == 0


def test_frames_are_exact_and_in_order_across_ring_wrap() -> None:
    buf = make(preroll_ms=0.0)
    data = ramp(FRAME * 40)
    out = []
    for i in range(0, data.size, 700):  # writes and reads interleave, ring wraps many times
        assert buf.write_nowait(data[i : i + 700]) == min(700, data.size - i)
        while buf.level >= FRAME:
            out.append(buf.read_frame())
    assert np.array_equal(np.concatenate(out), data[: len(out) * FRAME])


def test_underrun_fills_gap_reports_and_rebuffers() -> None:
    events: list[BufferEvent] = []
    buf = make(on_event=events.append)
    buf.write_nowait(ramp(500))
    buf.read_frame(), buf.read_frame(), buf.read_frame()  # 480 played, 20 left
    frame = buf.read_frame()
    assert frame[:20].tolist() == ramp(20, 481).tolist() and not frame[20:].any()
    assert buf.stats.underruns == 1 and buf.stats.underrun_samples == 140
    assert events == [BufferEvent("underrun", 140, 0)]
    assert buf.state is BufferState.BUFFERING  # pre-roll again before resuming
    buf.write_nowait(ramp(200))
    assert not buf.read_frame().any() and buf.stats.underruns == 1
    assert buf.stats.gap_frames == 1  # the audible gap, in frames
    buf.write_nowait(ramp(300, 201))
    assert buf.read_frame().tolist() == ramp(160).tolist()  # resumes where the audio left off
    assert buf.stats.gap_frames == 1 and buf.stats.underruns == 1


def test_end_of_stream_drains_without_underrun() -> None:
    buf = make()
    buf.write_nowait(ramp(200))  # less than pre-roll
    buf.end_of_stream()  # plays anyway
    assert buf.read_frame().tolist() == ramp(160).tolist()
    last = buf.read_frame()
    assert last[:40].tolist() == ramp(40, 161).tolist() and not last[40:].any()
    assert buf.state is BufferState.IDLE and buf.stats.underruns == 0
    assert not buf.read_frame().any()


def test_overrun_drop_newest() -> None:
    events: list[BufferEvent] = []
    buf = make(on_event=events.append)
    assert buf.write_nowait(ramp(1500)) == 1500
    assert buf.write_nowait(ramp(300, 1501)) == 100
    assert buf.stats.overruns == 1 and buf.stats.dropped_samples == 200
    assert events[-1].kind == "overrun" and events[-1].samples == 200
    played = np.concatenate([buf.read_frame() for _ in range(10)])
    assert np.array_equal(played, ramp(1600))


def test_overrun_drop_oldest() -> None:
    buf = make(overflow="drop_oldest")
    buf.write_nowait(ramp(1500))
    buf.write_nowait(ramp(300, 1501))
    assert buf.stats.dropped_samples == 200
    assert buf.read_frame().tolist() == ramp(160, 201).tolist()
    buf.write_nowait(ramp(5000, 9))  # larger than capacity: keeps the newest 1600
    assert buf.level == 1600 and buf.read_frame()[0] == ramp(5000, 9)[3400]


async def test_write_waits_for_room_and_never_overruns() -> None:
    buf = make(preroll_ms=20.0)
    data = ramp(FRAME * 30)
    writer = asyncio.create_task(buf.write(data))
    out = []
    for _ in range(30):
        await asyncio.sleep(0)
        out.append(buf.read_frame())
    assert await writer is True
    assert np.array_equal(np.concatenate(out), data)
    assert buf.stats.overruns == 0 and buf.stats.max_level <= buf.capacity


async def test_cut_fades_out_and_stops_the_writer() -> None:
    buf = make(cut_fade_ms=10.0)
    loud = np.full(3000, 20000, np.int16)
    writer = asyncio.create_task(buf.write(loud))
    await asyncio.sleep(0)
    assert buf.level == buf.capacity  # writer now waits for room
    buf.read_frame()
    buf.cut()
    assert await writer is False  # its audio was dropped: stop producing
    frame = buf.read_frame()
    assert frame[0] > 19000 and abs(int(frame[79])) < 300  # 10 ms = 80-sample fade
    assert not frame[80:].any()
    assert np.all(np.diff(frame[:80].astype(np.int32)) <= 0)
    assert buf.state is BufferState.IDLE and buf.stats.underruns == 0 and buf.stats.cuts == 1
    assert not buf.read_frame().any()


async def test_cut_while_idle_and_clear() -> None:
    buf = make()
    buf.cut()
    assert buf.state is BufferState.IDLE and not buf.read_frame().any()
    buf.write_nowait(ramp(1000))
    buf.clear()
    assert buf.level == 0 and buf.state is BufferState.IDLE
    await asyncio.wait_for(buf.wait_drained(), 1)


async def test_wait_drained() -> None:
    buf = make()
    buf.write_nowait(ramp(400))
    buf.end_of_stream()
    waiter = asyncio.create_task(buf.wait_drained())
    await asyncio.sleep(0)
    assert not waiter.done()
    buf.read_frame(), buf.read_frame()
    assert not waiter.done()
    buf.read_frame()
    await asyncio.wait_for(waiter, 1)


def test_comfort_noise_fill_is_quiet_but_not_silent() -> None:
    buf = make(fill="comfort_noise", comfort_noise_dbfs=-60.0, seed=1)
    frames = np.concatenate([buf.read_frame() for _ in range(50)]).astype(np.float64)
    level_dbfs = 20 * np.log10(np.sqrt(np.mean(frames**2)) / 32768)
    assert -63 < level_dbfs < -57


def test_new_utterance_after_end_continues_without_gap() -> None:
    buf = make(preroll_ms=0.0)
    buf.write_nowait(ramp(100))
    buf.end_of_stream()
    buf.write_nowait(ramp(100, 101))  # next utterance arrives before the line drained
    frame = buf.read_frame()
    assert frame.tolist() == ramp(160).tolist()
    assert buf.state is BufferState.PLAYING


@pytest.mark.parametrize("bad", [{"overflow": "drop_middle"}, {"fill": "music"}])
def test_bad_config_is_rejected(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        make(**bad)
