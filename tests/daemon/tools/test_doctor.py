"""`secretary doctor` reports each check and fails when something the box needs is missing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiomqtt

from channels.bus_contract.clients import DAEMON
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import write_config

REPO = Path(__file__).resolve().parents[3]


def doctor(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "doctor", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_doctor_passes_on_a_working_setup(broker: MosquittoBroker, tmp_path: Path) -> None:
    result = doctor(write_config(tmp_path / "config.yaml", broker, tmp_path / "data"))
    assert result.returncode == 0, result.stdout
    assert f"OK   broker     connected to 127.0.0.1:{broker.port}" in result.stdout
    assert "OK   modem      modem.driver is simulator" in result.stdout
    assert "OK   anonymous  an anonymous client is refused" in result.stdout
    assert f"OK   mqtt users each client logs in as its own user ({broker.users.credentials_file})" in result.stdout
    assert "WARN units      cannot read systemd unit states" in result.stdout or "OK   units" in result.stdout


def test_doctor_reports_an_open_broker_and_a_shared_identity(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    with MosquittoBroker(workdir=tmp_path / "open", secured=False) as open_broker:
        result = doctor(write_config(tmp_path / "config.yaml", open_broker.url, tmp_path / "data"))
    assert result.returncode == 1, result.stdout
    assert f"FAIL anonymous  127.0.0.1:{open_broker.port} lets anyone in without a password" in result.stdout
    assert "WARN mqtt users every client logs in as mqtt.username" in result.stdout


def test_doctor_names_roles_missing_from_the_credentials_file(broker: MosquittoBroker, tmp_path: Path) -> None:
    assert broker.users is not None
    credentials = broker.users.credentials_file
    credentials.write_text("\n".join(line for line in credentials.read_text().splitlines()
                                     if not line.startswith("SECRETARY_MQTT_PASSWORD_WIDGET=")) + "\n")
    result = doctor(write_config(tmp_path / "config.yaml", broker, tmp_path / "data"))
    assert f"FAIL mqtt users {credentials} has no password for widget" in result.stdout, result.stdout


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


async def _publish_retained(broker: MosquittoBroker, messages: list[tuple[str, str]]) -> None:
    login = broker.login(DAEMON)  # as the daemon would: the only user that may write the box's state
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="doctor-test", username=login.username,
                              password=login.password) as client:
        for topic, payload in messages:
            await client.publish(topic, payload.encode(), qos=1, retain=True)


def _fake_nvidia_smi(folder: Path, total_mib: int) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho 'NVIDIA GeForce RTX 3060, {total_mib}, 550.54'\n")
    smi.chmod(0o755)
    return {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{folder}:{os.environ['PATH']}"}


def _gpu_config(path: Path, broker_url: MosquittoBroker | str, data_dir: Path, vllm: float, xtts: float | None) -> Path:
    engines = (
        "engines:\n  vad: {chain: [webrtc]}\n  stt: {chain: [faster-whisper]}\n"
        "  llm:\n    chain: [gpu]\n    backends:\n"
        f"      gpu: {{kind: vllm, gpu_memory_utilization: {vllm}}}\n"
        + (f"  tts: {{chain: [xtts, espeak], xtts: {{gpu_memory_fraction: {xtts}}}}}\n" if xtts else
           "  tts: {chain: [espeak]}\n")
    )
    return write_config(path, broker_url, data_dir, engines=engines)


def _run_doctor(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "doctor", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_doctor_weighs_the_gpu_against_the_engines(broker: MosquittoBroker, tmp_path: Path) -> None:
    no_gpu = {**os.environ, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    result = _run_doctor(_gpu_config(tmp_path / "a.yaml", broker, tmp_path / "d", 0.5, None), no_gpu)
    assert "FAIL gpu        llm/gpu (vLLM) need an NVIDIA GPU" in result.stdout and result.returncode == 1
    env = _fake_nvidia_smi(tmp_path / "bin", 12288)
    result = _run_doctor(_gpu_config(tmp_path / "b.yaml", broker, tmp_path / "d", 0.7, 0.3), env)
    assert "FAIL gpu        NVIDIA GeForce RTX 3060 12.0 GiB: llm/gpu (vLLM) 70%, tts/xtts 30% add up" in result.stdout
    result = _run_doctor(_gpu_config(tmp_path / "c.yaml", broker, tmp_path / "d", 0.55, 0.3), env)
    assert "OK   gpu        NVIDIA GeForce RTX 3060, 12.0 GiB, driver 550.54: llm/gpu (vLLM) 55%, tts/xtts 30%" in result.stdout
    # and the models those engines need are not on this machine: each one says where it looked
    assert "FAIL model      llm/gpu: Qwen/Qwen2.5-7B-Instruct-AWQ is not a directory under" in result.stdout
    assert "FAIL model      tts/xtts:" in result.stdout


def test_doctor_reads_the_running_daemons_modem_from_the_broker(broker: MosquittoBroker, tmp_path: Path) -> None:
    import pty

    master_at, slave_at = pty.openpty()
    master_audio, slave_audio = pty.openpty()
    at, audio = os.ttyname(slave_at), os.ttyname(slave_audio)
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    config.write_text(config.read_text().replace("driver: simulator", f"driver: sim7600\n  at_port: {at}\n  audio_port: {audio}"))
    try:
        # The daemon is not running: doctor opens the ports itself, and sees who else holds them.
        result = doctor(config)
        assert "WARN daemon     secretaryd is not running" in result.stdout
        assert f"FAIL at port    {at} is open in python" in result.stdout  # this test holds the slave end
        os.close(slave_audio)
        slave_audio = -1
        result = doctor(config)
        assert f"OK   audio port {audio} opens, nobody else holds it" in result.stdout

        # The daemon runs and reports a SIM that wants its PIN, no network, a weak signal.
        publish = [
            ("secretary/test-box/status", "online"),
            ("secretary/test-box/modem/state",
             '{"sim": "pin_required", "registered": false, "operator": null, "signal_dbm": -109, "ports": {}}'),
        ]
        asyncio.run(_publish_retained(broker, publish))
        result = doctor(config)
        assert "OK   daemon     secretaryd is online" in result.stdout
        assert "FAIL sim        the SIM wants its PIN" in result.stdout
        assert "FAIL network    not registered" in result.stdout
        assert "WARN signal     -109 dBm: weak" in result.stdout
        assert result.returncode == 1
    finally:
        for fd in (master_at, slave_at, master_audio, slave_audio):
            if fd >= 0:
                os.close(fd)
