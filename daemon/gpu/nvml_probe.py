"""The NVIDIA GPUs as the driver's NVML library reports them (``nvidia-ml-py``; no ``nvidia-smi`` text parsed).

``probe_gpus()`` loads ``libnvidia-ml.so.1`` (shipped with the driver), reads
each GPU's name and memory, the driver's version and the CUDA version the
driver supports, and shuts NVML down again. It blocks (a dlopen and driver
calls): async callers run it in a thread. No library, or a library without a
loaded kernel driver, raises ``NvmlUnavailable`` whose message holds the
Debian steps that install the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pynvml

MIB: Final = 1024 * 1024

#: What turns a Debian bookworm box into one with a working NVIDIA driver (image/README.md, "The GPU box").
DEBIAN_DRIVER_STEPS: Final = """\
Install the NVIDIA driver (Debian bookworm, as root):
  1. In /etc/apt/sources.list (or /etc/apt/sources.list.d/debian.sources) let every Debian entry end
     'main contrib non-free non-free-firmware', and remove /etc/apt/preferences.d/secretary-non-free
     (it lets apt take only RHVoice from non-free).
  2. apt-get update
     apt-get install linux-headers-amd64 nvidia-driver firmware-misc-nonfree nvidia-persistenced
  3. printf 'nvidia\\nnvidia-uvm\\n' > /etc/modules-load.d/nvidia.conf   (the units cannot load them themselves)
  4. reboot, then run `secretary gpu setup` again.
  (With Secure Boot on, the DKMS module must be signed: see Debian's NVIDIA wiki page.)"""


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used: no driver library, no kernel driver, or no GPU. The message says what to do."""


@dataclass(frozen=True)
class GpuInfo:
    """One GPU: its name, memory in MiB, the driver's version and the CUDA version it supports (e.g. 12.2)."""

    index: int
    name: str
    total_mib: int
    free_mib: int
    driver_version: str
    cuda_driver_version: tuple[int, int]

    @property
    def cuda_text(self) -> str:
        return f"{self.cuda_driver_version[0]}.{self.cuda_driver_version[1]}"

    def describe(self) -> str:
        return (f"GPU {self.index}: {self.name}, {self.total_mib} MiB ({self.free_mib} MiB free), "
                f"driver {self.driver_version}, CUDA {self.cuda_text}")


def cuda_version_of(encoded: int) -> tuple[int, int]:
    """NVML's CUDA version integer (1000 * major + 10 * minor: 12020) as (12, 2)."""
    return encoded // 1000, (encoded % 1000) // 10


def _unavailable(reason: str) -> NvmlUnavailable:
    return NvmlUnavailable(f"no usable NVIDIA driver: {reason}.\n{DEBIAN_DRIVER_STEPS}")


def _memory(handle: object) -> tuple[int, int]:
    """(total, free) bytes: the v2 struct (driver-reserved memory counted as not free), v1 on drivers before it."""
    try:
        info = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    except pynvml.NVMLError_FunctionNotFound:
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return int(info.total), int(info.free)


def probe_gpus() -> list[GpuInfo]:
    """Every GPU NVML sees. Raises ``NvmlUnavailable`` (with the Debian steps) when there is none to see."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        raise _unavailable("libnvidia-ml.so.1 (the driver's NVML library) is not installed") from None
    except pynvml.NVMLError_DriverNotLoaded:
        raise _unavailable("the NVIDIA kernel driver is not loaded (installed but not booted into, "
                           "or blocked by Secure Boot)") from None
    except pynvml.NVMLError as exc:
        raise _unavailable(f"NVML could not start: {exc}") from None
    try:
        driver = str(pynvml.nvmlSystemGetDriverVersion())
        cuda = cuda_version_of(int(pynvml.nvmlSystemGetCudaDriverVersion_v2()))
        gpus = []
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            total, free = _memory(handle)
            gpus.append(GpuInfo(index, str(pynvml.nvmlDeviceGetName(handle)), total // MIB, free // MIB, driver, cuda))
    except pynvml.NVMLError as exc:
        raise _unavailable(f"NVML failed while reading the GPUs: {exc}") from None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    if not gpus:
        raise NvmlUnavailable(f"the NVIDIA driver {driver} sees no GPU: is the card seated and powered "
                              "(lspci | grep -i nvidia)?")
    return gpus
