"""SIGTERM (``systemctl stop``) and SIGINT (Ctrl-C) stop the box gracefully, with a caller on the line or not.

A real ``secretaryd`` on the built-in simulator and a real mosquitto: a call
is answered and greeted, then the daemon gets the signal. The caller must
hear a goodbye (audio in what the simulator received after the signal), the
record and the index must be final with the stop's reason, ``ended`` must be
on the bus, and once the process has exited (code 0, within the stop budget)
the broker must not claim a call or a modem connection any more: retained
``call/state`` idle, ``modem/state`` not connected, ``status`` offline.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import signal
import sqlite3
import subprocess
import time
import wave
from pathlib import Path

import pytest

from daemon.app import STOP_BUDGET_S, WIND_DOWN_BUDGET_S
from daemon.call.service import DAEMON_STOPPING
from daemon.tools.private_broker import MosquittoBroker
from tests.faults.fault_box import voiced_seconds
from tests.support.daemon_runner import secretaryd_command, write_config
from tests.support.mqtt_watch import MqttWatch, Seen

BASE = "secretary/test-box"
CALLER = "+79161234567"
UNIT = Path(__file__).resolve().parents[2] / "systemd" / "secretaryd.service"
WAV_HEADER = 44  # the simulator's uplink WAV (Python's wave module): the data starts here
EXIT_MARGIN_S = 1.5  # interpreter shutdown after the last service stopped, on a loaded machine



def call_event(kind: str, call_id: str | None = None):  # type: ignore[no-untyped-def]
    def match(m: Seen) -> bool:
        if m.topic != f"{BASE}/call/event":
            return False
        event = m.json()
        return bool(event["type"] == kind and (call_id is None or event["call_id"] == call_id))

    return match


def start_daemon(config: Path, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    """secretaryd, its log (debug, JSON lines) in a file: a pipe nobody reads would fill and block it."""
    with (tmp_path / "secretaryd.log").open("ab") as log:
        return subprocess.Popen(secretaryd_command(config), env=env, stdout=subprocess.DEVNULL, stderr=log)


def log_tail(tmp_path: Path) -> str:
    return (tmp_path / "secretaryd.log").read_text(errors="replace")[-3000:]


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        assert time.monotonic() < deadline, f"secretaryd still running {timeout} s after the signal"
        await asyncio.sleep(0.05)
    return proc.returncode


async def retained_after_exit(broker: MosquittoBroker) -> dict[str, Seen]:
    """What a client that connects now is told (retained), by topic suffix."""
    async with MqttWatch(broker, f"{BASE}/#") as late:
        await asyncio.sleep(1.0)  # retained messages come at once on subscribe
        return {m.topic.removeprefix(f"{BASE}/"): m for m in late.seen if m.retain}


def assert_retained_truth(retained: dict[str, Seen]) -> None:
    assert retained["status"].text == "offline"
    assert retained["call/state"].json()["state"] == "idle", retained["call/state"].text
    assert retained["modem/state"].json().get("connected") is False, retained["modem/state"].text


def test_the_stop_budget_fits_systemd_stop_timeout() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    timeout_stop_s = float(unit["Service"]["TimeoutStopSec"])
    assert WIND_DOWN_BUDGET_S + STOP_BUDGET_S + EXIT_MARGIN_S <= timeout_stop_s


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_mid_call_says_goodbye_finishes_the_record_and_leaves_the_truth_retained(
    sig: signal.Signals, broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str],
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data, answer_after_rings=1)
    uplink = data / "run" / "simulator-uplink.wav"
    async with MqttWatch(broker, f"{BASE}/#") as bus:
        spawn.append(start_daemon(config, daemon_env, tmp_path))
        proc = spawn[-1]
        await bus.wait_for(lambda m: m.topic == f"{BASE}/services/calls/state" and m.json()["state"] == "running", 90)
        assert (await bus.request(f"{BASE}/cmd/simulator/call", json.dumps({"from": CALLER}).encode()))["ok"]
        call_id = (await bus.wait_for(call_event("answered"), 30)).json()["call_id"]
        await bus.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["source"] == "greeting", 30)
        await asyncio.sleep(1.0)  # the greeting is over; the line is quiet, the caller has said nothing
        assert bus.on(f"{BASE}/call/state")[-1].json()["state"] == "active"
        heard_before = uplink.stat().st_size - WAV_HEADER
        mark = len(bus.seen)
        sent = time.monotonic()
        proc.send_signal(sig)
        ended = (await bus.wait_for(call_event("ended", call_id), WIND_DOWN_BUDGET_S + 2, after=mark)).json()
        code = await wait_exit(proc, WIND_DOWN_BUDGET_S + STOP_BUDGET_S + EXIT_MARGIN_S)
        took_s = time.monotonic() - sent
        assert code == 0, log_tail(tmp_path)
        endings = [m for m in bus.seen[mark:] if call_event("ended", call_id)(m)]
    assert len(endings) == 1
    assert ended["reason"] == DAEMON_STOPPING and ended["answered"] is True

    # the caller heard a goodbye after the signal: speech in what the box sent from then on
    with wave.open(str(uplink)) as wav:
        pcm = wav.readframes(wav.getnframes())
    after = pcm[heard_before - heard_before % 320:]
    assert voiced_seconds(after) >= 0.5, f"{voiced_seconds(after):.2f} s of speech after the signal"

    # the record and the index are final, with the stop's reason, and agree with the bus
    transcript = json.loads((data / "calls" / call_id / "transcript.json").read_text())
    assert transcript["outcome"] == ended["outcome"] != "in_progress"
    assert transcript["end_reason"] == DAEMON_STOPPING
    said = [u for u in transcript["utterances"] if u["role"] == "secretary"]
    assert [u["source"] for u in said][-1] == "goodbye" and said[-1]["end_s"] > said[-1]["start_s"]
    with sqlite3.connect(data / "secretary.db") as db:
        row = db.execute("SELECT outcome, end_reason FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    assert row == (ended["outcome"], DAEMON_STOPPING)

    assert_retained_truth(await retained_after_exit(broker))
    assert took_s < WIND_DOWN_BUDGET_S + STOP_BUDGET_S + EXIT_MARGIN_S


@pytest.mark.slow
async def test_sigterm_while_idle_exits_quickly_with_the_same_retained_truth(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    async with MqttWatch(broker, f"{BASE}/#") as bus:
        spawn.append(start_daemon(config, daemon_env, tmp_path))
        proc = spawn[-1]
        await bus.wait_for(lambda m: m.topic == f"{BASE}/modem/state" and m.json().get("connected") is True, 60)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await wait_exit(proc, STOP_BUDGET_S + EXIT_MARGIN_S)
        took_s = time.monotonic() - sent
        assert code == 0, log_tail(tmp_path)
    assert took_s < STOP_BUDGET_S  # no call: the wind-down has nothing to wait for
    assert_retained_truth(await retained_after_exit(broker))
