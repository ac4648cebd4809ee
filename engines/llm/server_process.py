"""A supervised child server process (llama.cpp server, vLLM) on a loopback port.

``ServerProcess`` spawns the command in its own process group on a free
127.0.0.1 port, keeps the last lines of its output (stdout and stderr
merged) for error messages, and polls a readiness probe until it answers.
After the first start, a supervisor task restarts a crashed server with
exponential backoff (and calls ``on_ready`` again, e.g. to reload adapters);
after ``max_restarts`` crashes in a row it gives up and requests get the
crash reason. ``stop`` terminates the whole process group (SIGTERM, then
SIGKILL after ``stop_timeout_s``), also when it is cancelled half-way.

No orphans: the child is started through a tiny launcher that asks Linux to
SIGTERM it when this process dies (``PR_SET_PDEATHSIG``) and then execs the
real command, so even a SIGKILLed daemon leaves no server behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from engines.backend import BackendError

log = logging.getLogger("secretary.engines.llm")

# Runs in the child before the real server: die with the parent, then exec.
_LAUNCHER = """\
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent already gone")
os.execvp(sys.argv[2], sys.argv[2:])
"""

_STABLE_S = 60.0  # a server that ran this long after a restart resets the crash count


@dataclass(frozen=True)
class ServerCommand:
    """What to run for a port: argv (argv[0] looked up on PATH) and the full environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str]


def describe_exit(code: int) -> str:
    """How a child ended, in words: ``exited with code 1``, ``died with SIGILL (illegal instruction)``."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"died with signal {-code}"
    words = signal.strsignal(-code)
    return f"died with {name} ({words.lower()})" if words else f"died with {name}"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(
        self,
        label: str,
        command: Callable[[int], ServerCommand],
        probe: Callable[[str], Awaitable[bool]],
        *,
        on_ready: Callable[[], Awaitable[None]] | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 5.0,
        max_restarts: int = 5,
        restart_backoff_initial_s: float = 0.5,
        restart_backoff_max_s: float = 30.0,
        tail_lines: int = 40,
        exit_hints: Mapping[int, str] | None = None,
    ) -> None:
        self.label = label
        self._exit_hints = dict(exit_hints or {})  # return code -> what it means and what to do
        self._command = command
        self._probe = probe
        self._on_ready = on_ready
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._max_restarts = max_restarts
        self._backoff_initial_s = restart_backoff_initial_s
        self._backoff_max_s = restart_backoff_max_s
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._lines = 0
        self.port = free_loopback_port()
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = False
        self._failure: BackendError | None = None
        self._stopping = False
        self._changed = asyncio.Condition()

    # -- state -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def ready(self) -> bool:
        return self._ready

    def output_tail(self, lines: int = 12) -> str:
        """The last lines the server printed (for error messages)."""
        return " | ".join(list(self._tail)[-lines:])

    def output_mark(self) -> int:
        """A mark for ``output_since``: how many lines the server has printed so far."""
        return self._lines

    def output_since(self, mark: int) -> list[str]:
        """The lines printed after ``mark`` (as far as the kept tail reaches back)."""
        count = min(self._lines - mark, len(self._tail))
        return list(self._tail)[len(self._tail) - count :] if count > 0 else []

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Spawn the server and wait until it is ready; BackendError (with its output) otherwise."""
        if self._supervisor is not None or self._stopping:
            raise RuntimeError(f"{self.label} was already started")
        await self._spawn_until_ready()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.label}-supervisor")

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until the server is up (it may be restarting); BackendError when it is not in time."""
        if self._ready:
            return
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(lambda: self._ready or self._failure is not None or self._stopping)
        except TimeoutError:
            raise BackendError(f"{self.label} is not ready (restarting) after {timeout_s:g} s") from None
        if self._failure is not None:
            raise self._failure
        if self._stopping:
            raise BackendError(f"{self.label} is stopped")

    async def stop(self) -> None:
        """Stop for good: no more restarts, the process group terminated. Safe to call twice."""
        self._stopping = True
        self._ready = False
        supervisor, self._supervisor = self._supervisor, None
        try:
            if supervisor is not None:
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
        finally:
            await self._terminate()
            await self._notify()

    # -- internals ---------------------------------------------------------

    def _explain(self, code: int) -> str:
        """The exit's hint (if one is known for this code) and the server's last output."""
        tail = self.output_tail() or "no output"
        hint = self._exit_hints.get(code)
        return f"{hint} (its last output: {tail})" if hint else tail

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _spawn_until_ready(self) -> None:
        command = self._command(self.port)
        argv = (sys.executable, "-c", _LAUNCHER, str(os.getpid()), *command.argv)
        self._tail.clear()
        log.info("%s: starting %s", self.label, " ".join(command.argv))
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(command.env),
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"{self.label}: cannot run {command.argv[0]!r}: {exc}") from None
        self._reader = asyncio.create_task(self._read_output(self._proc), name=f"{self.label}-output")
        try:
            await self._wait_until_ready(self._proc)
            if self._on_ready is not None:
                await self._on_ready()
        except BaseException:
            await self._terminate()
            raise
        self._ready = True
        self._failure = None
        await self._notify()

    async def _wait_until_ready(self, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        delay = 0.05
        while True:
            if proc.returncode is not None:
                await self._drain_reader()
                raise BackendError(f"{self.label} {describe_exit(proc.returncode)} while starting: "
                                   + self._explain(proc.returncode))
            if await self._probe(self.base_url):
                return
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"{self.label} did not become ready within {self._startup_timeout_s:g} s: "
                    f"{self.output_tail() or 'no output'}"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await proc.wait()
            delay = min(0.5, delay * 1.5)

    async def _supervise(self) -> None:
        crashes = 0
        while True:
            proc = self._proc
            assert proc is not None
            up_since = time.monotonic()
            code = await proc.wait()
            self._ready = False
            # What the server started (vLLM's engine core holds the GPU memory) goes with it.
            _signal_group(proc.pid, signal.SIGKILL)
            await self._drain_reader()
            if self._stopping:
                return
            if time.monotonic() - up_since >= _STABLE_S:
                crashes = 0
            reason = f"{self.label} {describe_exit(code)}: {self._explain(code)}"
            log.warning("%s", reason)
            while True:
                crashes += 1
                if crashes > self._max_restarts:
                    self._failure = BackendError(f"{reason} (gave up after {self._max_restarts} restarts)")
                    log.error("%s", self._failure)
                    await self._notify()
                    return
                delay = min(self._backoff_max_s, self._backoff_initial_s * 2 ** (crashes - 1))
                self._failure = None
                await self._notify()
                await asyncio.sleep(delay)
                self.restarts += 1
                try:
                    await self._spawn_until_ready()
                except Exception as exc:  # noqa: BLE001 - any failed restart is retried with backoff
                    reason = str(exc) or type(exc).__name__
                    log.warning("%s: restart %d failed: %s", self.label, crashes, reason)
                    continue
                log.info("%s: restarted (restart %d, pid %s)", self.label, self.restarts, self.pid)
                break

    async def _read_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        child_log = logging.getLogger(f"secretary.engines.llm.{self.label}")
        pending = b""
        while chunk := await proc.stdout.read(65536):
            pending += chunk
            *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._tail.append(line[:400])
                    self._lines += 1
                    child_log.debug("%s", line)
            pending = pending[-65536:]
        if pending.strip():
            self._tail.append(pending.decode("utf-8", "replace").strip()[:400])
            self._lines += 1

    async def _drain_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        try:
            async with asyncio.timeout(2.0):
                await asyncio.shield(reader)
        except TimeoutError:  # a grandchild still holds the pipe
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    async with asyncio.timeout(self._stop_timeout_s):
                        await proc.wait()
                except TimeoutError:
                    log.warning("%s: no exit %.0f s after SIGTERM; killing it", self.label, self._stop_timeout_s)
                    _signal_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
        finally:
            # Whatever happened (even cancellation), nothing of the group survives.
            _signal_group(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await self._drain_reader()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
