"""`secretary demo` on embedded defaults: a whole call with the CPU engines, then a clean stop (English and Russian)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engines.tts.rhvoice_library import RhvoiceLibraryError, load_library

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


try:
    load_library()
    RHVOICE_MISSING = ""
except RhvoiceLibraryError as exc:
    RHVOICE_MISSING = str(exc)


def run_demo_cli(data_dir: Path, cwd: Path, *args: str) -> tuple[str, str]:
    """``secretary demo --data-dir data_dir *args`` in a subprocess: (stdout, stderr); asserts it exited 0 and left no broker.

    Other tests running beside this one start private brokers of their own: only an orphan (parent 1, as a
    broker the demo left behind becomes) or one still owned by the demo's process counts.
    """
    with subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "demo", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
    ) as demo:
        before = private_brokers({1})
        out, err = demo.communicate(timeout=580)
    assert demo.returncode == 0, out + err
    assert private_brokers({1, demo.pid}) <= before, "the demo's private mosquitto is still running"
    return out, err


def the_call_record(data_dir: Path) -> Path:
    calls = list((data_dir / "calls").iterdir())
    assert len(calls) == 1
    assert {"caller.wav", "secretary.wav", "transcript.json", "transcript.txt"} <= {p.name for p in calls[0].iterdir()}
    return calls[0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_places_a_whole_call_on_embedded_defaults(tmp_path: Path) -> None:
    out, _ = run_demo_cli(tmp_path / "data", tmp_path)
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "bus status online" in lines and "bus status offline" in lines
    assert any(line.startswith("bus call/event answered") for line in lines)
    assert any(line.startswith("bus call/event ended") and '"outcome": "message_taken"' in line for line in lines)
    assert "Caller : Hi, this is John Peters" in " ".join(lines)
    assert "greeting: first audio" in out and "voice-to-voice" in out
    the_call_record(tmp_path / "data")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(bool(RHVOICE_MISSING), reason=f"librhvoice5 is absent on this machine: {RHVOICE_MISSING}")
def test_russian_demo_takes_ivan_petrovs_message_exactly(tmp_path: Path) -> None:
    out, _ = run_demo_cli(tmp_path / "data", tmp_path, "--lang", "ru")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "persona gulya (ru)" in out
    assert "their voice: RHVoice aleksandr" in out  # the caller; the secretary speaks Irina
    assert "Secretary: Здравствуйте! Вы позвонили в офис Алекса Моргана, меня зовут Гуля." in " ".join(lines)
    assert any(line.startswith("bus call/event ended") and '"outcome": "message_taken"' in line for line in lines)
    message = json.loads(next(line for line in out.splitlines() if line.startswith("message: ")).removeprefix("message: "))
    assert message == {"name": "Иван Петров", "reason": "по поводу счета за доставку", "callback_number": "89161234567"}
    transcript = json.loads((the_call_record(tmp_path / "data") / "transcript.json").read_text(encoding="utf-8"))
    assert transcript["persona"] == "gulya" and transcript["language"] == "ru"
    assert transcript["message"] == message
