"""`secretary demo` on embedded defaults: the box comes online on a private broker and goes offline cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--seconds", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "bus status online" in lines and "bus status offline" in lines
    assert any(line.startswith("bus call/event answered") for line in lines)
    assert any(line.startswith("bus call/event ended") and '"reason": "remote_hangup"' in line for line in lines)
    assert "online after" in result.stdout


def private_brokers() -> set[str]:
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"secretary-mqtt-" in cmdline.read_bytes():
                found.add(cmdline.parent.name)
        except OSError:
            pass  # the process ended while we looked
    return found


def test_demo_leaves_no_broker_behind(tmp_path: Path) -> None:
    before = private_brokers()
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--seconds", "0.2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert private_brokers() <= before, "the demo's private mosquitto is still running"
