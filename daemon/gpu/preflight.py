"""What ``secretary gpu setup`` checks before it changes anything: GPU and driver, CUDA, Python, disk.

``run_preflight`` reads the GPUs through NVML (``nvml_probe``), holds the
driver's CUDA version against every constraint file's ``@cuda-driver`` (the
pinned torch wheels' need), finds a Python that every constraint file's
``@python`` accepts and that can make a venv (``venv`` + ``ensurepip``: on
Debian the ``python3-venv`` package), checks the free disk on each file
system the venvs and models go to: the venvs not yet made (``@disk-gib``) and
the models not yet in place (the lock file's sizes), and that this user may
write the venvs, the models directory and the config. The first problem raises
``PreflightError`` (or ``NvmlUnavailable``, with the Debian driver steps);
nothing has been changed by then.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from daemon.gpu.engine_venvs import EngineVenv
from daemon.gpu.nvml_probe import GpuInfo, probe_gpus

GIB: Final = 1024**3
# The Pythons a venv may be made with, newest Debian first (bookworm has 3.11); the first the pins accept wins.
PYTHON_CANDIDATES: Final = ("python3.11", "python3.12", "python3.13", "python3.10", "python3")
_PYTHON_CHECK: Final = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"


class PreflightError(RuntimeError):
    """A check failed before anything was changed; the message says what and what to do."""


@dataclass(frozen=True)
class Preflight:
    gpu: GpuInfo  # the card the profile is sized for: the first NVML lists
    gpus: tuple[GpuInfo, ...]
    python: str
    lines: tuple[str, ...]  # what was checked, for the owner


def check_cuda(gpu: GpuInfo, venvs: Sequence[EngineVenv]) -> str:
    """The driver's CUDA against every constraint file's ``@cuda-driver``; PreflightError when older."""
    need = max((v.constraints.cuda_driver for v in venvs), default=(0, 0))
    if gpu.cuda_driver_version < need:
        wanting = ", ".join(f"{v.constraints.path.name} (@cuda-driver {v.constraints.cuda_text})" for v in venvs
                            if v.constraints.cuda_driver > gpu.cuda_driver_version)
        raise PreflightError(
            f"the NVIDIA driver {gpu.driver_version} supports CUDA {gpu.cuda_text}, older than the pinned wheels "
            f"need: {wanting}. What to do: install a newer driver (Debian: apt-get install nvidia-driver from "
            "bookworm or bookworm-backports), reboot, and run `secretary gpu setup` again.")
    return f"CUDA {gpu.cuda_text} of driver {gpu.driver_version} >= {need[0]}.{need[1]} (the pinned wheels' need)"


def find_python(venvs: Sequence[EngineVenv], candidates: Iterable[str] = PYTHON_CANDIDATES) -> tuple[str, tuple[int, int]]:
    """The first Python every constraint file accepts and that can make a venv with pip."""
    seen: list[str] = []
    for name in candidates:
        path = shutil.which(name)
        if path is None or path in seen:
            continue
        seen.append(path)
        done = subprocess.run([path, "-c", _PYTHON_CHECK], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            version = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                     capture_output=True, text=True, check=False).stdout.strip() or "3"
            seen[-1] = f"{path} (no venv/ensurepip: apt-get install python{version}-venv)"
            continue
        major, minor = (int(part) for part in done.stdout.strip().split("."))
        if all(v.constraints.python_ok((major, minor)) for v in venvs):
            return path, (major, minor)
        seen[-1] = f"{path} ({major}.{minor})"
    wants = "; ".join(f"{v.constraints.path.name}: Python {v.constraints.python}" for v in venvs)
    raise PreflightError(f"no Python on PATH can make the engine venvs ({wants}); found: {', '.join(seen) or 'none'}. "
                         "What to do (Debian bookworm): apt-get install python3.11 python3.11-venv")


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (what ``disk_usage`` can measure before it is made)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def check_disk(needs: Sequence[tuple[Path, int, str]]) -> list[str]:
    """``(path, bytes, what)`` summed per file system against its free space; PreflightError naming the shortfall."""
    by_device: dict[int, tuple[Path, int, list[str]]] = {}
    for path, nbytes, what in needs:
        where = _existing(path)
        device = os.stat(where).st_dev
        mount, total, whats = by_device.get(device, (where, 0, []))
        by_device[device] = (mount, total + nbytes, [*whats, f"{what} {nbytes / GIB:.1f} GiB"])
    lines = []
    for mount, total, whats in by_device.values():
        free = shutil.disk_usage(mount).free
        if total > free:
            raise PreflightError(f"not enough disk at {mount}: {total / GIB:.1f} GiB needed ({', '.join(whats)}), "
                                 f"{free / GIB:.1f} GiB free. What to do: free {(total - free) / GIB:.1f} GiB there "
                                 "(or point engines.models_dir at a bigger disk) and run `secretary gpu setup` again.")
        lines.append(f"disk at {mount}: {free / GIB:.1f} GiB free, {total / GIB:.1f} GiB needed ({', '.join(whats)})")
    return lines


def check_writable(paths: Iterable[Path]) -> str:
    """Every path (or the parent it will be made in) is writable by this user; PreflightError naming the first not."""
    checked = []
    for path in paths:
        where = _existing(path)
        if not os.access(where, os.W_OK):
            raise PreflightError(f"{where} is not writable by this user, and {path} must be written: run it as root "
                                 "(sudo secretary gpu setup ...).")
        checked.append(str(path))
    return f"writable: {', '.join(checked)}"


def run_preflight(venvs: Sequence[EngineVenv], model_needs: Sequence[tuple[Path, int, str]],
                  written: Sequence[Path] = ()) -> Preflight:
    """Every check, in order; the first failure raises (NvmlUnavailable or PreflightError)."""
    gpus = probe_gpus()
    gpu = gpus[0]
    lines = [g.describe() for g in gpus]
    lines.append(check_cuda(gpu, venvs))
    python, version = find_python(venvs)
    lines.append(f"Python {version[0]}.{version[1]} ({python}) for the venvs")
    needs = [(v.path, v.constraints.disk_bytes, f"{v.engine} venv") for v in venvs if not v.is_current()]
    lines.extend(check_disk([*needs, *model_needs]))
    lines.append(check_writable([*(v.path for v in venvs), *written]))
    return Preflight(gpu, tuple(gpus), python, tuple(lines))
