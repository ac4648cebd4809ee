"""Segment crossfade (sentence joins) and fade curves."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio.crossfade import SegmentCrossfader
from drivers.audio.fades import fade_in, fade_in_curve, fade_out, fade_out_curve


def run(cf: SegmentCrossfader, segments: list[list[np.ndarray]]) -> np.ndarray:
    out: list[np.ndarray] = []
    for i, chunks in enumerate(segments):
        if i:
            cf.new_segment()
        out.extend(cf.process(c) for c in chunks)
    out.append(cf.flush())
    return np.concatenate(out)


def test_fade_curves_are_complementary_and_monotonic() -> None:
    for n in (1, 2, 16, 256):
        a, b = fade_in_curve(n), fade_out_curve(n)
        assert np.allclose(a + b, 1.0, atol=1e-6)
        assert np.all(np.diff(a) >= 0)
        assert n == 1 or a[0] < 0.5 < a[-1]


def test_fade_helpers_keep_dtype() -> None:
    x = np.full(100, 10000, np.int16)
    y = fade_out(x)
    assert y.dtype == np.int16 and y[0] > 9900 and abs(int(y[-1])) < 100
    z = fade_in(x.astype(np.float32))
    assert z.dtype == np.float32 and z[0] < 100 and z[-1] > 9900


def test_join_is_smooth_where_a_hard_cut_clicks() -> None:
    a = np.full(1000, 0.8, np.float32)
    b = np.full(1000, -0.8, np.float32)
    hard = np.concatenate((a, b))
    smooth = run(SegmentCrossfader(256), [[a], [b]])
    assert np.max(np.abs(np.diff(hard))) > 1.5
    assert np.max(np.abs(np.diff(smooth))) < 1.6 * np.pi / 256 * 1.1  # raised-cosine slope
    assert smooth.size == 2000 - 256
    assert np.array_equal(smooth[:744], a[:744]) and np.array_equal(smooth[-744:], b[-744:])


def test_mix_never_exceeds_the_louder_input() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.9, 0.9, 600).astype(np.float32)
    b = rng.uniform(-0.9, 0.9, 600).astype(np.float32)
    y = run(SegmentCrossfader(256), [[a], [b]])
    assert np.max(np.abs(y)) <= 0.9 + 1e-6


def test_zero_length_passes_through() -> None:
    a, b = np.ones(10, np.float32), np.zeros(10, np.float32)
    assert np.array_equal(run(SegmentCrossfader(0), [[a], [b]]), np.concatenate((a, b)))


segments_strategy = st.lists(
    st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=6),  # chunk sizes per segment
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(layout=segments_strategy, seed=st.integers(0, 2**16))
def test_output_does_not_depend_on_chunking(layout: list[list[int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    segments = [rng.uniform(-1, 1, sum(sizes)).astype(np.float32) for sizes in layout]
    chunked = []
    for seg, sizes in zip(segments, layout, strict=True):
        cuts = np.cumsum(sizes)[:-1]
        chunked.append(np.split(seg, cuts))
    whole = run(SegmentCrossfader(64), [[s] for s in segments])
    pieces = run(SegmentCrossfader(64), chunked)
    assert np.allclose(whole, pieces, atol=1e-6)
    # every join removes the overlap it used, never more than the fade length
    total = sum(s.size for s in segments)
    assert total - 64 * (len(segments) - 1) <= whole.size <= total
