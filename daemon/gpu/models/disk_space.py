"""Free disk space before a fetch, import or export: enough for what is still missing, with a margin."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.gpu.models.model_errors import ModelInstallError

MARGIN_BYTES = 256 * 1024 * 1024  # room left for the box's own writes (logs, recordings) once the models are in


def free_bytes(path: Path) -> int:
    """Free bytes (for an unprivileged writer) on the file system ``path`` is or would be created on."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def check_space(needed: int, where: Path, *, margin: int = MARGIN_BYTES, what: str = "the models") -> None:
    """Raise ModelInstallError unless ``where`` has ``needed`` bytes plus ``margin`` free."""
    if needed <= 0:
        return
    free = free_bytes(where)
    if free < needed + margin:
        short = needed + margin - free
        raise ModelInstallError(
            f"not enough disk space in {where} for {what}: {human(needed)} still to write + {human(margin)} margin, "
            f"{human(free)} free. Free {human(short)} there, or set engines.models_dir to a larger disk "
            "(nothing was written)"
        )
