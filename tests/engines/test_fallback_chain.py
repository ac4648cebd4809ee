"""FallbackChain: load order, failover at load / mid-stream / first-item deadline, recovery, close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engines.backend import BackendError, EngineBackend
from engines.engine_status import EngineState, EngineStatus
from engines.fallback_chain import BackendSlot, ChainExhausted, FallbackChain, Progress, RequestError


class Counting(EngineBackend):
    """A backend whose behaviour each test scripts; it records its lifecycle."""

    def __init__(self, name: str, *, fail_load: int = 0, fail_after: int | None = None, delay_first: float = 0.0) -> None:
        self.name = name
        self.fail_load = fail_load
        self.fail_after = fail_after
        self.delay_first = delay_first
        self.loaded = False
        self.closed = 0
        self.warmed = False
        self.open_streams = 0

    @property
    def model(self) -> str:
        return f"model-{self.name}"

    async def load(self) -> None:
        if self.fail_load > 0:
            self.fail_load -= 1
            raise BackendError(f"{self.name} cannot load")
        self.loaded = True

    async def warm_up(self) -> None:
        self.warmed = True

    async def close(self) -> None:
        self.closed += 1

    async def count(self, start: int, stop: int) -> AsyncIterator[int]:
        self.open_streams += 1
        try:
            if self.delay_first:
                await asyncio.sleep(self.delay_first)
            for n, value in enumerate(range(start, stop)):
                if self.fail_after is not None and n >= self.fail_after:
                    raise BackendError(f"{self.name} died mid-stream")
                await asyncio.sleep(0)
                yield value
        finally:
            self.open_streams -= 1


def chain_of(*backends: Counting, statuses: list[EngineStatus] | None = None, retry: float = 0.05) -> FallbackChain[Counting]:
    by_name = {b.name: b for b in backends}
    slots = [BackendSlot(b.name, lambda name=b.name: by_name[name]) for b in backends]
    return FallbackChain("test", slots, statuses.append if statuses is not None else None, retry_initial_s=retry, retry_max_s=retry * 4)


def resume_counting(stop: int):  # type: ignore[no-untyped-def]
    def op(backend: Counting, progress: Progress[int]) -> AsyncIterator[int]:
        start = progress.delivered[-1] + 1 if progress.delivered else 0
        return backend.count(start, stop)

    return op


async def test_start_loads_every_backend_and_reports_ready() -> None:
    statuses: list[EngineStatus] = []
    a, b = Counting("a"), Counting("b")
    chain = chain_of(a, b, statuses=statuses)
    status = await chain.start()
    assert status.state is EngineState.READY and status.backend == "a" and status.model == "model-a"
    assert a.warmed and b.warmed and status.load_s is not None
    assert [s.state for s in statuses][:2] == [EngineState.LOADING, EngineState.LOADING]
    await chain.close()
    assert a.closed == 1 and b.closed == 1 and chain.status.state is EngineState.STOPPED


async def test_load_failure_serves_from_fallback_and_says_so() -> None:
    a, b = Counting("a", fail_load=99), Counting("b")
    chain = chain_of(a, b)
    status = await chain.start()
    assert status.state is EngineState.DEGRADED and status.backend == "b"
    assert "a: a cannot load" in status.failures
    assert [x async for x in chain.stream(resume_counting(3))] == [0, 1, 2]
    await chain.close()


async def test_nothing_loads_is_failed_with_reasons() -> None:
    chain = chain_of(Counting("a", fail_load=99), Counting("b", fail_load=99))
    status = await chain.start()
    assert status.state is EngineState.FAILED
    assert "a cannot load" in status.detail and "b cannot load" in status.detail
    with pytest.raises(ChainExhausted):
        [x async for x in chain.stream(resume_counting(3))]


async def test_mid_stream_failure_resumes_on_next_backend() -> None:
    a, b = Counting("a", fail_after=2), Counting("b")
    statuses: list[EngineStatus] = []
    chain = chain_of(a, b, statuses=statuses)
    await chain.start()
    assert [x async for x in chain.stream(resume_counting(6))] == [0, 1, 2, 3, 4, 5]
    assert a.closed == 1, "the failed backend is closed"
    assert chain.status.state is EngineState.DEGRADED and chain.status.backend == "b"
    assert a.open_streams == 0 and b.open_streams == 0


async def test_request_error_does_not_fail_over() -> None:
    a, b = Counting("a"), Counting("b")
    chain = chain_of(a, b)
    await chain.start()

    async def bad(backend: Counting) -> int:
        raise RequestError("text is empty")

    with pytest.raises(RequestError):
        await chain.call(bad)
    assert chain.status.state is EngineState.READY and a.closed == 0


async def test_first_item_deadline_skips_slow_backend_for_this_request_only() -> None:
    a, b = Counting("a", delay_first=1.0), Counting("b")
    chain = chain_of(a, b)
    await chain.start()
    got = [x async for x in chain.stream(resume_counting(3), first_item_timeout_s=0.05)]
    assert got == [0, 1, 2]
    assert chain.status.backend == "a" and a.closed == 0, "a slow backend is not thrown away"
    assert a.open_streams == 0


async def test_closing_the_consumer_closes_the_backend_stream() -> None:
    a = Counting("a")
    chain = chain_of(a)
    await chain.start()
    stream = chain.stream(resume_counting(1000))
    assert await anext(stream) == 0
    assert a.open_streams == 1
    await stream.aclose()
    assert a.open_streams == 0


async def test_failed_backend_recovers_and_takes_over_again() -> None:
    a, b = Counting("a", fail_load=1), Counting("b")
    chain = chain_of(a, b, retry=0.05)
    await chain.start()
    assert chain.status.backend == "b"
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(chain.recover_forever())
        for _ in range(100):
            if chain.status.backend == "a":
                break
            await asyncio.sleep(0.02)
        task.cancel()
    assert chain.status.state is EngineState.READY and chain.status.backend == "a"
    assert chain.status.failures == ()


async def test_call_fails_over() -> None:
    a, b = Counting("a"), Counting("b")
    chain = chain_of(a, b)
    await chain.start()

    async def who(backend: Counting) -> str:
        if backend.name == "a":
            raise BackendError("boom")
        return backend.name

    assert await chain.call(who) == "b"
    assert "a: boom" in chain.status.failures


async def test_eligible_limits_a_request_without_failing_anyone() -> None:
    a, b = Counting("a"), Counting("b")
    chain = chain_of(a, b)
    await chain.start()
    got = [x async for x in chain.stream(resume_counting(2), eligible=lambda backend: backend.name == "b")]
    assert got == [0, 1] and chain.status.state is EngineState.READY and chain.status.failures == ()
    with pytest.raises(RequestError, match="no healthy backend can serve"):
        [x async for x in chain.stream(resume_counting(2), eligible=lambda backend: False)]


async def test_transient_error_moves_on_without_closing_the_backend() -> None:
    from engines.fallback_chain import TransientBackendError

    a, b = Counting("a"), Counting("b")
    chain = chain_of(a, b)
    await chain.start()

    async def busy(backend: Counting) -> str:
        if backend.name == "a":
            raise TransientBackendError("HTTP 429")
        return backend.name

    assert await chain.call(busy) == "b"
    assert a.closed == 0 and chain.status.state is EngineState.READY and chain.status.failures == ()
