"""Exact 20 ms frames from arbitrary chunk sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio.framing import Framer, frame_samples


def test_frame_sizes() -> None:
    assert frame_samples(8000, 20) == 160
    assert frame_samples(16000, 20) == 320
    assert frame_samples(22050, 20) == 441
    with pytest.raises(ValueError):
        frame_samples(22050, 10)  # 220.5 samples


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=700), max_size=40))
def test_random_chunks_give_exact_frames_and_carry_the_rest(sizes: list[int]) -> None:
    total = sum(sizes)
    data = (np.arange(total) % 30000).astype(np.int16)
    framer = Framer(160)
    frames = []
    offset = 0
    for n in sizes:
        frames.extend(framer.push(data[offset : offset + n]))
        offset += n
        assert framer.pending == offset % 160
    assert all(f.shape == (160,) and f.dtype == np.int16 for f in frames)
    assert len(frames) == total // 160
    joined = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    assert np.array_equal(joined, data[: len(frames) * 160])
    last = framer.flush()
    if total % 160:
        assert last is not None and last.size == 160
        assert np.array_equal(last[: total % 160], data[len(frames) * 160 :])
        assert not last[total % 160 :].any()
    else:
        assert last is None
    assert framer.pending == 0


def test_flush_without_padding_returns_the_remainder() -> None:
    framer = Framer(160)
    assert framer.push(np.ones(170, np.int16))[0].size == 160
    rest = framer.flush(pad=False)
    assert rest is not None and rest.size == 10
    assert framer.flush() is None


def test_frames_do_not_alias_input() -> None:
    framer = Framer(4)
    x = np.arange(8, dtype=np.int16)
    frames = framer.push(x)
    x[:] = 0
    assert frames[1].tolist() == [4, 5, 6, 7]


def test_float_framer() -> None:
    framer = Framer(3, dtype=np.float32)
    frames = framer.push(np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    assert frames[0].dtype == np.float32 and framer.pending == 1
