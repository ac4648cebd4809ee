"""Runs services, restarts the ones that crash, stops them all cleanly.

Every service runs in its own runner task owned by the supervisor's
TaskGroup. A crash is logged and followed by a restart after an exponential
backoff (reset once the service has stayed up ``stable_after_s``); one
service's crash never reaches the others. ``wind_down`` lets the running
services end their live work together (a call's goodbye) within a budget,
before ``stop`` cancels services in the reverse order they were added, each
within its stop timeout. ``replace`` (a reload) first drains the running
instance when asked: a live call ends on the old service, then the new one
starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from daemon.runtime.service import Service, ServiceReport, ServiceState, ServiceStatus

log = logging.getLogger("secretary.supervisor")


@dataclass(frozen=True)
class RestartPolicy:
    initial_s: float = 0.5
    max_s: float = 30.0
    stable_after_s: float = 60.0

    def delay(self, failures: int) -> float:
        """Delay before restart number ``failures`` (1-based)."""
        return min(self.initial_s * (2 ** max(failures - 1, 0)), self.max_s)


def awaiting(task: asyncio.Task[object]) -> str:
    """Where a task waits: its chain of awaits, innermost first (``file:line function``)."""
    where: list[str] = []
    awaited: object = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " <- ".join(reversed(where))


class _Slot:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.report = ServiceReport(service.name)
        self.task: asyncio.Task[None] | None = None
        self.failures = 0


class Supervisor:
    def __init__(
        self,
        policy: RestartPolicy,
        on_report: Callable[[ServiceReport], None] | None = None,
        stop_timeout_s: float = 4.0,
    ) -> None:
        self.policy = policy
        self.stop_timeout_s = stop_timeout_s
        self._on_report = on_report or (lambda report: None)
        self._slots: dict[str, _Slot] = {}
        self._group: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()

    # -- public API -----------------------------------------------------------------
    def add(self, service: Service) -> None:
        if service.name in self._slots:
            raise ValueError(f"service {service.name!r} already added")
        self._slots[service.name] = _Slot(service)
        if self._group is not None:
            self._launch(self._slots[service.name])

    def reports(self) -> dict[str, ServiceReport]:
        return {name: slot.report for name, slot in self._slots.items()}

    def service(self, name: str) -> Service:
        return self._slots[name].service

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    async def run(self) -> None:
        """Start every service and supervise them until ``stop()``."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for slot in self._slots.values():
                self._launch(slot)
            await self._stopped.wait()
            await self._stop_all()
        self._group = None

    def stop(self) -> None:
        self._stopped.set()

    async def wind_down(self, budget_s: float) -> bool:
        """Before a stop: every running service ends its live work (``Service.wind_down``), together.

        Returns False if some did not finish within ``budget_s`` (they are cancelled; the stop goes on).
        """
        running = [slot for slot in self._slots.values() if slot.task is not None and not slot.task.done()]
        work = {asyncio.ensure_future(self._wind_down(slot, budget_s)): slot.service.name for slot in running}
        if not work:
            return True
        _, late = await asyncio.wait(work, timeout=budget_s)
        for task in late:
            log.error("service did not wind down in time", extra={"service": work[task], "budget_s": budget_s,
                                                                  "waiting_in": awaiting(task)})
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=self.stop_timeout_s)
        return not late

    @staticmethod
    async def _wind_down(slot: _Slot, budget_s: float) -> None:
        try:
            await slot.service.wind_down(budget_s)
        except Exception:  # noqa: BLE001 - a failed wind-down must not keep the daemon from stopping
            log.exception("service failed while winding down", extra={"service": slot.service.name})

    async def replace(self, service: Service, *, drain: bool = False) -> None:
        """Stop the running service of the same name and start this one instead.

        With ``drain``, the running one first takes no new work and finishes its live work
        (``Service.drain``, at most its ``drain_budget_s``); the new one starts once it has stopped.
        """
        slot = self._slots[service.name]
        if drain and slot.task is not None and not slot.task.done():
            await self._drain(slot)
        await self._stop_slot(slot)
        slot.service = service
        slot.failures = 0
        if self._group is not None and not self._stopped.is_set():
            self._launch(slot)

    @staticmethod
    async def _drain(slot: _Slot) -> None:
        budget_s = slot.service.drain_budget_s()
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget_s):
                await slot.service.drain()
        except TimeoutError:
            log.error("service did not drain in time: stopping it anyway", extra={"service": slot.service.name,
                                                                                "budget_s": budget_s})
        except Exception:  # noqa: BLE001 - a failed drain must not keep the new service from starting
            log.exception("service failed while draining", extra={"service": slot.service.name})
        else:
            log.info("service drained", extra={"service": slot.service.name,
                                               "waited_s": round(time.monotonic() - started, 2)})

    async def remove(self, name: str) -> None:
        """Stop a service and forget it (a reload that no longer configures it)."""
        slot = self._slots[name]
        await self._stop_slot(slot)
        del self._slots[name]

    async def wait_started(self, timeout: float) -> bool:
        """Wait until every service has either become ready or failed once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.report.state not in (ServiceState.STARTING, ServiceState.STOPPED) for s in self._slots.values()):
                return True
            await asyncio.sleep(0.02)
        return False

    # -- internals ------------------------------------------------------------------
    def _publish(self, slot: _Slot, state: ServiceState, detail: str = "") -> None:
        slot.report.state = state
        slot.report.detail = detail
        slot.report.since = time.time()
        self._emit(slot.report)

    def _emit(self, report: ServiceReport) -> None:
        try:
            self._on_report(report)
        except Exception:  # a broken observer must not break supervision
            log.exception("service report observer failed", extra={"service": report.name})

    def _launch(self, slot: _Slot) -> None:
        assert self._group is not None
        slot.task = self._group.create_task(self._runner(slot), name=f"service:{slot.service.name}")

    async def _runner(self, slot: _Slot) -> None:
        name = slot.service.name
        while True:
            self._publish(slot, ServiceState.STARTING)
            started = time.monotonic()
            status = ServiceStatus(slot.report, self._emit)
            try:
                await slot.service.run(status)
                error = "returned unexpectedly"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - supervision boundary
                error = f"{type(exc).__name__}: {exc}"
                log.error("service crashed", exc_info=True, extra={"service": name, "error": error})
            if time.monotonic() - started >= self.policy.stable_after_s:
                slot.failures = 0
            slot.failures += 1
            slot.report.restarts += 1
            delay = self.policy.delay(slot.failures)
            log.warning("service restarting", extra={"service": name, "delay_s": delay, "error": error})
            self._publish(slot, ServiceState.BACKOFF, f"{error}; restart in {delay:.1f} s")
            await asyncio.sleep(delay)

    async def _stop_slot(self, slot: _Slot) -> None:
        task = slot.task
        if task is None or task.done():
            self._publish(slot, ServiceState.STOPPED)
            return
        self._publish(slot, ServiceState.STOPPING)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.stop_timeout_s)
        if not done:
            log.error("service did not stop in time", extra={"service": slot.service.name, "timeout_s": self.stop_timeout_s,
                                                            "waiting_in": awaiting(task)})
        elif not task.cancelled() and task.exception() is not None:
            log.error("service failed while stopping", exc_info=task.exception(), extra={"service": slot.service.name})
        slot.task = None
        self._publish(slot, ServiceState.STOPPED)

    async def _stop_all(self) -> None:
        for slot in reversed(list(self._slots.values())):
            await self._stop_slot(slot)
