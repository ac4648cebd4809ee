"""Line leveler: never clips, normalises speech, leaves pauses alone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio.level import LineLeveler, PeakLimiter, db_to_gain
from drivers.audio.pcm import float_to_int16

from .signals import random_split, speechlike, tone


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def level_all(lev: LineLeveler, chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([lev.process(c) for c in chunks] + [lev.flush()])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), gain=st.floats(0.01, 8.0), max_chunk=st.integers(1, 400))
def test_limiter_output_never_exceeds_the_ceiling(seed: int, gain: float, max_chunk: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(3000) * gain).astype(np.float32)
    lim = PeakLimiter(ceiling=db_to_gain(-1.0), lookahead=32)
    y = np.concatenate([lim.process(c) for c in random_split(x, rng, max_chunk)] + [lim.flush()])
    assert y.size == x.size + lim.delay
    assert np.max(np.abs(y)) <= lim.ceiling + 1e-6
    # chunking does not change the result
    lim2 = PeakLimiter(ceiling=db_to_gain(-1.0), lookahead=32)
    assert np.allclose(y, np.concatenate([lim2.process(x), lim2.flush()]), atol=1e-6)


def test_limiter_is_transparent_below_the_ceiling() -> None:
    x = tone(440, 8000, 0.5, 0.5)
    lim = PeakLimiter(ceiling=0.9, lookahead=32)
    y = np.concatenate([lim.process(x), lim.flush()])
    assert np.allclose(y[lim.delay :], x, atol=1e-7)
    assert not y[: lim.delay].any()


def test_limiter_gain_is_smooth() -> None:
    """A sudden loud burst is met by a gain ramp, not a gain step."""
    x = np.concatenate((tone(200, 8000, 0.2, 0.3), tone(200, 8000, 0.2, 2.0))).astype(np.float32)
    lim = PeakLimiter(ceiling=0.9, lookahead=32)
    y = np.concatenate([lim.process(x), lim.flush()])[lim.delay :]
    assert np.max(np.abs(y)) <= 0.9 + 1e-6
    assert np.max(np.abs(np.diff(y))) < 0.3  # 200 Hz at 0.9 peak moves < 0.15 per sample


def test_leveler_brings_quiet_and_loud_speech_toward_target() -> None:
    rng = np.random.default_rng(3)
    for amplitude in (0.05, 0.9):
        x = speechlike(8000, 4.0, seed=1, amplitude=amplitude)
        lev = LineLeveler(8000, target_dbfs=-18.0, max_gain_db=20.0, min_gain_db=-20.0)
        y = level_all(lev, random_split(x, rng, 320))
        before, after = rms_db(x[-8000:]), rms_db(y[-8000:])
        assert abs(after + 18.0) < abs(before + 18.0)
        assert abs(after + 18.0) < 3.0
        assert np.max(np.abs(y)) <= db_to_gain(-1.0) + 1e-6


def test_leveler_does_not_pump_up_pauses() -> None:
    lev = LineLeveler(8000, gate_dbfs=-45.0, max_gain_db=12.0)
    speech = speechlike(8000, 1.0, seed=2, amplitude=0.3)
    lev.process(speech)
    gain_after_speech = lev.gain_db
    hiss = (np.random.default_rng(0).standard_normal(16000) * 1e-4).astype(np.float32)  # -80 dBFS
    for chunk in np.array_split(hiss, 100):
        lev.process(chunk)
    assert lev.gain_db == gain_after_speech


def test_leveler_never_clips_int16_conversion() -> None:
    x = np.clip(tone(300, 8000, 1.0, 3.0), -3, 3)  # heavily over full scale
    lev = LineLeveler(8000)
    y = float_to_int16(level_all(lev, [x[:4000], x[4000:]]))
    assert np.max(np.abs(y.astype(np.int32))) <= round(32768 * db_to_gain(-1.0)) + 1


def test_normalise_off_only_limits() -> None:
    x = speechlike(8000, 0.5, seed=4, amplitude=0.1)
    lev = LineLeveler(8000, normalise=False)
    y = level_all(lev, [x])
    assert np.allclose(y[lev.delay :], x, atol=1e-6)
