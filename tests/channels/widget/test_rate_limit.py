"""Sliding-window rate limits: per key, several keys at once, a clear wait, bounded memory."""

from __future__ import annotations

import pytest

from channels.widget.rate_limit import SlidingWindowLimiter, too_fast_message, whole_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_per_window_then_the_oldest_event_leaving_makes_room() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(60.0, clock=clock)
    for step in range(3):
        assert limiter.admit(["a"], 3) == 0.0
        clock.now += 10
    # events at 1000, 1010, 1020; now 1030: the next fits when the one at 1000 leaves (1060)
    assert limiter.admit(["a"], 3) == pytest.approx(30.0)
    clock.now = 1059.9
    assert limiter.admit(["a"], 3) == pytest.approx(0.1)
    clock.now = 1060.0
    assert limiter.admit(["a"], 3) == 0.0  # a sliding window, not a fixed minute
    assert limiter.admit(["a"], 3) == pytest.approx(10.0)  # now 1010 must leave


def test_every_key_must_have_room_and_a_refusal_counts_against_none() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(60.0, clock=clock)
    assert limiter.admit([("session", "s1"), ("ip", "1.2.3.4")], 2) == 0.0
    assert limiter.admit([("session", "s2"), ("ip", "1.2.3.4")], 2) == 0.0
    # a third session from the same address: the address is full
    assert limiter.admit([("session", "s3"), ("ip", "1.2.3.4")], 2) == pytest.approx(60.0)
    # the refused event did not count against s3
    assert limiter.retry_after([("session", "s3")], 1) == 0.0
    # another address is not affected
    assert limiter.admit([("session", "s4"), ("ip", "5.6.7.8")], 2) == 0.0


def test_refusals_do_not_push_the_wait_further() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(60.0, clock=clock)
    limiter.admit(["k"], 1)
    for _ in range(20):
        clock.now += 1
        limiter.admit(["k"], 1)
    clock.now = 1060.0
    assert limiter.admit(["k"], 1) == 0.0


def test_quiet_keys_are_forgotten_and_keys_are_capped() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(60.0, max_keys=3, clock=clock)
    for key in "abc":
        limiter.record([key])
    assert len(limiter) == 3
    limiter.record(["d"])  # over the cap: the longest quiet goes
    assert len(limiter) == 3
    assert limiter.retry_after(["a"], 1) == 0.0
    clock.now += 61
    limiter.record(["e"])  # everything else is older than a window
    assert len(limiter) == 1


def test_the_visitor_is_told_whole_seconds() -> None:
    assert whole_seconds(0.2) == 1
    assert whole_seconds(29.01) == 30
    assert "1 second " in too_fast_message(0.5)
    assert "wait 12 seconds" in too_fast_message(11.5)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0)
