"""Streaming resampler: chunked output equals one-shot output; config quality; reset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import samplerate  # type: ignore[import-not-found,import-untyped,unused-ignore]

from drivers.audio.pcm import float_to_int16, pcm16_to_bytes
from drivers.audio.resample import ResampleQuality, StreamResampler

from .signals import random_split, speechlike, tone


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def stream(r: StreamResampler, chunks: Sequence[np.ndarray | bytes]) -> np.ndarray:
    return np.concatenate([r.process(c) for c in chunks] + [r.flush()])


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24000, 8000), (22050, 8000), (16000, 8000), (8000, 16000)])
@pytest.mark.parametrize("quality", ["sinc_best", "sinc_medium", "sinc_fastest"])
def test_streamed_equals_one_shot(in_rate: int, out_rate: int, quality: str) -> None:
    rng = np.random.default_rng(in_rate + len(quality))
    x = speechlike(in_rate, 1.3, seed=3) + tone(440, in_rate, 1.3, 0.2)
    chunks = random_split(x, rng, max_chunk=900)
    got = stream(StreamResampler(in_rate, out_rate, quality), chunks)
    ref = samplerate.resample(x, out_rate / in_rate, quality).reshape(-1)
    assert abs(got.size - round(x.size * out_rate / in_rate)) == 0
    assert abs(got.size - ref.size) <= 1
    n = min(got.size, ref.size)
    assert rms(got[:n] - ref[:n]) < 1e-3
    assert np.max(np.abs(got[:n] - ref[:n])) < 1e-2


def test_no_discontinuity_at_tiny_chunk_edges() -> None:
    """1..7-sample chunks of a sine: the output is the same clean sine everywhere."""
    rng = np.random.default_rng(7)
    x = tone(300, 24000, 0.5, 0.5)
    got = stream(StreamResampler(24000, 8000, "sinc_medium"), random_split(x, rng, 7))
    ideal = tone(300, 8000, 0.5, 0.5)
    inner = slice(200, got.size - 200)  # away from the signal's own start/end transients
    assert np.max(np.abs(got[inner] - ideal[inner])) < 2e-3
    # no sample-to-sample jump bigger than the sine's own slope allows
    assert np.max(np.abs(np.diff(got[inner]))) < 2 * np.pi * 300 / 8000 * 0.5 * 1.05


def test_accepts_int16_and_pcm16_bytes() -> None:
    x = speechlike(16000, 0.4, seed=1)
    ints = float_to_int16(x)
    a = stream(StreamResampler(16000, 8000), [ints[:1000], ints[1000:]])
    b = stream(StreamResampler(16000, 8000), [pcm16_to_bytes(ints[:1000]), pcm16_to_bytes(ints[1000:])])
    c = stream(StreamResampler(16000, 8000), [ints.astype(np.float32) / 32768])
    assert np.array_equal(a, b)
    assert np.allclose(a, c, atol=1e-6)


def test_anti_aliasing_removes_content_above_new_nyquist() -> None:
    """A 6 kHz tone has no place at 8 kHz: a real low-pass removes it."""
    x = tone(6000, 24000, 0.5, 0.5)
    y = stream(StreamResampler(24000, 8000, "sinc_medium"), [x])
    assert rms(y[400:-400]) < 0.01 * rms(x)


def test_flush_resets_for_a_new_stream() -> None:
    r = StreamResampler(22050, 8000)
    x = speechlike(22050, 0.3, seed=5)
    first = stream(r, [x[:500], x[500:]])
    second = stream(r, [x])
    assert np.array_equal(first, second)


def test_reset_drops_state_mid_stream() -> None:
    r = StreamResampler(24000, 8000)
    r.process(speechlike(24000, 0.2, seed=2))
    r.reset()
    x = tone(500, 24000, 0.2)
    assert np.array_equal(stream(r, [x]), stream(StreamResampler(24000, 8000), [x]))


def test_equal_rates_pass_through() -> None:
    r = StreamResampler(8000, 8000)
    x = speechlike(8000, 0.1)
    assert r.passthrough
    assert np.array_equal(stream(r, [x[:7], x[7:]]), x)


def test_quality_from_config() -> None:
    assert StreamResampler(24000, 8000, "sinc_best").quality is ResampleQuality.BEST
    with pytest.raises(ValueError):
        StreamResampler(24000, 8000, "excellent")
    with pytest.raises(ValueError):
        StreamResampler(0, 8000)


def test_empty_chunks_are_harmless() -> None:
    r = StreamResampler(24000, 8000)
    x = tone(440, 24000, 0.2)
    got = stream(r, [x[:0], x[:1000], x[:0], x[1000:]])
    assert np.array_equal(got, stream(StreamResampler(24000, 8000), [x]))
