"""Fixtures for the SIM7600 driver tests: the simulator on real ptys, the driver with short timings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.sim7600.modem import Sim7600Modem, Sim7600Settings
from drivers.sim7600.simulator import SimulatedModem, SimulatorConfig

from .sim7600_helpers import FAST_SIM, FAST_TIMINGS, EventWaiter, Rig, RigFactory


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[RigFactory]:
    """Start a simulator and a driver pointed at its ptys; everything is stopped after the test."""
    created: list[Rig] = []

    async def factory(
        *,
        sim_config: SimulatorConfig | None = None,
        start_sim: bool = True,
        start_modem: bool = True,
        wait_connected: bool = True,
        **settings: Any,
    ) -> Rig:
        index = len(created)
        at_path, audio_path = tmp_path / f"at{index}", tmp_path / f"audio{index}"
        sim = SimulatedModem(at_path, audio_path, sim_config or FAST_SIM)
        settings.setdefault("check_modem_manager", False)
        settings.setdefault("timings", FAST_TIMINGS)
        modem = Sim7600Modem(Sim7600Settings(at_port=str(at_path), audio_port=str(audio_path), **settings))
        rig = Rig(sim, modem, EventWaiter(modem.subscribe(max_queued=10_000)), (at_path, audio_path))
        created.append(rig)
        if start_sim:
            await sim.start()
        if not start_modem:
            return rig
        await modem.start()
        if wait_connected:
            await modem.wait_connected(timeout=10)
            await rig.events.wait_for("modem_connected")  # so later waits see only new connections
        return rig

    yield factory
    for rig in reversed(created):
        await rig.modem.stop()
        await rig.sim.stop()
