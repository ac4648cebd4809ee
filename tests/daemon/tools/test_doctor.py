"""`secretary doctor` reports each check and fails when something the box needs is missing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from channels.bus_contract.clients import DAEMON
from config.engines_schema import EnginesConfig
from config.loader import load_config
from daemon.gpu.gpu_profiles import RTX3060
from daemon.gpu.nvml_probe import GpuInfo, NvmlUnavailable
from daemon.gpu.profile_writer import write_profile
from daemon.gpu.vram_budget import compute_budget
from daemon.tools.doctor import _gpu
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import LIGHT_ENGINES, write_config

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


def test_doctor_warns_of_a_missing_turn_end_model(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Calls still work without it (the fixed silence window): a warning, not a failure."""
    missing = tmp_path / "smart-turn-v3.2-cpu.onnx"
    engines = LIGHT_ENGINES.replace("vad: {chain: [webrtc]}", f"vad: {{chain: [webrtc], turn_end_model: '{missing}'}}")
    assert str(missing) in engines
    result = doctor(write_config(tmp_path / "config.yaml", broker, tmp_path / "data", engines=engines))
    assert (f"WARN model      vad/turn-end: turn-end model {missing} does not exist; until then the turn ends "
            "after the fixed silence window") in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout


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
    # this machine has no NVIDIA driver: NVML (the real nvidia-ml-py) cannot start, and the GPU engines fail
    no_gpu = {**os.environ, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    result = _run_doctor(_gpu_config(tmp_path / "a.yaml", broker, tmp_path / "d", 0.5, 0.3), no_gpu)
    assert "FAIL gpu        llm/gpu (vLLM), tts/xtts need an NVIDIA GPU, and there is no usable driver" in result.stdout
    assert "apt-get install linux-headers-amd64 nvidia-driver" in result.stdout and result.returncode == 1
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


def test_doctor_checks_the_cpu_against_the_llama_build(broker: MosquittoBroker, tmp_path: Path) -> None:
    """The installed llama-cpp-python (built for the portable baseline) runs on this CPU."""
    result = doctor(write_config(tmp_path / "config.yaml", broker, tmp_path / "data"))
    assert "OK   llama cpu  libggml-cpu.so needs avx, avx2, bmi2, f16c, fma; this CPU has them" in result.stdout, \
        result.stdout


def test_llama_cpu_check_fails_for_a_build_using_what_the_cpu_lacks(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A native build's AVX-512 on a CPU without it: FAIL in plain words, from objdump or from the build record."""
    from engines.llm.llama_cpu_build import check_cpu, read_cpu_flags, scan_library, write_build_info
    from tests.support.avx512_library import build_avx512_library

    library = build_avx512_library(tmp_path)
    no_record = tmp_path / "none.json"
    without_avx512 = frozenset(f for f in read_cpu_flags() if not f.startswith("avx512")) | {"avx", "avx2"}
    level, detail = check_cpu(library, without_avx512, no_record)
    assert level == "FAIL", detail
    assert detail.startswith("libggml-cpu.so uses avx512f (avx512f 3, ") and "would die with SIGILL" in detail
    assert "scripts/bootstrap" in detail
    assert check_cpu(library, without_avx512 | {"avx512f"}, no_record) == (
        "OK", "libggml-cpu.so needs avx, avx512f; this CPU has them")

    # On the box there is no objdump: the scan the build recorded answers, if it is this very library's.
    record = tmp_path / "llama-cpu-build.json"
    write_build_info(scan_library(library), "-DGGML_NATIVE=ON", record)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert check_cpu(library, without_avx512, record)[0] == "FAIL"
    library.write_bytes(library.read_bytes() + b"\0")  # another build than the one recorded
    level, detail = check_cpu(library, without_avx512, record)
    assert level == "WARN" and "objdump is not installed" in detail, detail


def _card(total_mib: int, free_mib: int | None = None) -> Callable[[], list[GpuInfo]]:
    """NVML's answer for one card (the boundary this machine cannot reach; tests/daemon/gpu/test_nvml_probe.py
    runs the real probe against a stand-in library)."""
    card = GpuInfo(0, "NVIDIA GeForce RTX 3060", total_mib, total_mib - 300 if free_mib is None else free_mib,
                   "550.54.14", (12, 4))
    return lambda: [card]


def _profile_engines(tmp_path: Path) -> EnginesConfig:
    """The engines `secretary gpu setup` writes for the rtx3060 profile (a 12 GB card's figures)."""
    config = tmp_path / "config.yaml"
    config.write_text((REPO / "config" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    write_profile(config, RTX3060, compute_budget(RTX3060, 12288), environ={})
    return load_config(config, environ={}).settings.engines


def test_doctor_shows_the_vram_budget_against_the_real_card(tmp_path: Path) -> None:
    engines = _profile_engines(tmp_path)
    checks = _gpu(engines, _card(12288, free_mib=11950))
    assert (checks[0].name, checks[0].level) == ("gpu", "OK")
    assert checks[0].detail.startswith("NVIDIA GeForce RTX 3060, 12288 MiB (11950 MiB free), driver 550.54.14, "
                                       "CUDA 12.4: the configured engines fit")
    table = [c.detail for c in checks[1:]]
    assert all(c.name == "vram" and c.level == "OK" for c in checks[1:])
    for consumer in ("vLLM server: weights", "vLLM server: KV cache", "XTTS worker: XTTS v2 (gpu_memory_fraction 0.19)",
                     "secretaryd (whisper): whisper large-v3-turbo (int8_float16)"):
        assert any(line.startswith(consumer) for line in table), consumer
    assert sum(line.count("CUDA context") for line in table) == 3
    assert any("MiB of 12288 MiB" in line and "11950 MiB free now" in line for line in table)


def test_doctor_fails_when_the_configured_figures_do_not_fit_the_card(tmp_path: Path) -> None:
    checks = _gpu(_profile_engines(tmp_path), _card(8192))
    assert (checks[0].name, checks[0].level) == ("gpu", "FAIL")
    assert "8192 MiB" in checks[0].detail and "the configured engines do not fit" in checks[0].detail
    assert "MiB more than the card has: lower gpu_memory_utilization / gpu_memory_fraction" in checks[0].detail
    assert "`secretary gpu setup` writes figures that fit" in checks[0].detail


def test_doctor_without_a_driver_passes_cpu_engines_and_fails_gpu_ones(tmp_path: Path) -> None:
    def no_driver() -> list[GpuInfo]:
        raise NvmlUnavailable("no usable NVIDIA driver: libnvidia-ml.so.1 is not installed.\nInstall the NVIDIA driver")

    cpu = EnginesConfig.model_validate({"stt": {"faster_whisper": {"device": "cpu"}}})
    assert [(c.level, c.detail) for c in _gpu(cpu, no_driver)] == [
        ("OK", "no NVIDIA driver; the configured engines run on the CPU")]
    failed = _gpu(_profile_engines(tmp_path), no_driver)
    assert len(failed) == 1 and failed[0].level == "FAIL"
    assert failed[0].detail.startswith("llm/vllm (vLLM), tts/xtts, stt/faster-whisper need an NVIDIA GPU")
    assert "Install the NVIDIA driver" in failed[0].detail
    # a card and only CPU engines: nothing of the budget to show
    assert [(c.level, c.detail) for c in _gpu(cpu, _card(12288))] == [
        ("OK", "NVIDIA GeForce RTX 3060, 12288 MiB (11988 MiB free), driver 550.54.14, CUDA 12.4: "
               "no GPU engines configured")]
