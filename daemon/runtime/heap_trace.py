"""``SECRETARY_TRACEMALLOC``: opt-in tracemalloc in ``secretaryd``, with a heap snapshot on every SIGUSR2.

A diagnostic for finding what grows in a long-running daemon; off unless the
environment asks for it. ``SECRETARY_TRACEMALLOC=<frames>`` (1..64: how many
frames of each allocation's traceback to keep; 1 is the cheapest, 8 shows who
called) makes ``daemon/main.py`` start tracing before the box is imported, and
each SIGUSR2 then writes a snapshot of the traced heap, after a full garbage
collection, to::

    <data_dir>/run/tracemalloc-<pid>-<n>.snap     (n = 1, 2, ... in this process)

atomically (written as ``.tmp``, renamed when complete), and logs its path.
Compare two with ``tracemalloc.Snapshot.load(late).compare_to(Snapshot.load(early), "lineno")``;
``bench/soak.py`` does that between an early and a late call. A second signal
while a snapshot is being written is ignored (and logged).

What tracing costs: every Python allocation is slower (about twice), each
live block costs memory (RSS grows with the number of traced blocks), and a
snapshot holds the interpreter for a moment (0.1-1 s on a small CPU; it runs
in a worker thread, but it keeps the GIL). Take snapshots between calls.
Unset, empty or ``0``: nothing is traced and SIGUSR2 keeps its default
action. A value that is not a frame count is logged as an error and the
daemon runs without tracing (a diagnostic switch never stops the box).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("secretary.heap_trace")

ENV = "SECRETARY_TRACEMALLOC"
MAX_FRAMES = 64


def frames_from_env(environ: Mapping[str, str]) -> int:
    """The traceback frames ``ENV`` asks for; 0 when tracing is off. ValueError (saying what is allowed) if bad."""
    raw = environ.get(ENV, "").strip()
    if raw in ("", "0"):
        return 0
    frames = int(raw) if raw.isdigit() else -1
    if not 1 <= frames <= MAX_FRAMES:
        raise ValueError(
            f"{ENV}={raw!r} is not a frame count: set 1..{MAX_FRAMES} (traceback frames kept per allocation), "
            "or 0 / unset for no tracing"
        )
    return frames


def snapshot_path(directory: Path, pid: int, number: int) -> Path:
    """Where the ``number``-th snapshot (from 1) of process ``pid`` goes."""
    return directory / f"tracemalloc-{pid}-{number}.snap"


def write_snapshot(path: Path) -> Path:
    """Collect garbage, snapshot the traced heap and write it to ``path`` atomically (blocking: run it in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    partial = path.with_name(path.name + ".tmp")
    snapshot.dump(str(partial))
    os.replace(partial, path)
    return path


class HeapTrace:
    """Writes a snapshot per request, one at a time, off the event loop."""

    def __init__(self, directory: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.directory = directory
        self.taken = 0  # snapshots asked for in this process (the last one may still be being written)
        self._loop = loop
        self._writing: asyncio.Future[Path] | None = None

    def request(self) -> None:
        """A snapshot now (the SIGUSR2 handler, on the loop); ignored while the previous one is being written."""
        if self._writing is not None and not self._writing.done():
            log.warning("a heap snapshot is still being written; this request is ignored")
            return
        self.taken += 1
        path = snapshot_path(self.directory, os.getpid(), self.taken)
        self._writing = self._loop.run_in_executor(None, write_snapshot, path)
        self._writing.add_done_callback(self._written)

    @staticmethod
    def _written(done: asyncio.Future[Path]) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            log.error("the heap snapshot could not be written", extra={"error": str(error)})
            return
        traced, peak = tracemalloc.get_traced_memory()
        log.info("heap snapshot written", extra={
            "path": str(done.result()), "traced_mb": round(traced / 2**20, 1), "traced_peak_mb": round(peak / 2**20, 1),
            "tracemalloc_overhead_mb": round(tracemalloc.get_tracemalloc_memory() / 2**20, 1),
        })


def trace_heap_from_env(
    directory: Path, environ: Mapping[str, str] | None = None, loop: asyncio.AbstractEventLoop | None = None,
) -> HeapTrace | None:
    """If ``ENV`` asks for it: start tracemalloc and write a snapshot into ``directory`` on each SIGUSR2.

    Call it on the running loop, before the rest of the box is imported. Returns None (and does nothing) when
    tracing is off or ``ENV`` is not a frame count (logged as an error).
    """
    try:
        frames = frames_from_env(os.environ if environ is None else environ)
    except ValueError as exc:
        log.error("%s; the daemon runs without tracing", exc)
        return None
    if not frames:
        return None
    loop = loop if loop is not None else asyncio.get_running_loop()
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    trace = HeapTrace(directory, loop)
    loop.add_signal_handler(signal.SIGUSR2, trace.request)
    log.info("tracemalloc is on: send SIGUSR2 for a heap snapshot", extra={
        "frames": tracemalloc.get_traceback_limit(), "snapshots": str(snapshot_path(directory, os.getpid(), 0).parent),
    })
    return trace
