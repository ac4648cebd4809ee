"""`secretary doctor` reports each check and fails when something the box needs is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from daemon.mosquitto_broker import MosquittoBroker
from tests.support.daemon_runner import write_config

REPO = Path(__file__).resolve().parent.parent


def doctor(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "doctor", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_doctor_passes_on_a_working_setup(broker: MosquittoBroker, tmp_path: Path) -> None:
    result = doctor(write_config(tmp_path / "config.yaml", broker.url, tmp_path / "data"))
    assert result.returncode == 0, result.stdout
    assert f"OK   broker     connected to 127.0.0.1:{broker.port}" in result.stdout
    assert "OK   modem      modem.driver is simulator" in result.stdout
    assert "WARN units      cannot read systemd unit states" in result.stdout or "OK   units" in result.stdout


def test_doctor_explains_missing_broker_and_modem(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", "mqtt://127.0.0.1:9", tmp_path / "data")
    config.write_text(config.read_text().replace("driver: simulator", f"driver: sim7600\n  at_port: {tmp_path}/ttyUSB2\n  audio_port: {tmp_path}/ttyUSB4"))
    result = doctor(config)
    assert result.returncode == 1
    assert "FAIL broker     cannot connect to 127.0.0.1:9" in result.stdout
    assert f"FAIL ports      configured modem port(s) {tmp_path}/ttyUSB2, {tmp_path}/ttyUSB4 do not exist" in result.stdout


def test_doctor_reports_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("box_id: b\nmodem:\n  answer_after_rings: two\n")
    result = doctor(config)
    assert result.returncode == 1
    assert "FAIL config" in result.stdout and "answer_after_rings" in result.stdout
