"""End to end: engine chunks -> playout -> buffer -> paced A-law frames; line bytes -> capture."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import numpy as np
import samplerate  # type: ignore[import-not-found,import-untyped,unused-ignore]

from drivers.audio.call_recorder import CallRecorder
from drivers.audio.capture import LineCapture
from drivers.audio.crossfade import SegmentCrossfader
from drivers.audio.jitter_buffer import StreamingAudioBuffer
from drivers.audio.level import LineLeveler
from drivers.audio.line_codec import LineCodec
from drivers.audio.pacing import PacingClock
from drivers.audio.pcm import float_to_int16
from drivers.audio.playout import FrameSender, LinePlayout
from drivers.audio.resample import StreamResampler
from drivers.audio.wav_io import read_wav

from .signals import random_split, speechlike, tone

AUDIO_PKG = Path(__file__).resolve().parents[2] / "drivers" / "audio"


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep_until(self, deadline: float) -> None:
        self.now = max(self.now, deadline)
        for _ in range(3):  # let the producer run between frames
            await asyncio.sleep(0)


def reference(segments: list[np.ndarray], rate: int, leveler: LineLeveler) -> np.ndarray:
    """The same chain run offline on whole segments (int16 line samples)."""
    cf = SegmentCrossfader(256)
    parts = []
    for i, seg in enumerate(segments):
        if i:
            cf.new_segment()
        parts.append(cf.process(seg))
    parts.append(cf.flush())
    joined = np.concatenate(parts)
    r = StreamResampler(rate, 8000, "sinc_medium")
    line = np.concatenate((r.process(joined), r.flush()))
    levelled = np.concatenate((leveler.process(line), leveler.flush()))
    return float_to_int16(levelled)


async def test_playout_to_paced_alaw_frames_matches_offline_chain(tmp_path: Path) -> None:
    rate = 22050
    rng = np.random.default_rng(11)
    segments = [speechlike(rate, 0.9, seed=1), tone(330, rate, 0.6, 0.4), speechlike(rate, 0.7, seed=2)]
    buffer = StreamingAudioBuffer(capacity_ms=500, preroll_ms=100)
    playout = LinePlayout(buffer, leveler=LineLeveler(8000, normalise=False))
    wire = bytearray()
    recorder = CallRecorder(tmp_path / "call")
    sender = FrameSender(buffer, "alaw", wire.extend, recorder)
    fake = FakeTime()
    clock = PacingClock(sender, clock=fake.clock, sleep_until=fake.sleep_until)

    async def produce() -> None:
        for i, seg in enumerate(segments):
            if i:
                playout.new_segment()
            for j, chunk in enumerate(random_split(seg, rng, 3000)):
                # alternate float and int16 chunks, as engines do
                assert await playout.feed(chunk if j % 2 else float_to_int16(chunk), rate)
        assert await playout.end()

    producer = asyncio.create_task(produce())
    await clock.run(frames=150)  # 3 s of line time
    await producer
    recorder.close()

    line = LineCodec.ALAW.decode(bytes(wire))
    assert line.size == 150 * 160
    assert buffer.stats.underruns == 0 and buffer.stats.overruns == 0
    # the secretary track holds exactly the int16 frames that were encoded onto the line
    recorded, _ = read_wav(tmp_path / "call" / "secretary.wav")
    assert recorded.size == line.size
    assert bytes(wire) == LineCodec.ALAW.encode(recorded)
    # and those frames are the offline chain's output, after the pre-roll wait
    expected = reference(segments, rate, LineLeveler(8000, normalise=False))
    offset = int(np.flatnonzero(recorded)[0] - np.flatnonzero(expected)[0])
    assert 0 <= offset < 2 * 160  # the producer filled the pre-roll within two frames
    got = recorded[offset : offset + expected.size].astype(np.int32)
    assert got.size == expected.size
    assert np.abs(got - expected).max() <= 1  # int16 input chunks may round one LSB differently
    assert not recorded[:offset].any() and not recorded[offset + expected.size :].any()


async def test_barge_in_fades_out_quickly_and_stops_the_producer() -> None:
    buffer = StreamingAudioBuffer(capacity_ms=1000, preroll_ms=60, cut_fade_ms=10)
    playout = LinePlayout(buffer)
    frames: list[np.ndarray] = []

    def tick() -> None:
        frames.append(buffer.read_frame())

    fake = FakeTime()
    pacer = PacingClock(tick, clock=fake.clock, sleep_until=fake.sleep_until)
    loud = tone(500, 24000, 5.0, 0.5)
    producer = asyncio.create_task(playout.feed(loud, 24000))
    await pacer.run(frames=20)
    playout.cut()
    assert await producer is False
    await pacer.run(frames=5)
    after = frames[20:]
    assert np.abs(after[0][:80].astype(np.int32)).max() > 1000  # the fade is audible...
    assert np.abs(after[0][75:80].astype(np.int32)).max() < 1000  # ...and reaches ~0 in 10 ms
    assert not np.concatenate(after)[80:].any()  # then silence
    # a new reply after the cut plays normally
    assert await playout.feed(tone(500, 24000, 0.3), 24000)
    assert await playout.end()
    assert buffer.level > 0


async def test_source_rate_change_between_replies() -> None:
    buffer = StreamingAudioBuffer(capacity_ms=5000, preroll_ms=0)
    playout = LinePlayout(buffer, crossfade_samples=0)
    assert await playout.feed(tone(300, 22050, 0.5), 22050)
    assert await playout.feed(tone(300, 24000, 0.5), 24000)
    assert await playout.end()
    assert playout.source_rate == 24000
    assert abs(buffer.level - (8000 + playout.leveler.delay)) <= 2  # no gap at the switch


async def test_capture_decodes_records_and_resamples(tmp_path: Path) -> None:
    x = float_to_int16(speechlike(8000, 1.0, seed=9))
    wire = LineCodec.ULAW.encode(x)
    rec = CallRecorder(tmp_path / "c")
    cap = LineCapture("ulaw", out_rate=16000, recorder=rec)
    rng = np.random.default_rng(1)
    pieces = []
    i = 0
    while i < len(wire):
        n = int(rng.integers(1, 500))
        pieces.append(cap.feed(wire[i : i + n]))
        i += n
    pieces.append(cap.flush())
    out = np.concatenate(pieces)
    decoded = LineCodec.ULAW.decode(wire)
    ref = samplerate.resample(decoded.astype(np.float32) / 32768, 2.0, "sinc_medium").reshape(-1)
    assert out.size == 16000
    n = min(out.size, ref.size)
    assert np.sqrt(np.mean((out[:n] - ref[:n]) ** 2)) < 1e-3
    rec.close()
    caller, rate = read_wav(tmp_path / "c" / "caller.wav")
    assert rate == 8000 and np.array_equal(caller, decoded)


def test_capture_pcm16_odd_byte_chunks() -> None:
    x = float_to_int16(tone(400, 8000, 0.1))
    wire = LineCodec.PCM16.encode(x)
    cap = LineCapture("pcm16", out_rate=8000)
    out = np.concatenate([cap.feed(wire[i : i + 3]) for i in range(0, len(wire), 3)] + [cap.flush()])
    assert np.array_equal(float_to_int16(out), x)


def test_audio_package_imports_no_daemon_engines_or_channels() -> None:
    forbidden = {"daemon", "engines", "channels", "audioop"}
    for path in AUDIO_PKG.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
                assert not name.startswith("drivers.sim7600"), f"{path.name} imports {name}"
