"""The box's own health on the bus: ``status``, ``services/<name>/state``, ``engines/<name>/state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from channels.bus_contract import fields as wire
from channels.bus_contract.fields import Payload, PayloadError

ONLINE, OFFLINE = "online", "offline"
SERVICE_STATES = ("starting", "running", "degraded", "backoff", "stopping", "stopped")  # what the supervisor says
ENGINE_STATES = ("loading", "ready", "degraded", "failed", "stopped")  # what an engine says


@dataclass(frozen=True)
class BoxStatus:
    """``status``: retained ``online`` / ``offline`` (plain text, not JSON); the daemon's last will says offline."""

    online: bool

    def encode(self) -> str:
        return ONLINE if self.online else OFFLINE

    @classmethod
    def decode(cls, payload: Any) -> BoxStatus:
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode("utf-8", "replace")
        if not isinstance(payload, str):
            raise PayloadError(f"status: the payload must be the text online or offline, got {payload!r}")
        text = payload.strip().lower()
        if text not in (ONLINE, OFFLINE):
            raise PayloadError(f"status: the payload must be online or offline, got {payload!r}")
        return cls(online=text == ONLINE)


@dataclass(frozen=True)
class ServiceState(Payload):
    """``services/<name>/state``: retained ``{state, detail, restarts, since}`` (``state`` one of SERVICE_STATES)."""

    what: ClassVar[str] = "services/<name>/state"
    state: str = wire.text(required=True)
    detail: str | None = wire.text()
    restarts: int | None = wire.count()
    since: float | None = wire.number()


@dataclass(frozen=True)
class EngineState(Payload):
    """``engines/<name>/state``: retained; design.md's ``{state, backend, device, detail}`` and the load figures."""

    what: ClassVar[str] = "engines/<name>/state"
    state: str = wire.text(required=True)
    backend: str | None = wire.text()
    device: str | None = wire.text()
    model: str | None = wire.text()
    detail: str | None = wire.text()
    load_s: float | None = wire.number()
    warmup_s: float | None = wire.number()
    failures: tuple[str, ...] | None = wire.texts()  # each backend that failed, and why
    since: float | None = wire.number()
