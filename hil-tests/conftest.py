"""Fixtures of the hardware-in-the-loop suite: the ``rig`` (simulator or real), whisper, measurements.

``SECRETARY_HIL_RIG`` chooses the rig: unset or ``simulator`` runs the
simulator rig (CI), ``real`` the real one (hil-tests/README.md); the other
one's cases are reported as skipped, with what is missing to run them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the suite's modules (hil-tests is no package: its name has a dash)
    sys.path.insert(0, str(HERE))

from measurements import Measure, measurement_line  # noqa: E402
from real_rig import MissingEnv, RealRig, RealRigEnv  # noqa: E402
from rig import Rig  # noqa: E402
from sim_rig import SimRig  # noqa: E402
from transcriber import Transcriber  # noqa: E402

RIG_ENV = "SECRETARY_HIL_RIG"
RIGS = ("simulator", "real")
MEASURED = pytest.StashKey[list[str]]()


def chosen_rig() -> str:
    chosen = os.environ.get(RIG_ENV) or "simulator"
    if chosen not in RIGS:
        raise pytest.UsageError(f"{RIG_ENV} must be 'simulator' or 'real', not {chosen!r}")
    return chosen


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=RIGS)
async def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """The box and a tester phone; one per test module (a daemon's start is the expensive part)."""
    chosen = chosen_rig()
    if request.param == "simulator":
        if chosen != "simulator":
            pytest.skip(f"{RIG_ENV}=real: this run tests the real rig")
        async with SimRig(tmp_path_factory.mktemp("sim-rig")) as sim:
            yield sim
        return
    missing: list[str] = [] if chosen == "real" else [f"{RIG_ENV}=real"]
    env: RealRigEnv | None = None
    try:
        env = RealRigEnv.from_environ(os.environ)
    except MissingEnv as exc:
        missing += exc.names
    if missing or env is None:
        pytest.skip(f"real rig not configured, missing: {', '.join(missing)} (see hil-tests/README.md)")
    async with RealRig(env) as real:
        yield real


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def transcriber(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Transcriber]:
    """faster-whisper base on this machine: what the rig heard, in words."""
    async with Transcriber(tmp_path_factory.mktemp("whisper-models")) as loaded:
        yield loaded


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Measure:
    """Note a measured number; they are listed together at the end of the run."""
    lines = request.config.stash.setdefault(MEASURED, [])

    def record(what: str, value: float, unit: str = "ms", limit: float | None = None) -> None:
        lines.append(measurement_line(request.node.name, what, value, unit, limit))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(MEASURED, [])
    if lines:
        terminalreporter.section("hardware-in-the-loop measurements")
        for line in lines:
            terminalreporter.line(line)
