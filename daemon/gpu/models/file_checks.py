"""Checking a model directory against the lock: every file's size and sha256, and the installed marker.

``verify_files`` hashes the files (one overall progress bar, in bytes) and
lists every difference. A model directory that was verified when it was
installed holds ``.secretary-model.json`` (the marker: repository, revision,
each file's sha256, size and modification time), so a rerun can tell in a
moment that nothing changed; ``secretary gpu models --verify`` hashes again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from daemon.gpu.models.model_lock import LockedFile, ModelEntry

MARKER = ".secretary-model.json"
_CHUNK = 8 * 1024 * 1024


def progress(total: int, desc: str) -> tqdm:
    """A byte progress bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                disable=None, leave=False)


def sha256_file(path: Path, bar: tqdm | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return digest.hexdigest()


def verify_files(files: Sequence[LockedFile], directory: Path, desc: str) -> tuple[list[str], dict[str, str]]:
    """Problems of ``directory`` against ``files`` (empty: all match) and each present file's sha256.

    A file whose size or sha256 is unknown (an unverified entry) is checked only for what is known.
    """
    problems: list[str] = []
    present: list[LockedFile] = []
    for item in files:
        path = directory / item.path
        if not path.is_file():
            problems.append(f"{item.path} is missing")
            continue
        size = path.stat().st_size
        if item.size is not None and size != item.size:
            problems.append(f"{item.path} has {size} bytes, the lock says {item.size}")
            continue
        present.append(item)
    digests: dict[str, str] = {}
    with progress(sum((directory / f.path).stat().st_size for f in present), desc) as bar:
        for item in present:
            digests[item.path] = actual = sha256_file(directory / item.path, bar)
            if item.sha256 is not None and actual != item.sha256:
                problems.append(f"{item.path} has sha256 {actual}, the lock says {item.sha256}")
    return problems, digests


def write_marker(entry: ModelEntry, directory: Path, revision: str, digests: dict[str, str]) -> None:
    """Record in ``directory`` what was verified there (written last, before the directory is moved in)."""
    files = []
    for item in entry.files:
        stat = (directory / item.path).stat()
        files.append({"path": item.path, "size": stat.st_size, "sha256": digests[item.path], "mtime_ns": stat.st_mtime_ns})
    marker = {"name": entry.name, "repo": entry.repo, "revision": revision, "state": entry.state, "files": files}
    (directory / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def marker_matches(entry: ModelEntry, directory: Path) -> bool:
    """True when ``directory`` holds this entry as verified at install and no file changed since (no hashing)."""
    marker = read_marker(directory)
    if marker is None or marker.get("repo") != entry.repo:
        return False
    if entry.revision is not None and marker.get("revision") != entry.revision:
        return False
    recorded = {f.get("path"): f for f in marker.get("files", []) if isinstance(f, dict)}
    if set(recorded) != {f.path for f in entry.files}:
        return False
    for item in entry.files:
        seen = recorded[item.path]
        if item.sha256 is not None and seen.get("sha256") != item.sha256:
            return False
        try:
            stat = os.stat(directory / item.path)
        except OSError:
            return False
        if stat.st_size != seen.get("size") or stat.st_mtime_ns != seen.get("mtime_ns"):
            return False
    return True


def marker_files(directory: Path) -> list[LockedFile] | None:
    """The files (with the sha256 seen at install) a marker records, for checking an unverified entry."""
    marker = read_marker(directory)
    if marker is None:
        return None
    return [LockedFile(f["path"], f.get("size"), f.get("sha256")) for f in marker.get("files", [])
            if isinstance(f, dict) and isinstance(f.get("path"), str)]
