"""``secretary doctor`` reads the running daemon's recorder: calls not recorded (disk full) fail the check."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiomqtt

from channels.bus_contract.clients import DAEMON
from channels.bus_contract.topics import RECORDER_STATE, STATUS
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import write_config

REPO = Path(__file__).resolve().parents[3]
BASE = "secretary/test-box"


def doctor(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "doctor", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)


async def publish_retained(broker: MosquittoBroker, messages: list[tuple[str, str]]) -> None:
    login = broker.login(DAEMON)  # as the daemon would: the only user that may write the box's state
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="doctor-recording-test", username=login.username,
                              password=login.password) as client:
        for topic, payload in messages:
            await client.publish(topic, payload.encode(), qos=1, retain=True)


def recorder_state(state: str, detail: str) -> str:
    return json.dumps({"state": state, "detail": detail, "restarts": 0, "since": 1.0})


def test_doctor_fails_while_calls_cannot_be_recorded_and_passes_when_they_can(
    broker: MosquittoBroker, tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    full = "recording stopped on 1 live call(s): disk full writing caller.wav; calls go on; 0.0 MB free in /data/calls"
    asyncio.run(publish_retained(broker, [(f"{BASE}/{STATUS}", "online"),
                                          (f"{BASE}/{RECORDER_STATE}", recorder_state("degraded", full))]))
    result = doctor(config)
    assert f"FAIL recording  {full}" in result.stdout, result.stdout
    assert "call.min_free_mb" in result.stdout
    assert result.returncode == 1

    asyncio.run(publish_retained(broker, [(f"{BASE}/{RECORDER_STATE}", recorder_state("running", "812.5 MB free"))]))
    result = doctor(config)
    assert "OK   recording  812.5 MB free" in result.stdout, result.stdout
