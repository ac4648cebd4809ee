"""`secretary demo` on embedded defaults: a whole call with the CPU engines, then a clean stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def private_brokers(parents: set[int]) -> set[str]:
    """The private mosquittos whose parent is one of ``parents`` (a leaked child of a gone process has pid 1)."""
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"secretary-mqtt-" not in (proc / "cmdline").read_bytes():
                continue
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if parent in parents:
            found.add(proc.name)
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_places_a_whole_call_on_embedded_defaults(tmp_path: Path) -> None:
    # Other tests running beside this one start private brokers of their own: only an orphan (parent 1, as a
    # broker the demo left behind becomes) or one still owned by the demo's process counts.
    with subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "demo", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
    ) as demo:
        before = private_brokers({1})
        out, err = demo.communicate(timeout=580)
    result = subprocess.CompletedProcess(demo.args, demo.returncode, out, err)
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
    assert private_brokers({1, demo.pid}) <= before, "the demo's private mosquitto is still running"
