"""The preflight's checks for real: this machine's Pythons and disk, the driver's CUDA against the constraint files,
and no NVIDIA driver here (nothing checked after it)."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from daemon.gpu.engine_venvs import EngineVenv, parse_constraints
from daemon.gpu.models.model_lock import repository_file
from daemon.gpu.nvml_probe import GpuInfo, NvmlUnavailable
from daemon.gpu.preflight import (
    GIB,
    PreflightError,
    check_cuda,
    check_disk,
    check_writable,
    find_python,
    run_preflight,
)

RTX3060 = GpuInfo(0, "NVIDIA GeForce RTX 3060", 12288, 11900, "535.261.03", (12, 2))


def _venv(tmp_path: Path, python: str = ">=3.10,<3.14", cuda: str = "12.0", name: str = "vllm") -> EngineVenv:
    path = tmp_path / f"constraints-{name}.txt"
    path.write_text(f"# @install: {name}\n# @python: {python}\n# @cuda-driver: {cuda}\n# @disk-gib: 2\n{name}==1.0\n")
    return EngineVenv(name, tmp_path / "venvs" / name, parse_constraints(path))


def test_the_repository_constraint_files_accept_bookworms_driver_and_python() -> None:
    """Debian bookworm's nvidia-driver (535, CUDA 12.2) and python3.11 pass the pins' own header facts."""
    for name in ("vllm", "xtts"):
        constraints = parse_constraints(repository_file(f"constraints-{name}.txt"))
        assert constraints.cuda_driver <= RTX3060.cuda_driver_version
        assert constraints.python_ok((3, 11))
        assert constraints.disk_bytes > GIB


def test_a_driver_too_old_for_the_pinned_wheels_stops(tmp_path: Path) -> None:
    venvs = [_venv(tmp_path, cuda="12.0"), _venv(tmp_path, cuda="12.8", name="xtts")]
    with pytest.raises(PreflightError) as caught:
        check_cuda(RTX3060, venvs)
    assert "supports CUDA 12.2" in str(caught.value) and "constraints-xtts.txt (@cuda-driver 12.8)" in str(caught.value)
    assert "vllm" not in str(caught.value).split("need:")[1]
    assert "12.2" in check_cuda(RTX3060, [venvs[0]])


def test_a_python_the_pins_accept_is_found(tmp_path: Path) -> None:
    major, minor = sys.version_info[:2]
    python, version = find_python([_venv(tmp_path, python=f">={major}.{minor},<{major}.{minor + 1}")],
                                  candidates=(sys.executable,))
    assert version == (major, minor) and Path(python).exists()


def test_no_acceptable_python_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(PreflightError) as caught:
        find_python([_venv(tmp_path, python=">=3.99")], candidates=(sys.executable, "no-such-python"))
    assert "apt-get install python3.11 python3.11-venv" in str(caught.value)
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in str(caught.value)  # what it found, and why not


def test_disk_is_summed_per_file_system(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    lines = check_disk([(tmp_path / "a" / "venv", GIB, "vLLM venv"), (tmp_path / "models", GIB, "model x")])
    assert len(lines) == 1 and "2.0 GiB needed (vLLM venv 1.0 GiB, model x 1.0 GiB)" in lines[0]
    with pytest.raises(PreflightError) as caught:
        check_disk([(tmp_path / "venv", free // 2 + GIB, "vLLM venv"), (tmp_path / "models", free // 2 + GIB, "m")])
    assert "not enough disk" in str(caught.value) and "engines.models_dir" in str(caught.value)


def test_no_driver_stops_before_anything_else(tmp_path: Path) -> None:
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("this machine has an NVIDIA driver")
    with pytest.raises(NvmlUnavailable, match="apt-get install linux-headers-amd64 nvidia-driver"):
        run_preflight([_venv(tmp_path, python=">=3.99")], [(tmp_path, 10**18, "a model too big")])


def test_paths_this_user_cannot_write_stop_it(tmp_path: Path) -> None:
    assert "writable:" in check_writable([tmp_path / "new" / "venv", tmp_path])
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("root writes anywhere: a read-only directory cannot be shown to it")
    with pytest.raises(PreflightError, match="run it as root"):
        check_writable([locked / "opt" / "vllm"])
