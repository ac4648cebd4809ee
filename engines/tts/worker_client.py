"""The daemon's side of a TTS worker process: a ``TtsBackend`` that synthesises in a child process.

``load`` spawns ``python -m engines.tts.worker`` with the configured
interpreter (another venv's python for XTTS), waits for ``hello`` and then
``ready`` within the start timeout, and starts two owned tasks: one reads
frames from the worker's stdout and routes them, one keeps the tail of its
stderr for error messages. ``synthesize`` serves one request at a time: it
sends ``synthesize`` and yields the ``audio`` frames as chunks; when the
consumer stops early it sends ``cancel``, and the next request waits (bounded
by the cancel timeout) until the worker has acknowledged, so the worker is
free again without being restarted. Frames of a cancelled request are dropped.

When the worker dies (EOF on its stdout), sends a malformed frame, or goes
silent longer than the chunk timeout, every waiter gets a ``BackendError``
with the exit code and the worker's last stderr lines, so the fallback chain
fails over and, later, restarts it. ``close`` asks the worker to shut down,
then terminates, then kills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import engines
from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend, warmup_text
from engines.tts.settings import WorkerSettings
from engines.tts.worker_protocol import (
    PROTOCOL_VERSION,
    WORKER_MESSAGES,
    Message,
    ProtocolError,
    audio_samples,
    encode,
    read_message_async,
)

log = logging.getLogger("secretary.engines.tts.worker")

# The directory that holds the ``engines`` package: put on the worker's PYTHONPATH
# so any interpreter (a venv without this project installed) can run the worker.
SOURCE_ROOT = Path(engines.__file__).resolve().parent.parent

_DONE = object()


class WorkerTtsBackend(TtsBackend):
    """A TTS backend hosted by ``engines.tts.worker`` in a child process."""

    def __init__(
        self,
        *,
        name: str,
        worker_backend: str,
        settings_json: Mapping[str, Any],
        languages: frozenset[str],
        worker: WorkerSettings,
        device: str = "cpu",
        model: str = "",
    ) -> None:
        self.name = name
        self._worker_backend = worker_backend
        self._settings_json = dict(settings_json)
        self._languages = frozenset(languages)
        self._worker = worker
        self._device = device
        self._model = model
        self._process: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail: deque[str] = deque(maxlen=worker.stderr_tail_lines)
        self._dead: BackendError | None = None
        self._turn = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy_id: int | None = None
        self._listener: tuple[int, asyncio.Queue[object]] | None = None
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self.info: dict[str, Any] = {}

    # -- identity -----------------------------------------------------------

    @property
    def languages(self) -> frozenset[str]:
        return self._languages

    @property
    def device(self) -> str:
        return str(self.info.get("device", self._device))

    @property
    def model(self) -> str:
        return str(self.info.get("model", self._model))

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def python(self) -> str:
        return self._worker.python or sys.executable

    # -- lifecycle ------------------------------------------------------------

    async def load(self) -> None:
        if self._process is not None:
            raise BackendError(f"{self.name}: worker already started")
        env = {**os.environ, **self._worker.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.python, "-m", "engines.tts.worker", "--backend", self._worker_backend,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # terminal signals go to the daemon, which closes us in order
            )
        except OSError as exc:
            raise BackendUnavailable(f"{self.name}: cannot start the worker with {self.python}: {exc}") from None
        self._stderr_task = asyncio.create_task(self._pump_stderr(), name=f"tts-{self.name}-stderr")
        try:
            async with asyncio.timeout(self._worker.start_timeout_s):
                hello = await self._read_startup()
                if hello.type != "hello":
                    raise BackendError(f"{self.name}: worker said {hello.type!r} before hello")
                if hello["protocol"] != PROTOCOL_VERSION:
                    raise BackendError(
                        f"{self.name}: worker speaks protocol {hello['protocol']}, the daemon {PROTOCOL_VERSION}"
                    )
                await self._send(Message("load", {"backend": self._worker_backend, "settings": self._settings_json}))
                reply = await self._read_startup()
        except TimeoutError:
            await self._abandon(
                BackendError(f"{self.name}: worker not ready within {self._worker.start_timeout_s:g} s{self._tail_text()}")
            )
        except BackendError as exc:
            await self._abandon(exc)
        except BaseException:  # cancelled while starting
            self._mark_dead(BackendError(f"{self.name}: start interrupted"))
            await self.close()
            raise
        if reply.type == "error":
            kind = BackendUnavailable if reply["kind"] == "unavailable" else BackendError
            await self._abandon(kind(f"{self.name}: worker could not load: {reply['message']}"))
        if reply.type != "ready":
            await self._abandon(BackendError(f"{self.name}: worker answered load with {reply.type!r}"))
        self.info = dict(reply["info"])
        self._reader_task = asyncio.create_task(self._read_forever(), name=f"tts-{self.name}-reader")
        log.info("%s: worker pid %d ready (%s)", self.name, self._process.pid, self.model)

    async def _abandon(self, error: BackendError) -> NoReturn:
        """A start that failed: the worker is not to be trusted, so it is killed, not asked."""
        self._mark_dead(error)
        await self.close()
        raise error from None

    async def warm_up(self) -> None:
        for language in sorted(self._languages):
            async for _ in self.synthesize(SynthesisRequest(warmup_text(language), language)):
                pass

    async def ping(self, timeout_s: float = 5.0) -> float:
        """Round-trip time to the worker; ``BackendError`` when it does not answer in time."""
        self._check_alive()
        seq = next(self._ids)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[seq] = future
        started = time.monotonic()
        try:
            await self._send(Message("ping", {"seq": seq}))
            async with asyncio.timeout(timeout_s):
                await future
        except TimeoutError:
            raise BackendError(f"{self.name}: worker did not answer ping within {timeout_s:g} s") from None
        finally:
            self._pings.pop(seq, None)
        return time.monotonic() - started

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None and self._dead is None:
            # healthy: ask it to finish, then insist
            with contextlib.suppress(Exception):
                process.stdin.write(encode(Message("shutdown")))  # type: ignore[union-attr]
                process.stdin.close()  # type: ignore[union-attr]
            if not await _exited(process, self._worker.stop_timeout_s):
                log.warning("%s: worker pid %d ignored shutdown; terminating", self.name, process.pid)
                _signal_group(process, signal.SIGTERM)
                if not await _exited(process, self._worker.stop_timeout_s):
                    log.warning("%s: worker pid %d ignored SIGTERM; killing", self.name, process.pid)
        if process.returncode is None:
            # broken or stubborn: kill its whole process group (helpers it started hold our pipes)
            _signal_group(process, signal.SIGKILL)
            if not await _exited(process, self._worker.stop_timeout_s):
                log.error("%s: worker pid %d survives SIGKILL (stuck in the kernel?); abandoning it", self.name, process.pid)
        for task in (self._reader_task, self._stderr_task):
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._reader_task = self._stderr_task = None
        self._mark_dead(self._dead or BackendError(f"{self.name}: worker closed"))

    # -- synthesis --------------------------------------------------------------

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        if request.language not in self._languages:
            raise RequestError(f"{self.name} does not speak {request.language!r} ({', '.join(sorted(self._languages))})")
        async with self._turn:
            await self._wait_idle()
            self._check_alive()
            request_id = next(self._ids)
            queue: asyncio.Queue[object] = asyncio.Queue()
            self._busy_id, self._listener = request_id, (request_id, queue)
            self._idle.clear()
            finished = False
            try:
                await self._send(Message("synthesize", {"id": request_id, "request": request.as_json()}))
                while True:
                    try:
                        async with asyncio.timeout(self._worker.chunk_timeout_s):
                            item = await queue.get()
                    except TimeoutError:
                        finished = True
                        error = BackendError(f"{self.name}: no audio from the worker for {self._worker.chunk_timeout_s:g} s")
                        await self._kill(error)
                        raise error from None
                    if isinstance(item, AudioChunk):
                        yield item
                        continue
                    finished = True
                    if isinstance(item, BaseException):
                        raise item
                    return
            finally:
                self._listener = None
                if not finished and self._dead is None and self._busy_id == request_id:
                    with contextlib.suppress(BackendError):
                        await self._send(Message("cancel", {"id": request_id}))

    async def _wait_idle(self) -> None:
        """Wait until the worker has finished (or acknowledged the cancel of) its previous request."""
        if self._idle.is_set():
            return
        try:
            async with asyncio.timeout(self._worker.cancel_timeout_s):
                await self._idle.wait()
        except TimeoutError:
            error = BackendError(f"{self.name}: worker did not stop a cancelled request within {self._worker.cancel_timeout_s:g} s")
            await self._kill(error)
            raise error from None

    # -- plumbing -------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise self._dead
        if self._process is None:
            raise BackendError(f"{self.name}: worker is not running")

    async def _send(self, message: Message) -> None:
        self._check_alive()
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(encode(message))
            async with asyncio.timeout(self._worker.cancel_timeout_s):
                await self._process.stdin.drain()
        except (ConnectionError, TimeoutError) as exc:
            raise BackendError(f"{self.name}: cannot write to the worker ({type(exc).__name__}){self._tail_text()}") from None

    async def _read_startup(self) -> Message:
        assert self._process is not None and self._process.stdout is not None
        try:
            message = await read_message_async(self._process.stdout)
        except ProtocolError as exc:
            raise BackendError(f"{self.name}: worker sent a malformed frame: {exc}{self._tail_text()}") from None
        if message is None:
            raise await self._death_error()
        return message

    async def _read_forever(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        try:
            while True:
                message = await read_message_async(stdout)
                if message is None:
                    self._mark_dead(await self._death_error())
                    return
                self._dispatch(message)
        except ProtocolError as exc:
            await self._kill(BackendError(f"{self.name}: worker sent a malformed frame: {exc}"))

    def _dispatch(self, message: Message) -> None:
        if message.type not in WORKER_MESSAGES or message.type in ("hello", "ready"):
            raise ProtocolError(f"unexpected {message.type!r} message from the worker")
        if message.type == "pong":
            future = self._pings.get(message["seq"])
            if future is not None and not future.done():
                future.set_result(None)
            return
        request_id = message["id"]
        if request_id is None:  # a worker-level error
            raise ProtocolError(f"worker reported: {message['message']}")
        listener = self._listener
        queue = listener[1] if listener is not None and listener[0] == request_id else None
        if message.type == "audio":
            if queue is not None:
                queue.put_nowait(AudioChunk(audio_samples(message), message["sample_rate"], message["text"]))
            return
        if request_id == self._busy_id:  # done or error: the worker is free again
            self._busy_id = None
            self._idle.set()
        if queue is None:
            return
        if message.type == "done":
            queue.put_nowait(_DONE)
        else:
            text = f"{self.name}: {message['message']}"
            kind = message["kind"]
            error: Exception = (
                RequestError(text) if kind == "request"
                else BackendUnavailable(text) if kind == "unavailable"
                else BackendError(text)
            )
            queue.put_nowait(error)

    def _mark_dead(self, error: BackendError) -> None:
        if self._dead is None:
            self._dead = error
        if self._listener is not None:
            self._listener[1].put_nowait(self._dead)
        for future in self._pings.values():
            if not future.done():
                future.set_exception(self._dead)
        self._busy_id = None
        self._idle.set()

    async def _kill(self, error: BackendError) -> None:
        """Kill a misbehaving worker; every waiter gets ``error``."""
        process = self._process
        if process is not None and process.returncode is None:
            log.warning("%s: killing worker pid %d: %s", self.name, process.pid, error)
            _signal_group(process, signal.SIGKILL)
        self._mark_dead(BackendError(f"{error}{self._tail_text()}"))

    async def _death_error(self) -> BackendError:
        process = self._process
        code: int | None = None
        if process is not None:
            if await _exited(process, 2.0):
                code = process.returncode
            if self._stderr_task is not None:  # let the last stderr lines arrive
                with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                    async with asyncio.timeout(1.0):
                        await asyncio.shield(self._stderr_task)
        how = "closed its output" if code is None else f"exited with code {code}"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                how = f"was killed by {signal.Signals(-code).name}"
        pid = process.pid if process is not None else "?"
        return BackendError(f"{self.name}: worker pid {pid} {how}{self._tail_text()}")

    async def _pump_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        stderr = self._process.stderr
        pending = b""
        while True:
            data = await stderr.read(65536)
            if not data:
                if pending:
                    self._stderr_line(pending)
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._stderr_line(line)

    def _stderr_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            self._stderr_tail.append(line[:500])
            log.info("%s worker: %s", self.name, line)

    def _tail_text(self) -> str:
        if not self._stderr_tail:
            return ""
        return "; stderr tail: " + " | ".join(list(self._stderr_tail)[-8:])


def _signal_group(process: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the worker's process group (it leads one: ``start_new_session``).

    Only while the worker has not been reaped: after that its pid could name someone else.
    """
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


async def _exited(process: asyncio.subprocess.Process, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
    except TimeoutError:
        return False
    return True
