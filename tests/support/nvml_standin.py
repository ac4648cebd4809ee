"""Builds ``nvml_standin.c`` into a ``libnvidia-ml.so.1`` and gives the environment that makes pynvml load it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).with_name("nvml_standin.c")
LIBRARY_NAME = "libnvidia-ml.so.1"  # what pynvml dlopens


def build_standin(directory: Path) -> Path:
    """Compile the stand-in into ``directory``; skips the test when this machine has no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the NVML stand-in: scripts/bootstrap --test installs gcc")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([compiler, "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(directory / LIBRARY_NAME),
                    str(SOURCE)], check=True)
    return directory


def standin_env(library_dir: Path, **values: str) -> dict[str, str]:
    """This process's environment with the stand-in first on the loader's path and its ``NVML_STANDIN_*`` values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NVML_STANDIN_")}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(library_dir), env.get("LD_LIBRARY_PATH", "")) if p)
    env.update({f"NVML_STANDIN_{key.upper()}": value for key, value in values.items()})
    return env
