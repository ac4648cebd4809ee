"""Opt-in thread scheduling for the audio clock: real-time for the loop, lower for workers.

Linux scheduling is per thread and these act on the calling thread only. A
thread created by a real-time thread inherits its policy, so a daemon that
makes its event-loop thread real-time must start worker threads with
``set_normal`` (e.g. as a ``ThreadPoolExecutor`` initializer).
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

_POLICIES = {"fifo": "SCHED_FIFO", "rr": "SCHED_RR"}


def set_realtime(priority: int = 10, policy: str = "fifo") -> bool:
    """Run the calling thread under SCHED_FIFO/SCHED_RR; False if not permitted or not supported."""
    name = _POLICIES.get(policy)
    if name is None:
        raise ValueError(f"policy must be one of {sorted(_POLICIES)}")
    if not hasattr(os, name) or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, getattr(os, name), os.sched_param(priority))
    except (PermissionError, OSError) as exc:
        log.info("real-time scheduling not available: %s", exc)
        return False
    return True


def set_normal(nice: int = 0) -> bool:
    """Put the calling thread on normal scheduling with ``nice`` (raising it needs no privilege)."""
    try:
        if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (PermissionError, OSError) as exc:
        log.info("could not set thread priority: %s", exc)
        return False
    return True


def current_policy() -> str:
    """The calling thread's scheduling policy: "fifo", "rr", "other" or "unknown"."""
    if not hasattr(os, "sched_getscheduler"):
        return "unknown"
    value = os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
    for short, name in _POLICIES.items():
        if value == getattr(os, name, None):
            return short
    return "other" if value == os.SCHED_OTHER else "unknown"
