"""Barge-in on a line that echoes the box's own voice: the echo is no caller, a real caller still stops the reply.

The call's real ears (``CallerListener`` on the packaged Silero VAD, the config's thresholds and
barge-in onset) hear a GSM caller channel made tick by tick from what the box sends
(``tests/support/line_echo.py``): its reply back at -10 dB after 150 ms through a 300-3400 Hz echo
path, pink noise at -40 dBFS, A-law on the wire, and in the second test a real caller (Debian's
recorded Russian prompts and read speech) talking over it at -20 dBFS. bench/barge_in_echo.py counts
the same over more levels, delays and replies.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from config.call_schema import CallConfig
from drivers.audio.jitter_buffer import StreamingAudioBuffer
from drivers.audio.playout import FrameSender
from engines.vad.echo_gate import EchoGate
from engines.vad.silero_backend import SileroBackend
from tests.support import real_speech
from tests.support.line_echo import FRAME, REPLY_DBFS, TICK_MS, Case, at_level, line_clip, run_case

NOISE_DBFS = -40.0
CALLER_DBFS = -20.0
ONSET_TICK = 90  # the caller starts 1.8 s into the reply

missing = real_speech.missing_sources()
needs_speech = pytest.mark.skipif(bool(missing), reason=f"real speech not installed: {missing}")



LINE_PAUSE = 2000  # 250 ms at the line rate


def reply() -> np.ndarray:
    """About six seconds of the box talking: real recorded prompts, short pauses between them."""
    parts = []
    for clip in real_speech.utterances(real_speech.ASTERISK_EN, 4):
        parts += [line_clip(clip), np.zeros(LINE_PAUSE, dtype=np.int16)]
    return at_level(np.concatenate(parts), REPLY_DBFS)


def gate() -> EchoGate:
    margin = CallConfig().barge_in.echo_margin_db
    assert margin is not None, "the echo gate is on by default"
    return EchoGate(margin_db=margin)


@needs_speech
def test_the_box_own_voice_echoed_at_minus_10_db_is_no_barge_in(silero: SileroBackend) -> None:
    box = reply()
    cases = [Case(-10.0, 150, box, None, 0, seed) for seed in range(4)]
    without = [asyncio.run(run_case(case, silero, None, NOISE_DBFS)).stopped_tick for case in cases]
    assert all(tick is not None for tick in without), "without the gate the echo stops the reply (today's code)"
    with_gate = [asyncio.run(run_case(case, silero, gate(), NOISE_DBFS)).stopped_tick for case in cases]
    assert with_gate == [None] * len(cases), f"the echo stopped the reply at ticks {with_gate}"


@needs_speech
def test_a_real_caller_over_the_echo_still_stops_the_reply_within_200_ms(silero: SileroBackend) -> None:
    box = reply()
    callers = real_speech.utterances(real_speech.ASTERISK_RU, 2) + real_speech.utterances(real_speech.FESTVOX_RU, 2)
    stops: dict[str, float | None] = {}
    for n, clip in enumerate(callers):
        case = Case(-10.0, 150, box, at_level(line_clip(clip), CALLER_DBFS), ONSET_TICK, n)
        tick = asyncio.run(run_case(case, silero, gate(), NOISE_DBFS)).stopped_tick
        # the reply stops in the tick after the detection, over one faded frame
        stops[clip.clip_id] = None if tick is None else (tick + 1) * TICK_MS + CallConfig().barge_in.fade_ms - case.onset_ms
    assert all(stop is not None and 0 < stop <= 200 for stop in stops.values()), stops


def test_the_gate_learns_the_echo_path_and_lets_a_louder_caller_through() -> None:
    rng = np.random.default_rng(1)
    echo = EchoGate(margin_db=6.0)
    lag, gain_db = 7, -12.0
    sent_frames = [(rng.standard_normal(FRAME) * 6000 * (k % 9 < 6)).astype(np.int16) for k in range(200)]
    noise = 10 ** (-50 / 20)
    passed = []
    for k, frame in enumerate(sent_frames):
        echo.sent(frame)
        back = sent_frames[k - lag].astype(np.float64) / 32768 * 10 ** (gain_db / 20) if k >= lag else np.zeros(FRAME)
        heard = np.repeat(back, 2) + rng.standard_normal(2 * FRAME) * noise  # the engines' rate is twice the line's
        if k == 150:
            heard += rng.standard_normal(2 * FRAME) * 0.2  # the caller, far above the echo
        out = echo.clean(heard.astype(np.float32))
        passed.append(bool(np.array_equal(out, heard.astype(np.float32))))
    assert echo.lag == lag
    assert abs(10 * np.log10(echo.gain) - gain_db) < 3.0
    assert passed[150]
    assert sum(passed[100:150]) < 20  # the echo frames are gated (quiet ticks with no echo pass)


def test_no_echo_on_the_line_gates_nothing_once_the_box_has_talked() -> None:
    rng = np.random.default_rng(2)
    echo = EchoGate(margin_db=6.0)
    for k in range(120):
        echo.sent((rng.standard_normal(FRAME) * 6000 * (k % 9 < 6)).astype(np.int16))
        echo.clean((rng.standard_normal(2 * FRAME) * 10 ** (-50 / 20)).astype(np.float32))
    assert echo.gain == 0.0
    quiet_caller = (rng.standard_normal(2 * FRAME) * 0.01).astype(np.float32)
    echo.sent(np.full(FRAME, 20000, dtype=np.int16))
    assert echo.clean(quiet_caller) is quiet_caller


def test_digital_silence_while_the_box_talks_passes_unchanged() -> None:
    echo = EchoGate(margin_db=6.0)
    for _ in range(60):
        echo.sent(np.full(FRAME, 8000, dtype=np.int16))
        silence = np.zeros(2 * FRAME, dtype=np.float32)
        assert echo.clean(silence) is silence


def test_the_margin_is_checked() -> None:
    with pytest.raises(ValueError, match="margin"):
        EchoGate(margin_db=-1.0)


def test_the_line_tells_the_gate_of_every_frame_it_sends_silence_included() -> None:
    buffer = StreamingAudioBuffer(capacity_ms=200.0, preroll_ms=0.0)
    told: list[np.ndarray] = []
    sender = FrameSender(buffer, "pcm16", lambda frame: None, on_sent=told.append)
    sender()  # nothing queued: a silent frame
    buffer.write_nowait(np.full(FRAME, 1000, dtype=np.int16))
    sender()
    assert len(told) == 2 and not told[0].any() and told[1].any()


def test_a_failing_gate_never_stops_the_line(caplog: pytest.LogCaptureFixture) -> None:
    buffer = StreamingAudioBuffer(capacity_ms=200.0, preroll_ms=0.0)
    written: list[bytes] = []

    def broken(frame: np.ndarray) -> None:
        raise ZeroDivisionError("the gate's bug")

    sender = FrameSender(buffer, "pcm16", written.append, on_sent=broken)
    buffer.write_nowait(np.full(FRAME, 1000, dtype=np.int16))
    sender()
    sender()
    assert len(written) == 2 and sender.on_sent is None and sender.frames_sent == 2
    assert "on_sent hook failed" in caplog.text
