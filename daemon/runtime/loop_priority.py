"""``audio.realtime_priority``: opt-in SCHED_FIFO for the event-loop thread that runs the line clock.

Called once, on the loop thread, before the app starts. Unset (the default):
nothing changes. Set: the loop thread asks for SCHED_FIFO at that priority. If
the kernel refuses (no CAP_SYS_NICE, no ``LimitRTPRIO=``), one warning is
logged and the daemon runs on normal scheduling as before.

When granted, nothing else may run real-time. Linux copies a thread's policy
into every thread and process it creates, so two things keep inference off
the real-time class:

- the loop's default executor (``asyncio.to_thread``, ``run_in_executor``)
  becomes a ``ThreadPoolExecutor`` whose initializer calls ``set_normal`` with
  the daemon's own nice value;
- the loop thread also sets ``SCHED_RESET_ON_FORK``, so threads it starts
  directly (``engines.thread_stream.iterate_in_thread``: whisper, Piper,
  llama.cpp) and subprocesses it spawns start on normal scheduling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import threading
from concurrent.futures import ThreadPoolExecutor

from drivers.audio.thread_priority import set_normal, set_realtime

log = logging.getLogger("secretary.audio")

WORKER_THREAD_PREFIX = "secretary-worker"


def apply_loop_priority(priority: int | None, loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Make the calling (event-loop) thread SCHED_FIFO ``priority``; True if it now is.

    ``None`` changes nothing. A refusal is logged once as a warning and returns False.
    """
    if priority is None:
        return False
    loop = loop if loop is not None else asyncio.get_running_loop()
    nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if not set_realtime(priority):
        log.warning(
            "audio.realtime_priority %d refused by the kernel; the line clock runs with normal scheduling "
            "(grant CAP_SYS_NICE or LimitRTPRIO=%d in the systemd unit)",
            priority, priority,
            extra={"realtime_priority": priority, "rlimit_rtprio": _rlimit_rtprio()},
        )
        return False
    _reset_on_fork(priority)
    loop.set_default_executor(
        ThreadPoolExecutor(thread_name_prefix=WORKER_THREAD_PREFIX, initializer=set_normal, initargs=(nice,))
    )
    log.info(
        "event-loop thread runs SCHED_FIFO; worker threads and child processes run normal scheduling",
        extra={"realtime_priority": priority, "worker_nice": nice},
    )
    return True


def _reset_on_fork(priority: int) -> None:
    """Keep SCHED_FIFO on this thread but let threads and processes it creates start normal."""
    flag = getattr(os, "SCHED_RESET_ON_FORK", None)
    if flag is None:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | flag, os.sched_param(priority))
    except OSError as exc:
        log.warning("could not set SCHED_RESET_ON_FORK on the event-loop thread: threads it starts "
                    "directly will inherit SCHED_FIFO", extra={"error": str(exc)})


def _rlimit_rtprio() -> int | None:
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    except (AttributeError, OSError, ValueError):
        return None
    return soft
