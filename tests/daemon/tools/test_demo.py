"""`secretary demo` on embedded defaults: a whole call with the CPU engines, then a clean stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def private_brokers() -> set[str]:
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"secretary-mqtt-" in cmdline.read_bytes():
                found.add(cmdline.parent.name)
        except OSError:
            pass  # the process ended while we looked
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_places_a_whole_call_on_embedded_defaults(tmp_path: Path) -> None:
    before = private_brokers()
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=580, cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "bus status online" in lines and "bus status offline" in lines
    assert any(line.startswith("bus call/event answered") for line in lines)
    assert any(line.startswith("bus call/event ended") and '"outcome": "message_taken"' in line for line in lines)
    assert "Caller : Hi, this is John Peters" in " ".join(lines)
    assert "greeting: first audio" in out and "voice-to-voice" in out
    calls = list((tmp_path / "data" / "calls").iterdir())
    assert len(calls) == 1
    assert {"caller.wav", "secretary.wav", "transcript.json", "transcript.txt"} <= {p.name for p in calls[0].iterdir()}
    assert private_brokers() <= before, "the demo's private mosquitto is still running"
