"""The fault suite's shared helpers: a real secretaryd over the pty simulator and the real broker, and what a call left.

A case starts ``secretaryd`` as a child process (``spawn`` kills what is left
at the end), drives the simulated caller over ``cmd/simulator/*`` on the
secured broker, and asserts on the three places a call ends in: the record
(``data_dir/calls/<call_id>/transcript.json``), the index (``secretary.db``)
and the bus (``call/event``), plus the audio the caller heard (the
simulator's uplink recording, ``data_dir/run/simulator-uplink.wav``).
The daemon's own log goes to ``<tmp>/secretaryd.log`` for a failed case.

Cases where the modem must outlive (or lose) the daemon's view of it run the
simulator as its own process (``simulator_process``: a modem on ptys, scripted
over its control socket with ``sim``) and point the daemon's real ``sim7600``
driver at its ports (``use_sim7600``); its uplink recording is then
``<sim_dir>/uplink.wav``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drivers.sim7600.simulator.control import send_command
from tests.support.daemon_runner import secretaryd_command
from tests.support.mqtt_watch import Seen

BASE = "secretary/test-box"
CALLER = "+79161234567"
UPLINK_WAV = Path("run") / "simulator-uplink.wav"  # under data_dir: what the box sent the caller
SIM_UPLINK_WAV = "uplink.wav"  # under a simulator_process's directory: what the box sent the caller
WAV_HEADER = 44  # Python's wave module: the data starts here
FRAME_BYTES = 320  # 20 ms of 8 kHz int16


def start_daemon(config: Path, env: dict[str, str], procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """``secretaryd --config config``, its output appended to ``secretaryd.log`` beside the config."""
    log = open(config.parent / "secretaryd.log", "ab")  # noqa: SIM115 - the child owns it from here
    proc = subprocess.Popen(secretaryd_command(config), env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    procs.append(proc)
    return proc


def topic(suffix: str) -> str:
    return f"{BASE}/{suffix}"


def call_event(kind: str, call_id: str | None = None) -> Callable[[Seen], bool]:
    """A predicate: a ``call/event`` of ``kind`` (of ``call_id``, if given)."""

    def match(m: Seen) -> bool:
        if m.topic != topic("call/event"):
            return False
        payload = m.json()
        return bool(payload["type"] == kind and (call_id is None or payload["call_id"] == call_id))

    return match


def service_state(name: str, state: str) -> Callable[[Seen], bool]:
    """A predicate: ``services/<name>/state`` says ``state``."""
    return lambda m: m.topic == topic(f"services/{name}/state") and m.json()["state"] == state


def service_running(name: str) -> Callable[[Seen], bool]:
    return service_state(name, "running")


def engine_state(name: str, state: str) -> Callable[[Seen], bool]:
    return lambda m: m.topic == topic(f"engines/{name}/state") and m.json()["state"] == state


def events_of(seen: list[Seen], call_id: str) -> list[dict[str, Any]]:
    """Every ``call/event`` of one call, in the order the broker delivered them."""
    return [m.json() for m in seen if m.topic == topic("call/event") and m.json().get("call_id") == call_id]


def read_record(data_dir: Path, call_id: str) -> dict[str, Any]:
    return json.loads((data_dir / "calls" / call_id / "transcript.json").read_text(encoding="utf-8"))


def index_row(data_dir: Path, call_id: str) -> dict[str, Any] | None:
    """The call's row in the SQLite index (a fresh read-only connection), or None."""
    with sqlite3.connect(f"file:{data_dir / 'secretary.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return dict(row) if row is not None else None


async def settled_record(data_dir: Path, call_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The record once it is no longer ``in_progress`` (AssertionError if it stays so ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        path = data_dir / "calls" / call_id / "transcript.json"
        if path.exists():
            record = read_record(data_dir, call_id)
            if record["outcome"] != "in_progress":
                return record
        assert time.monotonic() < deadline, f"the record of {call_id} is still in progress (or missing)"
        await asyncio.sleep(0.1)


def uplink_levels(data_dir: Path) -> tuple[float, int]:
    """(RMS, peak) of everything the box sent the simulated caller, as int16 levels; (0, 0) if nothing."""
    path = data_dir / UPLINK_WAV
    if not path.exists() or path.stat().st_size <= 44:  # created when the simulator starts, written on a call
        return 0.0, 0
    with wave.open(str(path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return 0.0, 0
    return float(np.sqrt(np.mean(samples**2))), int(np.max(np.abs(samples)))


def assert_one_outcome(data_dir: Path, call_id: str, ended: dict[str, Any], outcome: str, reason: str) -> None:
    """The record, the index and the bus's ``ended`` say the same: this outcome, this reason."""
    record = read_record(data_dir, call_id)
    row = index_row(data_dir, call_id)
    assert row is not None, "the call is not in the index"
    said = {
        "record": (record["outcome"], record["end_reason"]),
        "index": (row["outcome"], row["end_reason"]),
        "bus": (ended.get("outcome"), ended.get("reason")),
    }
    assert set(said.values()) == {(outcome, reason)}, said


@contextlib.contextmanager
def simulator_process(tmp_path: Path, env: dict[str, str], ring_period_s: float = 1.0) -> Iterator[Path]:
    """The simulated modem as its own process; yields its directory (``at``, ``audio``, ``ctl.sock``, uplink.wav).

    Its log is ``<tmp>/simulator.log``; it is stopped (SIGTERM, then SIGKILL) when the block ends.
    """
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    command = [sys.executable, "-m", "drivers.sim7600.simulator", "run", "--at", str(sim_dir / "at"),
               "--audio", str(sim_dir / "audio"), "--control", str(sim_dir / "ctl.sock"),
               "--record", str(sim_dir / SIM_UPLINK_WAV), "--ring-period", str(ring_period_s)]
    with (tmp_path / "simulator.log").open("ab") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not (sim_dir / "ctl.sock").exists():
            assert proc.poll() is None, (tmp_path / "simulator.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.05)
        yield sim_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def sim(sim_dir: Path, line: str, timeout_s: float = 30.0) -> str:
    """One command to a ``simulator_process`` (see drivers/sim7600/simulator/control.py); its reply after ``ok``."""
    reply = await send_command(sim_dir / "ctl.sock", line, timeout_s=timeout_s)
    assert reply.startswith("ok"), f"{line[:80]}: {reply}"
    return reply.removeprefix("ok").strip()


async def sim_status(sim_dir: Path) -> dict[str, Any]:
    return json.loads(await sim(sim_dir, "status"))  # type: ignore[no-any-return]


def use_sim7600(config: Path, sim_dir: Path, answer_after_rings: int = 1) -> Path:
    """Point a ``write_config`` config's modem at a ``simulator_process`` through the real sim7600 driver."""
    config.write_text(config.read_text().replace(
        "driver: simulator",
        f"driver: sim7600\n  at_port: {sim_dir / 'at'}\n  audio_port: {sim_dir / 'audio'}\n"
        f"  answer_after_rings: {answer_after_rings}",
    ))
    return config


def modem_connected(connected: bool) -> Callable[[Seen], bool]:
    """A predicate: a ``modem/state`` that says ``connected`` is ``connected``."""
    return lambda m: m.topic == topic("modem/state") and m.json().get("connected") is connected


def heard_pcm(wav_path: Path, from_byte: int = 0) -> bytes:
    """What the box sent the caller (PCM16 of an uplink recording), from data byte ``from_byte`` on, frame-aligned."""
    with wave.open(str(wav_path)) as wav:
        pcm = wav.readframes(wav.getnframes())
    return pcm[from_byte - from_byte % FRAME_BYTES:]


def heard_bytes(wav_path: Path) -> int:
    """How many PCM bytes the uplink recording holds now (a mark for ``heard_pcm``)."""
    return max(wav_path.stat().st_size - WAV_HEADER, 0) if wav_path.exists() else 0


def voiced_seconds(pcm: bytes, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames whose RMS is above ``threshold`` (speech, not the line's silence)."""
    usable = len(pcm) - len(pcm) % FRAME_BYTES
    samples = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float64).reshape(-1, FRAME_BYTES // 2)
    if not len(samples):
        return 0.0
    return float((np.sqrt((samples**2).mean(axis=1)) > threshold).sum()) * 0.02
