"""Opt-in thread scheduling helpers (each check runs in its own thread)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from drivers.audio.thread_priority import current_policy, set_normal, set_realtime

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux per-thread scheduling")


def in_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(fn()))
    t.start()
    t.join()
    return result[0]


def test_set_normal_lowers_only_the_calling_thread() -> None:
    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def worker() -> tuple[bool, int]:
        ok = set_normal(nice=main_nice + 5)
        return ok, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    ok, nice = in_thread(worker)
    assert ok and nice == min(19, main_nice + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice


def test_set_realtime_reports_what_it_did() -> None:
    def worker() -> tuple[bool, str, str]:
        ok = set_realtime(priority=5)
        policy = current_policy()
        set_normal()
        return ok, policy, current_policy()

    ok, policy, after = in_thread(worker)
    assert policy == ("fifo" if ok else "other")  # granted, or refused without privilege
    assert after == "other"
    assert current_policy() == "other"  # the test's own thread untouched


def test_bad_policy() -> None:
    with pytest.raises(ValueError):
        set_realtime(policy="deadline")
