"""Recording as a side job: the calls' audio and record writes, watched; ``services/recorder/state``.

A full disk must never end a conversation. The calls service makes each
call's ``CallRecorder`` through the ``RecordingWatch`` (which hears when a
track stops and resumes), and hands it the record and index writes that
failed (``keep``), to be retried until they succeed. The supervised
``RecorderService`` (name ``recorder``) turns that into its state: running
with the free space, or degraded with the reason (a call's recording stopped:
disk full; writes waiting for space; free space below ``call.min_free_mb``).
Every few seconds, and at once when a recorder changes, it retries the
waiting writes and, below ``call.min_free_mb``, frees space by policy
(``retention.free_audio``: the oldest finished calls' audio first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from channels.bus_contract.topics import RECORDER_SERVICE
from daemon.records.retention import free_audio, free_bytes
from daemon.runtime.service import Service, ServiceStatus
from drivers.audio import CallRecorder

log = logging.getLogger("secretary.recorder")

CHECK_EVERY_S = 3.0
MB = 2**20
WRITE_ERRORS = (OSError, sqlite3.OperationalError)  # what a full disk raises from a file write or from SQLite


class RecordingWatch:
    """What the calls service tells the recorder service: live recorders and writes waiting for space.

    One per daemon (the app owns it), so a reload that replaces either
    service keeps what the other one said.
    """

    def __init__(self) -> None:
        self._recorders: dict[str, CallRecorder] = {}
        self._waiting: dict[tuple[str, str], Callable[[], Awaitable[Any]]] = {}
        self._changed = asyncio.Event()

    # -- the calls service's side -------------------------------------------------------
    def recorder(self, call_id: str, call_dir: Path) -> CallRecorder:
        """A call's recorder, watched until it is closed; it never raises a write failure into the call.

        Call it on the event loop; the recorder's changes (its close runs in a
        worker thread) come back to the loop.
        """
        loop = asyncio.get_running_loop()

        def changed(recorder: CallRecorder) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone (the daemon stopped): nobody to tell
                loop.call_soon_threadsafe(self._recorder_changed, call_id, recorder)

        self._recorders[call_id] = recorder = CallRecorder(call_dir, on_change=changed)
        return recorder

    async def keep(self, call_id: str, what: str, write: Callable[[], Awaitable[Any]]) -> bool:
        """Run a record write now; if the disk refuses it, log it and retry it until it succeeds.

        True if it was written now. ``what`` names it (``record``, ``index``);
        a newer write of the same kind for the same call replaces a waiting one.
        """
        try:
            await write()
        except WRITE_ERRORS as exc:
            log.error("call record write failed; retried when space returns",
                      extra={"call_id": call_id, "what": what, "error": str(exc)})
            self._waiting[(call_id, what)] = write
            self._changed.set()
            return False
        self._waiting.pop((call_id, what), None)
        return True

    # -- the recorder service's side ------------------------------------------------------
    def failing(self) -> dict[str, str]:
        """Live calls whose recording is stopped, and why."""
        return {call_id: r.reason for call_id, r in self._recorders.items() if r.reason is not None}

    def live_call_ids(self) -> set[str]:
        return set(self._recorders)

    @property
    def waiting(self) -> int:
        """Record writes waiting for space."""
        return len(self._waiting)

    def waiting_call_ids(self) -> set[str]:
        """Calls whose record writes wait for space: finished, though their record may still say in progress."""
        return {call_id for call_id, _ in self._waiting}

    async def retry_waiting(self) -> None:
        """One attempt at every waiting write, in the order they failed."""
        for key, write in list(self._waiting.items()):
            try:
                await write()
            except WRITE_ERRORS:
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. the index was closed by a reload: the next start recovers it
                log.error("a waiting call record write cannot be done; dropped",
                          extra={"call_id": key[0], "what": key[1], "error": f"{type(exc).__name__}: {exc}"})
            else:
                log.info("call record written after the disk had refused it", extra={"call_id": key[0], "what": key[1]})
            if self._waiting.get(key) is write:
                del self._waiting[key]

    async def changed(self, timeout: float) -> None:
        """Until a recorder changes or a write waits, or ``timeout`` passes."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        self._changed.clear()

    def _recorder_changed(self, call_id: str, recorder: CallRecorder) -> None:
        if recorder.closed:
            if self._recorders.get(call_id) is recorder:
                del self._recorders[call_id]
        elif recorder.failing:
            log.error("call recording stopped; the call goes on", extra={"call_id": call_id, "error": recorder.reason})
        else:
            log.info("call recording resumed", extra={"call_id": call_id})
        self._changed.set()


class RecorderService(Service):
    """``services/recorder/state``: is the box able to record calls, and what it does about disk space."""

    name = RECORDER_SERVICE

    def __init__(
        self, watch: RecordingWatch, calls_dir: Path, min_free_mb: float, *, check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self.watch = watch
        self.calls_dir = Path(calls_dir)
        self.min_free_bytes = int(min_free_mb * MB)
        self.check_every_s = check_every_s

    def config_slice(self) -> Any:
        return (self.calls_dir, self.min_free_bytes)

    async def run(self, status: ServiceStatus) -> None:
        while True:
            await self.watch.retry_waiting()
            free = await asyncio.to_thread(free_bytes, self.calls_dir)
            if free < self.min_free_bytes:
                free = await self._free_space(free)
            self._report(status, free)
            await self.watch.changed(self.check_every_s)

    async def _free_space(self, free: int) -> int:
        try:
            result = await asyncio.to_thread(free_audio, self.calls_dir, self.min_free_bytes,
                                             self.watch.live_call_ids())
        except OSError as exc:
            log.error("could not free disk space", extra={"error": str(exc)})
            return free
        if result.calls:
            log.warning("deleted old calls' audio to keep free space (transcripts kept)",
                        extra={"calls": len(result.calls), "bytes_freed": result.bytes_freed,
                               "free_mb": round(result.free_bytes / MB, 1)})
        for error in result.errors:
            log.warning("freeing disk space: %s", error)
        return result.free_bytes

    def _report(self, status: ServiceStatus, free: int) -> None:
        where = f"{free / MB:.1f} MB free in {self.calls_dir}"
        failing = self.watch.failing()
        if failing:
            reasons = "; ".join(dict.fromkeys(failing.values()))
            status.degraded(f"recording stopped on {len(failing)} live call(s): {reasons}; calls go on; {where}")
        elif self.watch.waiting:
            status.degraded(f"{self.watch.waiting} call record write(s) waiting for disk space; {where}")
        elif free < self.min_free_bytes:
            status.degraded(
                f"low disk space: {where}, below call.min_free_mb {self.min_free_bytes / MB:g} MB "
                "and no old calls' audio left to delete"
            )
        else:
            status.ready(where)
