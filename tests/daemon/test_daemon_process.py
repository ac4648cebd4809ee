"""secretaryd as a real process: online, offline on SIGTERM within 5 s, last will on a crash, reload."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import secretaryd_command, write_config
from tests.support.mqtt_watch import MqttWatch

BASE = "secretary/test-box"



def start_daemon(config: Path, env: dict[str, str], procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(secretaryd_command(config), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(proc)
    return proc


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"process still running after {timeout} s")
        await asyncio.sleep(0.02)
    return proc.returncode


async def test_online_then_offline_after_sigterm(broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    async with MqttWatch(broker, f"{BASE}/#") as watch:
        proc = start_daemon(config, daemon_env, spawn)
        await watch.wait_for(lambda m: m.topic == f"{BASE}/status" and m.text == "online", timeout=15)
        assert (tmp_path / "data").is_dir()
        # Every engine service loads its (light) chain and says so, retained, on the broker.
        for engine, backend in (("vad", "webrtc"), ("stt", "vosk"), ("llm", "offline"), ("tts", "espeak")):
            seen = await watch.wait_for(
                lambda m, e=engine: m.topic == f"{BASE}/engines/{e}/state" and m.json()["state"] == "ready", timeout=30
            )
            assert seen.json()["backend"] == backend
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        offline = await watch.wait_for(lambda m: m.topic == f"{BASE}/status" and m.text == "offline", timeout=5)
        code = await wait_exit(proc, 5)
        assert time.monotonic() - sent < 5.0
        assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
        assert offline.at - sent < 5.0
    log_lines = proc.stderr.read().decode().splitlines() if proc.stderr else []
    assert any('"msg": "secretaryd stopped"' in line for line in log_lines), log_lines[-5:]


async def test_last_will_when_killed(broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    async with MqttWatch(broker, f"{BASE}/status") as watch:
        proc = start_daemon(config, daemon_env, spawn)
        await watch.wait_for(lambda m: m.text == "online", timeout=15)
        proc.kill()  # no goodbye: the broker publishes the last will
        will = await watch.wait_for(lambda m: m.text == "offline", timeout=10)
        assert will.text == "offline"
    async with MqttWatch(broker, f"{BASE}/status") as late:
        assert (await late.wait_for(lambda m: True)).text == "offline"  # retained


async def test_starts_without_broker_and_connects_later(tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]) -> None:
    broker = MosquittoBroker(workdir=tmp_path)
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    proc = start_daemon(config, daemon_env, spawn)
    await asyncio.sleep(1.0)
    assert proc.poll() is None  # no broker is no reason to die
    with broker:
        async with MqttWatch(broker, f"{BASE}/#") as watch:
            await watch.wait_for(lambda m: m.topic == f"{BASE}/status" and m.text == "online", timeout=10)
            proc.send_signal(signal.SIGTERM)
            assert await wait_exit(proc, 5) == 0


async def test_sighup_and_cmd_reload(broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    async with MqttWatch(broker, f"{BASE}/#") as watch:
        proc = start_daemon(config, daemon_env, spawn)
        await watch.wait_for(lambda m: m.topic == f"{BASE}/status" and m.text == "online", timeout=15)
        # A broken config is refused and the daemon keeps running on the old one.
        config.write_text(config.read_text().replace("driver: simulator", "driver: nokia3310"))
        reply = await watch.request(f"{BASE}/cmd/reload", b"{}")
        assert reply["ok"] and reply["result"]["applied"] is False
        assert any("modem.driver: must be one of" in e for e in reply["result"]["errors"])
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert proc.poll() is None
        # A valid change that touches the bus restarts only the bus.
        write_config(config, broker, tmp_path / "data", extra="")
        config.write_text(config.read_text().replace("keepalive_s: 5", "keepalive_s: 7"))
        start = len(watch.seen)
        reply = await watch.request(f"{BASE}/cmd/reload", b"{}", timeout=10)
        assert reply["result"] == {"applied": True, "restarted": ["bus"], "after_live_calls": [], "needs_daemon_restart": []}
        await watch.wait_for(lambda m: m.topic == f"{BASE}/services/bus/state" and m.json()["state"] == "stopping", after=start, timeout=10)
        await watch.wait_for(lambda m: m.topic == f"{BASE}/services/bus/state" and m.json()["state"] == "running", after=start, timeout=10)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert await wait_exit(proc, 10) == 0  # TimeoutStopSec=10: engines still loading in threads finish first


async def test_invalid_config_exits_with_explanation(tmp_path: Path, daemon_env: dict[str, str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("box_id: b\nmodem:\n  answer_after_rings: two\n")
    result = subprocess.run(secretaryd_command(config), env=daemon_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'modem.answer_after_rings: must be an integer from 0 to 10, got "two"' in result.stderr
