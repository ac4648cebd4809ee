"""The NVML probe for real: this machine has no NVIDIA driver (the absent case), and a C stand-in of the driver's
libnvidia-ml.so.1 loaded by the real pynvml in a subprocess (the present case, and a driver that is not loaded)."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.gpu.nvml_probe import DEBIAN_DRIVER_STEPS, NvmlUnavailable, cuda_version_of, probe_gpus
from tests.support.nvml_standin import build_standin, standin_env

REPO = Path(__file__).resolve().parents[3]
PROBE = """
import json
from dataclasses import asdict
from daemon.gpu.nvml_probe import NvmlUnavailable, probe_gpus
try:
    print(json.dumps({"gpus": [asdict(g) for g in probe_gpus()]}))
except NvmlUnavailable as exc:
    print(json.dumps({"unavailable": str(exc)}))
"""


def _probe_in_subprocess(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("nvml"))


def test_no_driver_library_says_how_to_install_the_driver() -> None:
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("this machine has an NVIDIA driver: the absent case cannot be shown here")
    with pytest.raises(NvmlUnavailable) as caught:
        probe_gpus()
    message = str(caught.value)
    assert "libnvidia-ml.so.1" in message
    assert DEBIAN_DRIVER_STEPS in message
    assert "apt-get install linux-headers-amd64 nvidia-driver firmware-misc-nonfree" in message
    assert "contrib non-free non-free-firmware" in message and "reboot" in message


def test_the_standin_rtx_3060_is_read_through_pynvml(standin: Path) -> None:
    result = _probe_in_subprocess(standin_env(standin, name="NVIDIA GeForce RTX 3060", total_mib="12288",
                                              free_mib="11900", driver="535.261.03", cuda="12020"))
    assert result == {"gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 3060", "total_mib": 12288,
                                "free_mib": 11900, "driver_version": "535.261.03",
                                "cuda_driver_version": [12, 2]}]}


def test_two_gpus_are_both_listed(standin: Path) -> None:
    result = _probe_in_subprocess(standin_env(standin, count="2", name="NVIDIA RTX A4000", total_mib="16376"))
    assert [g["index"] for g in result["gpus"]] == [0, 1]
    assert {g["name"] for g in result["gpus"]} == {"NVIDIA RTX A4000"}


def test_driver_not_loaded_gives_the_steps(standin: Path) -> None:
    result = _probe_in_subprocess(standin_env(standin, init_error="9"))  # NVML_ERROR_DRIVER_NOT_LOADED
    assert "kernel driver is not loaded" in result["unavailable"]
    assert DEBIAN_DRIVER_STEPS in result["unavailable"]


def test_a_driver_that_sees_no_gpu_says_so(standin: Path) -> None:
    result = _probe_in_subprocess(standin_env(standin, count="0"))
    assert "sees no GPU" in result["unavailable"] and "535.261.03" in result["unavailable"]


def test_cuda_version_decoding() -> None:
    assert cuda_version_of(12020) == (12, 2)
    assert cuda_version_of(12080) == (12, 8)
    assert cuda_version_of(13000) == (13, 0)
