"""EngineService: engines load one at a time through the shared gate; engine state becomes service state and bus state."""

from __future__ import annotations

import asyncio
import json

from channels.bus_contract.topics import Topics
from daemon.bus.connection import Bus
from daemon.engine_host.engine_service import EngineService, StatusSink
from daemon.runtime.service import ServiceState
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from engines.engine_status import EngineState, EngineStatus


class Loading:
    """An engine whose load takes a moment and ends in the state a test picks."""

    loading_now = 0
    most_at_once = 0

    def __init__(self, name: str, on_status: StatusSink, ends: EngineState) -> None:
        self._status = EngineStatus(name)
        self._on_status = on_status
        self._ends = ends
        self.closed = False

    @property
    def status(self) -> EngineStatus:
        return self._status

    def _set(self, state: EngineState, detail: str = "") -> None:
        self._status = self._status.evolve(state=state, backend="b", device="cpu", detail=detail)
        self._on_status(self._status)

    async def start(self) -> EngineStatus:
        Loading.loading_now += 1
        Loading.most_at_once = max(Loading.most_at_once, Loading.loading_now)
        try:
            self._set(EngineState.LOADING)
            await asyncio.sleep(0.05)
            self._set(self._ends, "" if self._ends is EngineState.READY else "serving on fallback b")
        finally:
            Loading.loading_now -= 1
        return self._status

    async def recover_forever(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True


async def test_engines_share_a_load_gate_and_report_their_state() -> None:
    bus = Bus(Topics("secretary", "box"))
    gate = asyncio.Semaphore(1)
    built: dict[str, Loading] = {}

    def service(name: str, ends: EngineState) -> EngineService[Loading]:
        def build(on_status: StatusSink) -> Loading:
            built[name] = Loading(name, on_status, ends)
            return built[name]

        return EngineService(name, bus, build, config=name, load_gate=gate)

    services = [service("stt", EngineState.READY), service("llm", EngineState.DEGRADED), service("tts", EngineState.READY)]
    supervisor = Supervisor(RestartPolicy(0.05, 0.5, 60.0), stop_timeout_s=2.0)
    for each in services:
        supervisor.add(each)
    Loading.most_at_once = 0
    running = asyncio.create_task(supervisor.run())
    try:
        statuses = [await asyncio.wait_for(each.wait_loaded(), 5) for each in services]
        assert [s.state for s in statuses] == [EngineState.READY, EngineState.DEGRADED, EngineState.READY]
        assert Loading.most_at_once == 1, "engines sharing the gate load one at a time"
        reports = supervisor.reports()
        assert reports["stt"].state is ServiceState.RUNNING and reports["stt"].detail == "b on cpu"
        assert reports["llm"].state is ServiceState.DEGRADED and reports["llm"].detail == "serving on fallback b"
        retained = bus.outbox.current("secretary/box/engines/llm/state")
        assert retained is not None and json.loads(retained.payload)["state"] == "degraded"
    finally:
        supervisor.stop()
        await asyncio.wait_for(running, 5)
    assert all(engine.closed for engine in built.values())
    assert all(each.engine is None for each in services)


class Reloads:
    """Engine services of one name, each a reload's new instance, and every engine they built (in order)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bus = Bus(Topics("secretary", "box"))
        self.built: list[Loading] = []

    def service(self, config: str) -> EngineService[Loading]:
        def build(on_status: StatusSink) -> Loading:
            self.built.append(Loading(self.name, on_status, EngineState.READY))
            return self.built[-1]

        return EngineService(self.name, self.bus, build, config=config)


async def test_a_reload_leaves_a_leased_engine_open_for_its_call_and_the_last_call_closes_it() -> None:
    """A call holds the STT it started with; the reload's new STT loads beside it; the call's end closes the old."""
    reloads = Reloads("stt")
    bus, built, service = reloads.bus, reloads.built, reloads.service
    supervisor = Supervisor(RestartPolicy(0.05, 0.5, 60.0), stop_timeout_s=2.0)
    first = service("base")
    supervisor.add(first)
    running = asyncio.create_task(supervisor.run())
    try:
        await asyncio.wait_for(first.wait_loaded(), 5)
        async with first.lease() as held:  # a live call
            assert held is built[0]
            second = service("small")
            await supervisor.replace(second)  # the reload, mid-call
            assert first.engine is None and not built[0].closed, "the call's engine stays open under it"
            async with second.lease() as nothing_yet:
                assert nothing_yet is None or nothing_yet is built[1]
            await asyncio.wait_for(second.wait_loaded(), 5)
            assert second.engine is built[1] and held is built[0]
            # the retired engine no longer speaks for engines/stt/state: the new one does
            built[0]._set(EngineState.FAILED, "the old one broke")
            retained = bus.outbox.current("secretary/box/engines/stt/state")
            assert retained is not None and json.loads(retained.payload)["state"] == "ready"
            assert supervisor.reports()["stt"].state is ServiceState.RUNNING
        assert built[0].closed, "the last call to let go closed the replaced engine"
        assert not built[1].closed
        async with first.lease() as after:  # the old service hands out nothing any more
            assert after is None
    finally:
        supervisor.stop()
        await asyncio.wait_for(running, 5)
    assert built[1].closed


async def test_an_engine_nobody_holds_closes_when_its_service_is_replaced() -> None:
    reloads = Reloads("tts")
    built, service = reloads.built, reloads.service
    supervisor = Supervisor(RestartPolicy(0.05, 0.5, 60.0), stop_timeout_s=2.0)
    first = service("a")
    supervisor.add(first)
    running = asyncio.create_task(supervisor.run())
    try:
        await asyncio.wait_for(first.wait_loaded(), 5)
        await supervisor.replace(service("b"))
        assert built[0].closed
    finally:
        supervisor.stop()
        await asyncio.wait_for(running, 5)
