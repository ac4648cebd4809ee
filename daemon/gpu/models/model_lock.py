"""The lock file of the GPU models (``gpu-models.lock.json``): typed, validated, written back atomically.

Each entry names a Hub repository, the commit it is pinned to, the directory
under ``engines.models_dir`` it is installed as, and every file with its size
and sha256. An entry is ``pinned`` only when all of those are known; one whose
sizes or hashes could not be verified says ``unverified`` (and install refuses
it unless the owner allows it, see ``model_install``). ``secretary gpu models
--lock`` fills an unverified entry from the Hub's own metadata.

Problems are reported with the entry and field they are in, e.g.
``gpu-models.lock.json: models[1] (xtts-v2).files[0].sha256: ...``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

LOCK_NAME = "gpu-models.lock.json"
BOX_ROOT = Path("/opt/secretary")  # where image/build-rootfs puts the repository's files on the box
SCHEMA = 1
ROLES = ("llm", "tts", "stt", "lora")
STATES = ("pinned", "unverified")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOP_KEYS = {"schema", "about", "notes", "models"}
_ENTRY_KEYS = {"name", "role", "repo", "revision", "target", "used_by", "state", "source", "approx_bytes", "files"}
_FILE_KEYS = {"path", "size", "sha256"}

State = Literal["pinned", "unverified"]


class LockError(ValueError):
    """The lock file is missing or wrong; the message names the entry and field and what is allowed."""


def repository_file(name: str) -> Path:
    """A file kept at the repository's root: there in a checkout, else in /opt/secretary (the box)."""
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").is_file() and (root / "daemon").is_dir():
        return root / name
    return BOX_ROOT / name


def default_lock_path() -> Path:
    return repository_file(LOCK_NAME)


@dataclass(frozen=True)
class LockedFile:
    path: str  # relative, '/'-separated, inside the model's directory
    size: int | None
    sha256: str | None

    @property
    def known(self) -> bool:
        return self.size is not None and self.sha256 is not None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str
    repo: str
    revision: str | None
    target: str  # the directory under engines.models_dir
    files: tuple[LockedFile, ...]
    state: State = "unverified"
    used_by: str = ""
    source: str = ""
    approx_bytes: int | None = None  # an estimate for the disk check while sizes are unknown

    @property
    def pinned(self) -> bool:
        return self.state == "pinned"

    @property
    def total_bytes(self) -> int:
        """The exact size when every file's is known, else the entry's estimate (or what is known)."""
        known = sum(f.size or 0 for f in self.files)
        if all(f.size is not None for f in self.files):
            return known
        return max(known, self.approx_bytes or 0)

    def unknowns(self) -> list[str]:
        """What keeps this entry from being pinned (empty when it is)."""
        missing = [] if self.revision else ["revision"]
        missing += [f"{f.path} size" for f in self.files if f.size is None]
        missing += [f"{f.path} sha256" for f in self.files if f.sha256 is None]
        return missing


@dataclass(frozen=True)
class ModelLock:
    path: Path
    models: tuple[ModelEntry, ...]
    about: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_bytes(self) -> int:
        """Bytes all entries take once installed (unverified entries: their estimate)."""
        return sum(entry.total_bytes for entry in self.models)

    def entry(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise LockError(f"{self.path}: no model named {name!r} (known: {', '.join(e.name for e in self.models)})")

    def select(self, names: list[str] | None) -> ModelLock:
        """Only the entries named (all when ``names`` is empty or None), in the lock's order."""
        if not names:
            return self
        for name in names:
            self.entry(name)
        return replace(self, models=tuple(e for e in self.models if e.name in names))

    def with_entry(self, new: ModelEntry) -> ModelLock:
        return replace(self, models=tuple(new if e.name == new.name else e for e in self.models))


# -- reading -----------------------------------------------------------------


def load_lock(path: Path | None = None) -> ModelLock:
    """Read and validate the lock file (default: the repository's ``gpu-models.lock.json``)."""
    path = path or default_lock_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{path}: the lock file does not exist (it ships at the repository's root as {LOCK_NAME})") from None
    except OSError as exc:
        raise LockError(f"{path}: cannot read the lock file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LockError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_lock(data, path)


def parse_lock(data: Any, path: Path) -> ModelLock:
    where = str(path)
    if not isinstance(data, dict):
        raise LockError(f"{where}: the top level must be an object with 'schema' and 'models'")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise LockError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if data.get("schema") != SCHEMA:
        raise LockError(f"{where}: schema is {data.get('schema')!r}; this version reads schema {SCHEMA}")
    models = data.get("models")
    if not isinstance(models, list):
        raise LockError(f"{where}: models must be a list of model entries")
    entries = tuple(_entry(raw, f"{where}: models[{i}]") for i, raw in enumerate(models))
    twice = _first_repeated(e.name for e in entries)
    if twice is not None:
        raise LockError(f"{where}: the model name {twice!r} appears twice; names are unique")
    targets = [e.target for e in entries]
    clash = [t for i, t in enumerate(targets) if any(_nested(t, o) for o in targets[:i])]
    if clash:
        raise LockError(f"{where}: the target {clash[0]!r} is used by two entries (or one inside the other)")
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise LockError(f"{where}: notes must be a list of strings")
    about = data.get("about", "")
    if not isinstance(about, str):
        raise LockError(f"{where}: about must be a string")
    return ModelLock(path=path, models=entries, about=about, notes=tuple(notes))


def _first_repeated(items: Iterable[str]) -> str | None:
    """The first item that appeared before it, or None."""
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def _nested(a: str, b: str) -> bool:
    pa, pb = PurePosixPath(a).parts, PurePosixPath(b).parts
    return pa[: len(pb)] == pb or pb[: len(pa)] == pa


def _entry(raw: Any, where: str) -> ModelEntry:
    if not isinstance(raw, dict):
        raise LockError(f"{where}: must be an object")
    name = raw.get("name")
    if isinstance(name, str):
        where = f"{where} ({name})"
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise LockError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
    if not isinstance(name, str) or not _NAME.match(name):
        raise LockError(f"{where}.name: {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    role = raw.get("role")
    if role not in ROLES:
        raise LockError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
    repo = raw.get("repo")
    if not isinstance(repo, str) or not _REPO.match(repo):
        raise LockError(f"{where}.repo: {repo!r} must be a Hub repository id like 'owner/name'")
    revision = raw.get("revision")
    if revision is not None and (not isinstance(revision, str) or not _COMMIT.match(revision)):
        raise LockError(f"{where}.revision: {revision!r} must be a 40-hex commit id (not a branch or tag), or null")
    target = _relative(raw.get("target"), f"{where}.target")
    state = raw.get("state", "unverified")
    if state not in STATES:
        raise LockError(f"{where}.state: {state!r} is not one of {', '.join(STATES)}")
    files_raw = raw.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        raise LockError(f"{where}.files: must list the model's files (at least one)")
    files = tuple(_file(f, f"{where}.files[{i}]") for i, f in enumerate(files_raw))
    twice = _first_repeated(f.path for f in files)
    if twice is not None:
        raise LockError(f"{where}.files: {twice!r} is listed twice")
    approx = raw.get("approx_bytes")
    if approx is not None and (not isinstance(approx, int) or isinstance(approx, bool) or approx < 0):
        raise LockError(f"{where}.approx_bytes: {approx!r} must be a whole number of bytes or null")
    for key in ("used_by", "source"):
        if not isinstance(raw.get(key, ""), str):
            raise LockError(f"{where}.{key}: must be a string")
    entry = ModelEntry(
        name=name, role=role, repo=repo, revision=revision, target=target, files=files, state=state,
        used_by=raw.get("used_by", ""), source=raw.get("source", ""), approx_bytes=approx,
    )
    if state == "pinned" and entry.unknowns():
        raise LockError(f"{where}: state is pinned but {', '.join(entry.unknowns())} "
                        "is missing; set state to unverified or run `secretary gpu models --lock`")
    return entry


def _file(raw: Any, where: str) -> LockedFile:
    if not isinstance(raw, dict):
        raise LockError(f"{where}: must be an object with path, size and sha256")
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise LockError(f"{where}: unknown field {unknown[0]!r} (allowed: path, size, sha256)")
    path = _relative(raw.get("path"), f"{where}.path")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise LockError(f"{where}.size: {size!r} must be a whole number of bytes, or null when not yet verified")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise LockError(f"{where}.sha256: {sha!r} must be 64 lower-case hex digits, or null when not yet verified")
    return LockedFile(path=path, size=size, sha256=sha)


def _relative(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise LockError(f"{where}: must be a relative path")
    pure = PurePosixPath(value)
    if pure.is_absolute() or "\\" in value or any(p in ("..", ".", "") for p in value.split("/")) \
            or pure.parts[0].startswith("."):
        raise LockError(f"{where}: {value!r} must be a plain relative path ('a/b'), without '..', '.' or a leading dot")
    return value


# -- writing -----------------------------------------------------------------


def lock_data(lock: ModelLock) -> dict[str, Any]:
    models = []
    for e in lock.models:
        item: dict[str, Any] = {
            "name": e.name, "role": e.role, "repo": e.repo, "revision": e.revision, "target": e.target,
            "used_by": e.used_by, "state": e.state, "source": e.source,
        }
        if e.approx_bytes is not None:
            item["approx_bytes"] = e.approx_bytes
        item["files"] = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in e.files]
        models.append(item)
    data: dict[str, Any] = {"schema": SCHEMA}
    if lock.about:
        data["about"] = lock.about
    if lock.notes:
        data["notes"] = list(lock.notes)
    data["models"] = models
    return data


def write_lock(lock: ModelLock, path: Path) -> None:
    """Write ``lock`` to ``path`` through a temporary file in the same directory (never half-written)."""
    text = json.dumps(lock_data(lock), indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
