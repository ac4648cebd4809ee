"""A real small disk for disk-full tests: a tmpfs of a given size mounted on a folder, and a file that fills it.

Mounting needs root (CAP_SYS_ADMIN); where it is not permitted the test is
skipped with the reason. ``fill`` writes until the kernel says ENOSPC, so
"full" is the file system's own verdict, not an imitation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """``path`` (created) is a tmpfs of ``size`` (``256k``, ``2m``) for the block; unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path, name: str = FILLER) -> Path:
    """Write ``directory/name`` until its file system is full (ENOSPC); returns the file."""
    path = directory / name
    block = b"\xa5" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        for size in (512, 64, 2):  # the last partial page too
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block[:size])
    finally:
        os.close(fd)
    return path


def free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize
