"""The box's own health on the bus: ``status``, ``services/<name>/state``, ``engines/<name>/state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channels.bus_contract.fields import FieldReader, PayloadError

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
class ServiceState:
    """``services/<name>/state``: retained ``{state, detail, restarts, since}`` (``state`` one of SERVICE_STATES)."""

    state: str
    detail: str | None = None
    restarts: int | None = None
    since: float | None = None

    def encode(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "restarts": self.restarts, "since": self.since}

    @classmethod
    def decode(cls, payload: Any) -> ServiceState:
        r = FieldReader(payload, "services/<name>/state")
        return cls(state=r.required_text("state"), detail=r.text("detail"), restarts=r.count("restarts"),
                   since=r.number("since"))


@dataclass(frozen=True)
class EngineState:
    """``engines/<name>/state``: retained; design.md's ``{state, backend, device, detail}`` and the load figures."""

    state: str
    backend: str | None = None
    device: str | None = None
    model: str | None = None
    detail: str | None = None
    load_s: float | None = None
    warmup_s: float | None = None
    failures: tuple[str, ...] | None = None  # each backend that failed, and why
    since: float | None = None

    def encode(self) -> dict[str, Any]:
        return {
            "state": self.state, "backend": self.backend, "device": self.device, "model": self.model,
            "detail": self.detail, "load_s": self.load_s, "warmup_s": self.warmup_s,
            "failures": list(self.failures) if self.failures is not None else None, "since": self.since,
        }

    @classmethod
    def decode(cls, payload: Any) -> EngineState:
        r = FieldReader(payload, "engines/<name>/state")
        return cls(
            state=r.required_text("state"), backend=r.text("backend"), device=r.text("device"), model=r.text("model"),
            detail=r.text("detail"), load_s=r.number("load_s"), warmup_s=r.number("warmup_s"),
            failures=r.texts("failures"), since=r.number("since"),
        )
