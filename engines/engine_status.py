"""What an engine reports about itself: the ``engines/<name>/state`` payload.

An engine (stt, vad, llm, tts) is loading, ready, degraded (running on a
fallback backend, or a backend failed and another took over) or failed (no
backend of its chain could load). The record names the backend that serves,
its device and model, and how long load and warm-up took.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace
from typing import Any


class EngineState(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class EngineStatus:
    engine: str
    state: EngineState = EngineState.STOPPED
    backend: str = ""
    device: str = ""
    model: str = ""
    detail: str = ""
    load_s: float | None = None
    warmup_s: float | None = None
    failures: tuple[str, ...] = ()
    since: float = field(default_factory=time.time)

    def evolve(self, **changes: Any) -> EngineStatus:
        return replace(self, since=time.time(), **changes)

    def as_payload(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "backend": self.backend,
            "device": self.device,
            "model": self.model,
            "detail": self.detail,
            "load_s": None if self.load_s is None else round(self.load_s, 3),
            "warmup_s": None if self.warmup_s is None else round(self.warmup_s, 3),
            "failures": list(self.failures),
            "since": round(self.since, 3),
        }
