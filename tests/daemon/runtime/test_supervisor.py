"""Supervisor: restart with backoff, isolation of crashes, clean ordered stop."""

from __future__ import annotations

import asyncio
import time

import pytest

from daemon.runtime.service import Service, ServiceReport, ServiceState, ServiceStatus
from daemon.runtime.supervisor import RestartPolicy, Supervisor


class Crashy(Service):
    def __init__(self, name: str, crashes: int, up_s: float = 0.0) -> None:
        self.name = name
        self.crashes = crashes
        self.up_s = up_s
        self.starts: list[float] = []

    async def run(self, status: ServiceStatus) -> None:
        self.starts.append(time.monotonic())
        status.ready()
        if len(self.starts) <= self.crashes:
            await asyncio.sleep(self.up_s)
            raise RuntimeError(f"boom {len(self.starts)}")
        await asyncio.Event().wait()


class Steady(Service):
    def __init__(self, name: str, log: list[str], stop_delay_s: float = 0.0) -> None:
        self.name = name
        self.log = log
        self.stop_delay_s = stop_delay_s
        self.ticks = 0

    async def run(self, status: ServiceStatus) -> None:
        self.log.append(f"start {self.name}")
        status.ready()
        try:
            while True:
                await asyncio.sleep(0.01)
                self.ticks += 1
        finally:
            self.log.append(f"stop {self.name}")


class Stubborn(Service):
    name = "stubborn"

    async def run(self, status: ServiceStatus) -> None:
        status.ready()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)  # ignores the stop request for a while
            raise


def test_backoff_doubles_and_caps() -> None:
    policy = RestartPolicy(initial_s=0.5, max_s=4.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_crash_restarts_with_backoff_and_others_keep_running() -> None:
    log: list[str] = []
    reports: list[tuple[str, ServiceState, int]] = []
    sup = Supervisor(RestartPolicy(initial_s=0.05, max_s=0.2, stable_after_s=60),
                     on_report=lambda r: reports.append((r.name, r.state, r.restarts)))
    crashy = Crashy("crashy", crashes=4)
    steady = Steady("steady", log)
    sup.add(crashy)
    sup.add(steady)
    runner = asyncio.create_task(sup.run())
    deadline = time.monotonic() + 5
    while len(crashy.starts) < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(crashy.starts) == 5
    gaps = [b - a for a, b in zip(crashy.starts, crashy.starts[1:])]
    # 0.05, 0.1, 0.2, 0.2 (capped), with scheduling slack but never shorter
    for gap, expected in zip(gaps, [0.05, 0.1, 0.2, 0.2]):
        assert expected <= gap < expected + 0.5, gaps
    assert steady.ticks > 0 and log == ["start steady"]  # never restarted
    assert sup.reports()["crashy"].restarts == 4
    assert ("crashy", ServiceState.BACKOFF, 1) in reports
    assert sup.reports()["crashy"].state is ServiceState.RUNNING
    sup.stop()
    await asyncio.wait_for(runner, 5)


async def test_backoff_resets_after_stable_run() -> None:
    sup = Supervisor(RestartPolicy(initial_s=0.05, max_s=10, stable_after_s=0.1))
    crashy = Crashy("crashy", crashes=3, up_s=0.15)  # each run counts as stable
    sup.add(crashy)
    runner = asyncio.create_task(sup.run())
    deadline = time.monotonic() + 5
    while len(crashy.starts) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    gaps = [b - a for a, b in zip(crashy.starts, crashy.starts[1:])]
    # up 0.15 s then 0.05 s backoff each time: no doubling
    assert all(gap < 0.15 + 0.05 + 0.3 for gap in gaps), gaps
    sup.stop()
    await asyncio.wait_for(runner, 5)


async def test_stop_in_reverse_order_and_reports_stopped() -> None:
    log: list[str] = []
    sup = Supervisor(RestartPolicy())
    for name in ("bus", "modem", "calls"):
        sup.add(Steady(name, log))
    runner = asyncio.create_task(sup.run())
    assert await sup.wait_started(2)
    sup.stop()
    await asyncio.wait_for(runner, 5)
    assert log == ["start bus", "start modem", "start calls", "stop calls", "stop modem", "stop bus"]
    assert all(r.state is ServiceState.STOPPED for r in sup.reports().values())


async def test_stubborn_service_does_not_hang_stop(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    sup = Supervisor(RestartPolicy(), stop_timeout_s=0.2)
    sup.add(Steady("bus", log))
    sup.add(Stubborn())
    runner = asyncio.create_task(sup.run())
    assert await sup.wait_started(2)
    started = time.monotonic()
    sup.stop()
    # The supervisor gives up on the stubborn one after its timeout and stops the rest.
    while "stop bus" not in log and time.monotonic() - started < 3:
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 1.0, "the stubborn service held up the others"
    await asyncio.wait_for(runner, 5)
    # ...and says where it was stuck, so the hang can be found from the log alone
    stuck = [r for r in caplog.records if r.getMessage() == "service did not stop in time"]
    assert [r.service for r in stuck] == ["stubborn"]  # type: ignore[attr-defined]
    innermost, service, runner = stuck[0].waiting_in.split(" <- ")  # type: ignore[attr-defined]
    assert innermost.endswith(" sleep") and service == "test_supervisor.py:56 run" and runner.endswith(" _runner")


async def test_replace_restarts_one_service() -> None:
    log: list[str] = []
    sup = Supervisor(RestartPolicy())
    sup.add(Steady("bus", log))
    sup.add(Steady("modem", log))
    runner = asyncio.create_task(sup.run())
    assert await sup.wait_started(2)
    await sup.replace(Steady("modem", log))
    await asyncio.sleep(0.05)
    assert log == ["start bus", "start modem", "stop modem", "start modem"]
    sup.stop()
    await asyncio.wait_for(runner, 5)


async def test_broken_observer_does_not_break_supervision() -> None:
    def observer(report: ServiceReport) -> None:
        raise ValueError("observer bug")

    sup = Supervisor(RestartPolicy(initial_s=0.01), on_report=observer)
    crashy = Crashy("crashy", crashes=1)
    sup.add(crashy)
    runner = asyncio.create_task(sup.run())
    deadline = time.monotonic() + 3
    while len(crashy.starts) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(crashy.starts) == 2
    sup.stop()
    await asyncio.wait_for(runner, 5)


def test_duplicate_names_refused() -> None:
    sup = Supervisor(RestartPolicy())
    sup.add(Steady("bus", []))
    with pytest.raises(ValueError):
        sup.add(Steady("bus", []))


async def test_services_can_be_added_and_removed_while_running() -> None:
    log: list[str] = []
    supervisor = Supervisor(RestartPolicy(0.01, 0.1, 60), stop_timeout_s=1)
    supervisor.add(Steady("a", log))
    running = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.05)
    supervisor.add(Steady("b", log))  # a reload that configures a new channel
    await asyncio.sleep(0.05)
    await supervisor.remove("a")  # a reload that drops one
    assert supervisor.names == ["b"] and "stop a" in log and "start b" in log
    with pytest.raises(ValueError):
        supervisor.add(Steady("b", log))
    supervisor.stop()
    await asyncio.wait_for(running, 2)
    assert log[-1] == "stop b"


class Polite(Service):
    """Winds down in ``wind_down_s`` (a call's goodbye) and notes when it was stopped."""

    def __init__(self, name: str, log: list[str], wind_down_s: float) -> None:
        self.name = name
        self.log = log
        self.wind_down_s = wind_down_s

    async def run(self, status: ServiceStatus) -> None:
        status.ready()
        try:
            await asyncio.Event().wait()
        finally:
            self.log.append(f"stop {self.name}")

    async def wind_down(self, budget_s: float) -> None:
        self.log.append(f"wind down {self.name} within {budget_s}")
        await asyncio.sleep(self.wind_down_s)
        self.log.append(f"wound down {self.name}")


async def test_wind_down_runs_while_every_service_still_runs_and_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    sup = Supervisor(RestartPolicy(), stop_timeout_s=0.5)
    sup.add(Steady("bus", log))
    sup.add(Polite("calls", log, wind_down_s=0.2))
    sup.add(Polite("slow", log, wind_down_s=30))
    runner = asyncio.create_task(sup.run())
    assert await sup.wait_started(2)
    started = time.monotonic()
    assert await sup.wind_down(1.0) is False  # "slow" overran its budget and was cancelled
    assert 0.9 < time.monotonic() - started < 2.0
    assert "wound down calls" in log and "wound down slow" not in log
    assert not any(line.startswith("stop") for line in log)  # nothing was stopped by the wind-down
    assert [r.service for r in caplog.records if r.getMessage() == "service did not wind down in time"] == ["slow"]  # type: ignore[attr-defined]
    sup.stop()
    await asyncio.wait_for(runner, 5)
    assert log[-3:] == ["stop slow", "stop calls", "stop bus"]
    assert await Supervisor(RestartPolicy()).wind_down(1.0) is True  # nothing running: nothing to wait for


class Busy(Steady):
    """A service with live work (a call) that a drain lets finish."""

    def __init__(self, name: str, log: list[str], work_s: float, budget_s: float = 5.0) -> None:
        super().__init__(name, log)
        self.work_s = work_s
        self.budget_s = budget_s
        self.draining = False

    def busy(self) -> bool:
        return True

    async def drain(self) -> None:
        self.draining = True
        self.log.append(f"drain {self.name}")
        await asyncio.sleep(self.work_s)
        self.log.append(f"drained {self.name}")

    def drain_budget_s(self) -> float:
        return self.budget_s


async def test_replace_with_drain_lets_live_work_finish_before_the_new_one_starts() -> None:
    log: list[str] = []
    sup = Supervisor(RestartPolicy())
    old = Busy("calls", log, work_s=0.3)
    sup.add(old)
    runner = asyncio.create_task(sup.run())
    assert await sup.wait_started(2)
    began = time.monotonic()
    await sup.replace(Steady("calls", log), drain=True)
    took = time.monotonic() - began
    await asyncio.sleep(0.05)
    assert log == ["start calls", "drain calls", "drained calls", "stop calls", "start calls"]
    assert took >= 0.3
    sup.stop()
    await asyncio.wait_for(runner, 5)


async def test_a_drain_that_overruns_its_budget_is_cut_and_the_replace_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    sup = Supervisor(RestartPolicy())
    sup.add(Busy("calls", log, work_s=10.0, budget_s=0.2))
    runner = asyncio.create_task(sup.run())
    assert await sup.wait_started(2)
    began = time.monotonic()
    await sup.replace(Steady("calls", log), drain=True)
    assert time.monotonic() - began < 1.5
    await asyncio.sleep(0.05)
    assert log == ["start calls", "drain calls", "stop calls", "start calls"]
    assert any("did not drain in time" in r.message for r in caplog.records)
    sup.stop()
    await asyncio.wait_for(runner, 5)
