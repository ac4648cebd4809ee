"""A crash mid-call leaves a readable record; the next start marks it interrupted and indexes it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
import wave
from pathlib import Path

import pytest

from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import secretaryd_command, write_config
from tests.support.mqtt_watch import MqttWatch

BASE = "secretary/test-box"



def call_event(kind: str):  # type: ignore[no-untyped-def]
    return lambda m: m.topic == f"{BASE}/call/event" and m.json()["type"] == kind


@pytest.mark.slow
async def test_sigkill_mid_call_leaves_a_readable_record_recovered_on_restart(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]
) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data, answer_after_rings=1)
    async with MqttWatch(broker, f"{BASE}/#") as bus:
        proc = subprocess.Popen(secretaryd_command(config), env=daemon_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        spawn.append(proc)
        await bus.wait_for(lambda m: m.topic == f"{BASE}/services/calls/state" and m.json()["state"] == "running", 60)
        assert (await bus.request(f"{BASE}/cmd/simulator/call", b'{"from": "+79161234567"}'))["ok"]
        answered = (await bus.wait_for(call_event("answered"), 15)).json()
        greeting = (await bus.wait_for(lambda m: call_event("utterance")(m) and m.json()["role"] == "secretary", 20)).json()
        await asyncio.sleep(0.5)
        proc.kill()  # a crash: no finally blocks, no flush, no goodbye
        proc.wait(5)
    record = data / "calls" / answered["call_id"]
    transcript = json.loads((record / "transcript.json").read_text())  # readable as it was at the crash
    assert transcript["outcome"] == "in_progress"
    assert transcript["utterances"][0]["text"] == greeting["text"]
    for name in ("caller.wav", "secretary.wav"):
        assert (record / name).stat().st_size > 44 + 8000  # more than half a second of audio on disk

    # the next start repairs the WAV headers and marks the record interrupted, in the file and the index
    spawn.append(subprocess.Popen(secretaryd_command(config), env=daemon_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 60
    while json.loads((record / "transcript.json").read_text())["outcome"] != "interrupted":
        assert time.monotonic() < deadline, "the interrupted record was not recovered"
        await asyncio.sleep(0.2)
    with wave.open(str(record / "secretary.wav")) as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() >= 4000
    with sqlite3.connect(data / "secretary.db") as db:
        (outcome,) = db.execute("SELECT outcome FROM calls WHERE call_id = ?", (answered["call_id"],)).fetchone()
    assert outcome == "interrupted"
