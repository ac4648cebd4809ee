"""What a supervised service is.

A service is one long-lived coroutine, ``run(status)``: it starts its work,
calls ``status.ready()`` once it serves, reports trouble with
``status.degraded(detail)`` and runs until it is cancelled (stop) or raises
(crash, then the supervisor restarts it with backoff). Cleanup lives in the
service's own ``finally``/``async with`` blocks, so stopping is cancellation.
Before the daemon stops, ``wind_down`` lets a service end live work politely
(the call service says goodbye to a caller) while the others still run. A
reload that replaces a service with live work (``busy``) first ``drain``s it:
it takes no new work and the replacement waits until the live work is done.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channels.bus_contract import box_payloads


class ServiceState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    BACKOFF = "backoff"  # crashed, waiting to restart
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ServiceReport:
    """A service's health as published on the bus."""

    name: str
    state: ServiceState = ServiceState.STOPPED
    detail: str = ""
    restarts: int = 0
    since: float = field(default_factory=time.time)

    def as_payload(self) -> dict[str, Any]:
        """``services/<name>/state`` on the wire."""
        return box_payloads.ServiceState(
            state=self.state.value, detail=self.detail, restarts=self.restarts, since=round(self.since, 3),
        ).encode()


class ServiceStatus:
    """The handle a running service uses to report its health."""

    def __init__(self, report: ServiceReport, changed: Callable[[ServiceReport], None]) -> None:
        self._report = report
        self._changed = changed

    def ready(self, detail: str = "") -> None:
        self._set(ServiceState.RUNNING, detail)

    def degraded(self, detail: str) -> None:
        self._set(ServiceState.DEGRADED, detail)

    @property
    def state(self) -> ServiceState:
        return self._report.state

    def _set(self, state: ServiceState, detail: str) -> None:
        if self._report.state == state and self._report.detail == detail:
            return
        self._report.state = state
        self._report.detail = detail
        self._report.since = time.time()
        self._changed(self._report)


class Service(ABC):
    """Base class of everything the supervisor runs."""

    name: str = "service"

    @abstractmethod
    async def run(self, status: ServiceStatus) -> None:
        """Serve until cancelled; raise to be restarted."""

    def config_slice(self) -> Any:
        """The part of the config this instance was built from (compared on reload)."""
        return None

    async def wind_down(self, budget_s: float) -> None:
        """The daemon is stopping: finish live work politely (a call's goodbye) before the stop cancels ``run``.

        Called once, while every service still runs, with the seconds it may take; past them the supervisor
        cancels it and stops as usual. Most services have nothing to do here.
        """

    def busy(self) -> bool:
        """Whether the service has live work a replace should let finish (a call on the line)."""
        return False

    async def drain(self) -> None:
        """A reload replaces this service: take no new work, return once the live work has ended.

        The supervisor bounds the wait (``drain_budget_s``) and then stops the service as usual.
        """

    def drain_budget_s(self) -> float:
        """How long a replace may wait for ``drain``."""
        return 0.0
