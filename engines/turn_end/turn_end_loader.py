"""The optional turn-end model beside an engine: loaded after it, its state in that engine's status.

The VAD engine carries the turn-end model (the call's ears use both, and a
call leases the VAD engine already), so it needs no service, topic or lease of
its own. It is optional: a missing file or a failed load leaves the VAD
engine as it was and the turn ends after the fixed silence window; the VAD
engine's state (``detail``) says which, and why. ``relay`` is the status sink
the engine's chain publishes through: it appends that note to every status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from engines.engine_status import EngineState, EngineStatus
from engines.turn_end.interface import TurnEndModel

log = logging.getLogger("secretary.engines")

FIXED_WINDOW = "the turn ends after the fixed silence window"


class TurnEndLoader:
    def __init__(
        self,
        build: Callable[[], TurnEndModel] | None,
        on_status: Callable[[EngineStatus], None] | None = None,
        *,
        off_reason: str = "turned off",
        load_timeout_s: float = 60.0,
    ) -> None:
        self._build = build
        self._on_status = on_status
        self._load_timeout_s = load_timeout_s
        self.model: TurnEndModel | None = None
        self.note = "" if build is not None else f"turn-end model off ({off_reason}): {FIXED_WINDOW}"
        self._last: EngineStatus | None = None

    def annotate(self, status: EngineStatus) -> EngineStatus:
        """``status`` with the turn-end note added to its detail (a stopped engine has none)."""
        if not self.note or status.state is EngineState.STOPPED:
            return status
        detail = "; ".join(part for part in (status.detail, self.note) if part)
        return replace(status, detail=detail)  # the same moment: not a new state

    def relay(self, status: EngineStatus) -> None:
        """The engine's status sink: the status with the note, to the owner's sink."""
        self._last = status
        if self._on_status is not None:
            self._on_status(self.annotate(status))

    async def load(self) -> None:
        """Build, load and warm up the model; a failure is noted (and logged), never raised."""
        if self._build is None:
            self._republish()
            return
        model: TurnEndModel | None = None
        started = time.monotonic()
        try:
            model = self._build()
            async with asyncio.timeout(self._load_timeout_s):
                await model.load()
                await model.warm_up()
        except asyncio.CancelledError:
            if model is not None:
                await model.close()
            raise
        except Exception as exc:  # noqa: BLE001 - any failure leaves the fixed window
            if model is not None:
                await model.close()
            reason = str(exc).strip() or type(exc).__name__
            self.note = f"turn-end model off ({reason}): {FIXED_WINDOW}"
            log.warning("turn-end model did not load: %s; %s", reason, FIXED_WINDOW)
        else:
            self.model = model
            self.note = f"turn-end model {model.name} ({model.model}, loaded in {time.monotonic() - started:.2f} s)"
            log.info("turn-end model %s ready (%s)", model.name, model.model)
        self._republish()

    def _republish(self) -> None:
        if self._last is not None:
            self.relay(self._last)

    async def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            await model.close()
