from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.tools.private_broker import MosquittoBroker
from engines.vad.backend_factory import build_vad_backend
from engines.vad.interface import VadBackend

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _process_umask_restored() -> Iterator[None]:
    """A test that runs ``daemon.main`` or the CLI in-process tightens the umask (``private_umask``): undo it."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real mosquitto on a free loopback port, private to the test, secured as on the box for ``test-box``.

    Anonymous clients are refused; each client logs in as its role (``broker.login(role)``, ``broker.mqtt_yaml()``).
    """
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    with MosquittoBroker(workdir=workdir) as running:
        yield running


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes a test starts (a secretaryd, a simulator): any still running at its end is killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def daemon_env() -> dict[str, str]:
    """Environment for a secretaryd child process (no systemd, our interpreter)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def silero() -> Iterator[VadBackend]:
    """The packaged Silero VAD, loaded once per test module (the listener, turn-end, echo and VAD tests)."""
    backend = build_vad_backend("silero")
    asyncio.run(backend.load())
    yield backend
    asyncio.run(backend.close())
