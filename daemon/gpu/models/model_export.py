"""Write the installed models to a stick (``secretary gpu models --export DIR``) for a box with no internet.

The stick gets the same layout as ``engines.models_dir`` (``DIR/<target>/<file>``)
and the lock file of what it holds (``DIR/gpu-models.lock.json``), so it says
itself what it carries and ``--from DIR`` on the other box checks it the same
way. Every installed file is verified against the lock before it is copied;
each model is copied into ``DIR/.partial/<name>/`` (a cut copy continues),
read back and hashed from the stick, and only then renamed to ``DIR/<target>``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from daemon.gpu.models.disk_space import check_space, human
from daemon.gpu.models.file_checks import marker_files, marker_matches, verify_files, write_marker
from daemon.gpu.models.hub_fetch import PART_SUFFIX
from daemon.gpu.models.model_errors import ModelInstallError
from daemon.gpu.models.model_install import STAGING, copy_resumable
from daemon.gpu.models.model_lock import LOCK_NAME, LockedFile, ModelEntry, ModelLock, write_lock


def _expected(entry: ModelEntry, source: Path, allow_unverified: bool) -> list[LockedFile]:
    if entry.pinned:
        return list(entry.files)
    recorded = marker_files(source) if allow_unverified else None
    if recorded is None:
        raise ModelInstallError(f"{entry.name} is not pinned in the lock file, so the stick could not be checked "
                                "on the other box: pin it with `secretary gpu models --lock`, leave it out with "
                                "--only, or pass --allow-unverified to export the hashes seen when it was installed")
    return recorded


def export_models(lock: ModelLock, models_dir: Path, dest: Path, *, dry_run: bool = False, out: TextIO = sys.stdout,
                  allow_unverified: bool = False, margin_bytes: int = 0) -> list[Path]:
    """Copy every model of ``lock`` from ``models_dir`` to ``dest``; returns the model directories on the stick."""
    plans: list[tuple[ModelEntry, Path, list[LockedFile]]] = []
    for entry in lock.models:
        source = models_dir / entry.target
        if not source.is_dir():
            raise ModelInstallError(f"{entry.name} is not installed ({source} does not exist): install it first with "
                                    "`secretary gpu models`, or leave it out with --only")
        plans.append((entry, source, _expected(entry, source, allow_unverified)))
    if dry_run:
        for entry, source, files in plans:
            for item in files:
                print(f"would copy {source / item.path} -> {dest / entry.target / item.path}", file=out)
        print(f"would write {dest / LOCK_NAME}", file=out)
        return []
    for entry, source, files in plans:
        problems, _ = verify_files(files, source, f"verify {entry.name}")
        if problems:
            raise ModelInstallError(f"the installed {entry.name} in {source} does not match the lock file: "
                                    f"{'; '.join(problems)}. Reinstall it with `secretary gpu models` before exporting")
    dest.mkdir(parents=True, exist_ok=True)
    todo = {e.name for e, _, f in plans if not _on_stick(e, dest / e.target, f)}
    check_space(sum(f.size or 0 for e, _, files in plans if e.name in todo for f in files), dest, margin=margin_bytes,
                what="the models on the stick")
    written: list[Path] = []
    for entry, source, files in plans:
        target = dest / entry.target
        if entry.name in todo:
            _copy_model(entry, source, files, dest, target)
            print(f"{entry.name}: written to {target} ({human(sum(f.size or 0 for f in files))})", file=out)
        else:
            print(f"{entry.name}: already on the stick in {target}", file=out)
        written.append(target)
    stick = replace(lock, path=dest / LOCK_NAME,
                    models=tuple(replace(e, files=tuple(f)) for e, _, f in plans))
    write_lock(stick, dest / LOCK_NAME)
    print(f"wrote {dest / LOCK_NAME}", file=out)
    staging = dest / STAGING
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    return written


def _on_stick(entry: ModelEntry, target: Path, files: list[LockedFile]) -> bool:
    return target.is_dir() and marker_matches(replace(entry, files=tuple(files)), target)


def _copy_model(entry: ModelEntry, source: Path, files: list[LockedFile], dest: Path, target: Path) -> None:
    stage = dest / STAGING / entry.name
    try:
        for item in files:
            staged = stage / item.path
            if staged.is_file() and staged.stat().st_size == item.size:
                continue
            part = stage / (item.path + PART_SUFFIX)
            part.parent.mkdir(parents=True, exist_ok=True)
            copy_resumable(source / item.path, part)
            os.replace(part, staged)
    except OSError as exc:
        raise ModelInstallError(f"writing {entry.name} to {stage} failed: {exc.strerror or exc}. "
                                "A rerun continues where it stopped") from None
    problems, digests = verify_files(files, stage, f"read back {entry.name}")  # what the stick really holds
    if problems:
        shutil.rmtree(stage, ignore_errors=True)
        raise ModelInstallError(f"the stick did not keep {entry.name} intact: {'; '.join(problems)}. "
                                "Try another stick or port")
    write_marker(replace(entry, files=tuple(files)), stage, entry.revision or "", digests)
    if target.exists():
        old = stage.with_name(stage.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(stage, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, target)
