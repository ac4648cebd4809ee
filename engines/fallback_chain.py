"""An ordered chain of backends for one engine, with failover and recovery.

The chain loads every backend it names at start (so a fallback is warm when
it is needed), serves from the first healthy one, and when a backend fails
(at load, or in the middle of a stream, or by not producing its first item
before a deadline) it is closed, marked failed, and the next healthy backend
takes over the same request. Failed backends are retried in the background
with backoff; when a preferred one loads again it takes over again.

Streams resume through the ``Progress`` they are given: it holds what the
failed backend already delivered, so each engine decides what resuming means
(TTS skips audio the caller already heard, LLM continues the reply, STT
re-feeds the utterance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from engines.backend import BackendError, EngineBackend
from engines.engine_status import EngineState, EngineStatus

B = TypeVar("B", bound=EngineBackend)
T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("secretary.engines")


class ChainExhausted(BackendError):
    """No backend of the chain could serve the request."""


class FirstItemTimeout(BackendError):
    """A backend produced nothing before the first-item deadline (skipped for this request only)."""


class TransientBackendError(BackendError):
    """The backend is healthy but cannot serve now (rate limit, overload, one slow answer).

    The request moves on to the next backend; the backend is not closed or
    marked failed (closing a GPU server for one HTTP 429 would cost minutes).
    """


class RequestError(Exception):
    """The request itself is wrong (bad input): no failover, the caller gets the error."""


class NoEligibleBackend(ChainExhausted, RequestError):
    """None of the healthy backends may serve this request (its language, its persona's chain).

    Both an exhausted chain for this request and a request that cannot be
    served as asked: callers catching either see it.
    """


@dataclass(frozen=True)
class BackendSlot(Generic[B]):
    """One configured backend: its label in status/logs and how to build it."""

    label: str
    build: Callable[[], B]


@dataclass
class Progress(Generic[T]):
    """What the request has delivered so far, across every backend that served it."""

    delivered: list[T] = field(default_factory=list)
    failovers: int = 0
    backends: list[str] = field(default_factory=list)


@dataclass
class _Member(Generic[B]):
    slot: BackendSlot[B]
    backend: B | None = None
    error: str = ""
    failures: int = 0
    next_retry: float = 0.0
    load_s: float | None = None
    warmup_s: float | None = None


class FallbackChain(Generic[B]):
    def __init__(
        self,
        engine: str,
        slots: Sequence[BackendSlot[B]],
        on_status: Callable[[EngineStatus], None] | None = None,
        *,
        retry_initial_s: float = 10.0,
        retry_max_s: float = 300.0,
        load_timeout_s: float = 300.0,
    ) -> None:
        if not slots:
            raise ValueError(f"engine {engine!r}: the backend chain is empty")
        self.engine = engine
        self._members = [_Member(slot) for slot in slots]
        self._on_status = on_status
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._load_timeout_s = load_timeout_s
        self._status = EngineStatus(engine)
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()

    # -- state -------------------------------------------------------------

    @property
    def status(self) -> EngineStatus:
        return self._status

    @property
    def active(self) -> B:
        for member in self._members:
            if member.backend is not None:
                return member.backend
        raise ChainExhausted(f"{self.engine}: no backend is loaded ({self._failure_text()})")

    def _failure_text(self) -> str:
        failed = [f"{m.slot.label}: {m.error}" for m in self._members if m.error]
        return "; ".join(failed) or "nothing loaded yet"

    def _publish(self, state: EngineState | None = None, detail: str | None = None) -> None:
        active = next((m for m in self._members if m.backend is not None), None)
        failures = tuple(f"{m.slot.label}: {m.error}" for m in self._members if m.error)
        if state is None:
            if active is None:
                state = EngineState.FAILED
            elif active is self._members[0]:
                state = EngineState.READY
            else:
                state = EngineState.DEGRADED
        if detail is None:
            if active is None:
                detail = f"no backend could load ({self._failure_text()})"
            elif active is self._members[0]:
                detail = ""
            else:
                detail = f"serving on fallback {active.slot.label}"
        backend = active.backend if active is not None else None
        self._status = self._status.evolve(
            state=state,
            backend=active.slot.label if active else "",
            device=backend.device if backend else "",
            model=backend.model if backend else "",
            detail=detail,
            load_s=active.load_s if active else None,
            warmup_s=active.warmup_s if active else None,
            failures=failures,
        )
        if self._on_status is not None:
            self._on_status(self._status)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> EngineStatus:
        """Load and warm up every backend of the chain, in order."""
        for index, member in enumerate(self._members):
            self._publish(EngineState.LOADING, f"loading {member.slot.label} ({index + 1}/{len(self._members)})")
            await self._load(member)
        self._publish()
        return self._status

    async def _load(self, member: _Member[B]) -> bool:
        backend: B | None = None
        try:
            backend = member.slot.build()
            started = time.monotonic()
            async with asyncio.timeout(self._load_timeout_s):
                await backend.load()
                loaded = time.monotonic()
                await backend.warm_up()
            member.load_s = loaded - started
            member.warmup_s = time.monotonic() - loaded
        except asyncio.CancelledError:
            if backend is not None:
                await _close_quietly(backend)
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure moves the chain on
            if backend is not None:
                await _close_quietly(backend)
            self._mark_failed(member, exc, "failed to load")
            return False
        member.backend = backend
        member.error = ""
        log.info(
            "%s: backend %s ready on %s (model %s, load %.2f s, warm-up %.2f s)",
            self.engine, member.slot.label, backend.device, backend.model or "-", member.load_s, member.warmup_s,
        )
        return True

    def _mark_failed(self, member: _Member[B], exc: BaseException, what: str) -> None:
        member.backend = None
        member.failures += 1
        member.error = _describe(exc)
        delay = min(self._retry_max_s, self._retry_initial_s * 2 ** (member.failures - 1))
        member.next_retry = time.monotonic() + delay
        log.warning("%s: backend %s %s: %s (retry in %.0f s)", self.engine, member.slot.label, what, member.error, delay)

    async def _fail(self, backend: B, exc: BaseException) -> None:
        member = next((m for m in self._members if m.backend is backend), None)
        if member is not None:
            self._mark_failed(member, exc, "failed")
        await _close_quietly(backend)
        self._publish()
        self._changed.set()

    async def recover_forever(self) -> None:
        """Retry failed backends with backoff until cancelled (run this in the owner's TaskGroup)."""
        while True:
            pending = [m for m in self._members if m.backend is None]
            if not pending:
                self._changed.clear()
                await self._changed.wait()
                continue
            wake = min(m.next_retry for m in pending)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake - time.monotonic())):
                    self._changed.clear()
                    await self._changed.wait()
                    continue
            for member in pending:
                if member.backend is None and member.next_retry <= time.monotonic():
                    await self._load(member)
                    self._publish()

    async def close(self) -> None:
        for member in self._members:
            backend, member.backend = member.backend, None
            if backend is not None:
                await _close_quietly(backend)
        self._publish(EngineState.STOPPED, "")

    # -- serving -----------------------------------------------------------

    def _exhausted(self, passed_over: list[str]) -> ChainExhausted:
        reasons = [*passed_over, *(f"{m.slot.label}: {m.error}" for m in self._members if m.error)]
        return ChainExhausted(f"{self.engine}: no backend could serve ({'; '.join(reasons) or 'nothing loaded'})")

    def label_of(self, backend: B) -> str:
        """The config label of a loaded backend (its kind name if it is not one of ours)."""
        return next((m.slot.label for m in self._members if m.backend is backend), backend.name)

    def _candidate(self, skipped: list[B], passed_over: list[str], eligible: Callable[[B], bool] | None) -> B:
        """The first healthy backend this request has not passed over and may use."""
        healthy = [m.backend for m in self._members if m.backend is not None and not any(m.backend is s for s in skipped)]
        if not healthy:
            raise self._exhausted(passed_over)
        if eligible is not None:
            healthy = [b for b in healthy if eligible(b)]
            if not healthy:
                raise NoEligibleBackend(f"{self.engine}: no healthy backend can serve this request")
        return healthy[0]

    def first_eligible(self, eligible: Callable[[B], bool] | None = None) -> B | None:
        """The backend a request would be served by now (None: no healthy backend may serve it)."""
        try:
            return self._candidate([], [], eligible)
        except ChainExhausted:
            return None

    async def call(self, op: Callable[[B], Awaitable[R]]) -> R:
        """Run one request on the first healthy backend, failing over on error."""
        skipped: list[B] = []
        passed_over: list[str] = []
        while True:
            backend = self._candidate(skipped, passed_over, None)
            try:
                return await op(backend)
            except (asyncio.CancelledError, RequestError):
                raise
            except TransientBackendError as exc:
                log.warning("%s: backend %s: %s; trying the next one", self.engine, backend.name, exc)
                skipped.append(backend)
                passed_over.append(f"{backend.name}: {_describe(exc)}")
                continue
            except Exception as exc:  # noqa: BLE001
                await self._fail(backend, exc)

    async def stream(
        self,
        op: Callable[[B, Progress[T]], AsyncIterator[T]],
        *,
        first_item_timeout_s: float | None = None,
        eligible: Callable[[B], bool] | None = None,
    ) -> AsyncIterator[T]:
        """Yield one request's items; on failure the next backend resumes from ``Progress``.

        ``first_item_timeout_s`` abandons a backend that has not produced its
        first item in time (the LLM's time-to-first-token deadline).
        ``eligible`` limits this request to the backends that can serve it
        (e.g. TTS backends that speak the request's language); when none of
        the healthy backends is eligible the request fails with NoEligibleBackend.
        Closing this generator closes the backend's stream (cancel frees it).
        """
        progress: Progress[T] = Progress()
        skipped: list[B] = []
        passed_over: list[str] = []
        while True:
            backend = self._candidate(skipped, passed_over, eligible)
            progress.backends.append(backend.name)
            try:
                async with contextlib.aclosing(op(backend, progress)) as items:
                    iterator = items.__aiter__()
                    deadline = first_item_timeout_s  # only the first item has one
                    while True:
                        try:
                            async with asyncio.timeout(deadline):
                                item = await anext(iterator)
                        except StopAsyncIteration:
                            return
                        except TimeoutError:
                            if deadline is None:
                                raise
                            raise FirstItemTimeout(f"no output within {deadline:g} s") from None
                        deadline = None
                        progress.delivered.append(item)
                        yield item
            except (asyncio.CancelledError, GeneratorExit, RequestError):
                raise
            except (FirstItemTimeout, TransientBackendError) as exc:
                log.warning("%s: backend %s: %s; trying the next one", self.engine, backend.name, exc)
                progress.failovers += 1
                skipped.append(backend)
                passed_over.append(f"{backend.name}: {_describe(exc)}")
            except Exception as exc:  # noqa: BLE001 - fail over to the next backend
                progress.failovers += 1
                await self._fail(backend, exc)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


async def _close_quietly(backend: EngineBackend) -> None:
    try:
        async with asyncio.timeout(10):
            await backend.close()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        log.warning("closing backend %s failed: %s", backend.name, exc)
