"""Install the lock file's models into ``engines.models_dir``: from the Hub or a stick, verified, moved in whole.

Each model is gathered in ``<models_dir>/.partial/<name>/`` (the same file
system, so the final move is a rename): files already there from an earlier,
interrupted run are kept and a ``<file>.part`` is continued; files of an
older copy in the target are linked in and kept when their sha256 matches.
Before a byte is fetched the free space is checked against what is still
missing. Every file's size and sha256 are then checked against the lock; only
a directory whose every file matches gets its marker and is renamed into
place (``os.replace``), so a half-fetched or corrupt model is never where an
engine looks. A model already installed and unchanged is skipped without
asking the Hub anything. An entry the lock does not pin (``unverified``) is
refused unless the owner allows it; then it is checked against the Hub's
own metadata (its ETag: the sha256 of an LFS file, the git blob id of a
small one), or against the stick's lock file.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from daemon.gpu.models import hub_fetch
from daemon.gpu.models.disk_space import MARGIN_BYTES, check_space, human
from daemon.gpu.models.file_checks import marker_matches, sha256_file, verify_files, write_marker
from daemon.gpu.models.model_errors import ModelInstallError
from daemon.gpu.models.model_lock import LOCK_NAME, LockedFile, LockError, ModelEntry, ModelLock, load_lock

__all__ = ["ModelInstallError", "install_models", "STAGING"]

STAGING = ".partial"


@dataclass
class _Plan:
    entry: ModelEntry
    target: Path
    stage: Path
    expected: list[LockedFile]  # what the files are checked against
    revision: str
    etags: dict[str, str | None] = field(default_factory=dict)
    remotes: dict[str, hub_fetch.RemoteFile] = field(default_factory=dict)
    verified: dict[str, str] = field(default_factory=dict)  # path -> sha256 already checked in the stage

    def missing_bytes(self) -> int:
        total = 0
        for item in self.expected:
            if item.path in self.verified:
                continue
            size = item.size if item.size is not None else 0
            staged = self.stage / item.path
            part = self.stage / (item.path + hub_fetch.PART_SUFFIX)
            have = staged.stat().st_size if staged.is_file() else part.stat().st_size if part.is_file() else 0
            total += max(size - have, 0)
        unknown = [i for i in self.expected if i.size is None]
        if unknown and self.entry.approx_bytes:
            total = max(total, self.entry.approx_bytes)
        return total


def unverified_refusal(lock: ModelLock) -> str | None:
    unpinned = [e for e in lock.models if not e.pinned]
    if not unpinned:
        return None
    lines = [f"{e.name} ({e.repo}): {', '.join(e.unknowns()[:4])}{' ...' if len(e.unknowns()) > 4 else ''} not pinned"
             for e in unpinned]
    return ("the lock file does not pin " + "; ".join(lines) + ". Nothing unverified is installed: run "
            "`secretary gpu models --lock` where the Hub is reachable to pin it (then commit the lock file), "
            "install only the pinned models with --only NAME, or pass --allow-unverified to check such a model "
            "only against the Hub's own hashes.")


def install_models(
    lock: ModelLock,
    models_dir: Path,
    *,
    from_dir: Path | None = None,
    endpoint: str | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    allow_unverified: bool = False,
    margin_bytes: int = MARGIN_BYTES,
) -> list[Path]:
    """Make every model of ``lock`` ready under ``models_dir``; returns their directories (dry run: those ready now)."""
    refusal = None if allow_unverified else unverified_refusal(lock)
    if refusal and not dry_run:
        raise ModelInstallError(refusal)
    endpoint_url = hub_fetch.hub_endpoint(endpoint)
    stick = _stick_lock(from_dir) if from_dir is not None else None
    ready: list[Path] = []
    todo: list[_Plan] = []
    for entry in lock.models:
        target = models_dir / entry.target
        if target.is_dir() and marker_matches(entry, target):
            print(f"{entry.name}: ready in {target} (verified when installed, unchanged)", file=out)
            ready.append(target)
            continue
        expected = list(entry.files)
        if not entry.pinned and stick is not None:
            expected = _stick_files(stick, entry) or expected
        todo.append(_Plan(entry, target, models_dir / STAGING / entry.name, expected, entry.revision or "main"))
    if dry_run:
        for plan in todo:
            _print_plan(plan, from_dir, endpoint_url, out)
        if refusal:
            raise ModelInstallError(refusal)
        return ready
    if from_dir is None:
        for plan in todo:
            if not plan.entry.pinned:
                _hub_expectations(plan, endpoint_url)
    else:
        for plan in todo:
            _check_stick_has(plan, from_dir)
    for plan in todo:
        _adopt(plan)
    check_space(sum(p.missing_bytes() for p in todo), models_dir, margin=margin_bytes)
    for plan in todo:
        if from_dir is None:
            _fetch(plan, endpoint_url, out)
        else:
            _copy_from(plan, from_dir, out)
        _verify(plan, from_dir, endpoint_url)
        _move_in(plan)
        print(f"{plan.entry.name}: installed in {plan.target}", file=out)
        ready.append(plan.target)
    staging = models_dir / STAGING
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    return ready


# -- planning ----------------------------------------------------------------


def _stick_lock(from_dir: Path) -> ModelLock | None:
    if not from_dir.is_dir():
        raise ModelInstallError(f"{from_dir} is not a directory: mount the stick and name the folder "
                                "`secretary gpu models --export` wrote")
    try:
        return load_lock(from_dir / LOCK_NAME)
    except LockError:
        return None


def _stick_files(stick: ModelLock, entry: ModelEntry) -> list[LockedFile] | None:
    for other in stick.models:
        if other.repo == entry.repo and (entry.revision is None or other.revision == entry.revision):
            if all(f.sha256 for f in other.files):
                return list(other.files)
    return None


def _hub_expectations(plan: _Plan, endpoint: str) -> None:
    """For an unverified entry: the commit, sizes and ETags the Hub gives (HEAD of every file)."""
    expected = []
    for item in plan.expected:
        remote = hub_fetch.remote_file(plan.entry.repo, plan.revision, item.path, endpoint)
        plan.revision = remote.commit
        plan.remotes[item.path] = remote
        plan.etags[item.path] = remote.etag
        expected.append(LockedFile(item.path, item.size if item.size is not None else remote.size,
                                   item.sha256 or hub_fetch.etag_sha256(remote.etag)))
    plan.expected = expected


def _check_stick_has(plan: _Plan, from_dir: Path) -> None:
    source = from_dir / plan.entry.target
    missing = [i.path for i in plan.expected if not (source / i.path).is_file()]
    if missing:
        there = ", ".join(sorted(p.name for p in from_dir.iterdir() if not p.name.startswith("."))) or "nothing"
        raise ModelInstallError(f"{from_dir} has no {plan.entry.target}/{missing[0]}"
                                f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''} for {plan.entry.name} "
                                f"(it holds: {there}). Write the stick with `secretary gpu models --export DIR` "
                                "on a box that has the models")


def _adopt(plan: _Plan) -> None:
    """Keep what an earlier run left in the stage, and link in files of an old copy in the target that still match."""
    for item in plan.expected:
        staged = plan.stage / item.path
        old = plan.target / item.path
        if not staged.exists() and item.sha256 is not None and old.is_file() and old.stat().st_size == item.size:
            staged.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(old, staged)
            except OSError:
                shutil.copy2(old, staged)
        if staged.is_file() and item.sha256 is not None and staged.stat().st_size == item.size:
            digest = sha256_file(staged)
            if digest == item.sha256:
                plan.verified[item.path] = digest
            else:
                staged.unlink()


def _print_plan(plan: _Plan, from_dir: Path | None, endpoint: str, out: TextIO) -> None:
    entry = plan.entry
    state = "pinned" if entry.pinned else f"UNVERIFIED ({', '.join(entry.unknowns()[:3])} unknown)"
    print(f"{entry.name}: {entry.repo}@{plan.revision} ({entry.role}, {state}, {human(entry.total_bytes)})", file=out)
    for item in plan.expected:
        size = human(item.size) if item.size is not None else "size unknown"
        staged = plan.stage / item.path
        if from_dir is None:
            source = hub_fetch.file_url(entry.repo, plan.revision, item.path, endpoint)
        else:
            source = str(from_dir / entry.target / item.path)
        print(f"  would {'fetch' if from_dir is None else 'copy'} {source} -> {staged} ({size})", file=out)
    print(f"  then check every sha256 and move {plan.stage} -> {plan.target}", file=out)


# -- doing -------------------------------------------------------------------


def _fetch(plan: _Plan, endpoint: str, out: TextIO) -> None:
    entry = plan.entry
    for item in plan.expected:
        staged = plan.stage / item.path
        if item.path in plan.verified or (staged.is_file() and (item.size is None or staged.stat().st_size == item.size)):
            continue
        part = plan.stage / (item.path + hub_fetch.PART_SUFFIX)
        remote = plan.remotes.get(item.path)
        try:
            if remote is None:
                remote = hub_fetch.remote_file(entry.repo, plan.revision, item.path, endpoint)
            if part.exists():
                print(f"{entry.name}: continuing {item.path} from {human(part.stat().st_size)}", file=out)
            hub_fetch.download(remote, part, item.size, f"{entry.name}/{item.path}")
        except ModelInstallError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the owner
            url = hub_fetch.file_url(entry.repo, plan.revision, item.path, endpoint)
            raise hub_fetch.fetch_error(exc, repo=entry.repo, revision=plan.revision, path=item.path,
                                        endpoint=endpoint, url=url, part=part) from None
        os.replace(part, staged)


def _copy_from(plan: _Plan, from_dir: Path, out: TextIO) -> None:
    """Copy the stick's files into the stage, continuing a ``.part`` a cut copy left."""
    for item in plan.expected:
        staged = plan.stage / item.path
        if item.path in plan.verified or (staged.is_file() and staged.stat().st_size == item.size):
            continue
        source = from_dir / plan.entry.target / item.path
        part = plan.stage / (item.path + hub_fetch.PART_SUFFIX)
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            copy_resumable(source, part)
        except OSError as exc:
            raise ModelInstallError(f"copying {source} failed: {exc.strerror or exc}. The part copied stays in "
                                    f"{part} and a rerun continues it; nothing was moved into {plan.target.parent}") from None
        os.replace(part, staged)


def copy_resumable(source: Path, part: Path) -> None:
    """Append to ``part`` the bytes of ``source`` it does not have yet, then fsync it."""
    have = part.stat().st_size if part.exists() else 0
    if have > source.stat().st_size:
        part.unlink()
        have = 0
    with source.open("rb") as reader, part.open("ab") as writer:
        reader.seek(have)
        shutil.copyfileobj(reader, writer, 8 * 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())


def _verify(plan: _Plan, from_dir: Path | None, endpoint: str) -> None:
    entry = plan.entry
    remaining = [i for i in plan.expected if i.path not in plan.verified]
    problems, digests = verify_files(remaining, plan.stage, f"verify {entry.name}")
    for path, digest in digests.items():
        why = hub_fetch.etag_mismatch(plan.stage / path, plan.etags.get(path), digest)
        if why and from_dir is None:
            problems.append(f"{path} {why}")
    if problems:
        for problem in problems:  # a corrupt file is fetched anew next time, never kept
            bad = plan.stage / problem.split(" ", 1)[0]
            if bad.is_file():
                bad.unlink()
        source = f"the stick {from_dir}" if from_dir is not None else endpoint
        hint = ("the stick is damaged or was changed: write it again with --export"
                if from_dir is not None else
                "the download was corrupted, or the server does not serve the pinned files; run again to fetch the "
                "bad files anew, and if it repeats, check HF_ENDPOINT")
        raise ModelInstallError(f"{entry.name} from {source} does not match the lock file: {'; '.join(problems)}. "
                                f"Nothing was moved into {plan.target.parent}; {hint}")
    plan.verified.update(digests)


def _move_in(plan: _Plan) -> None:
    for item in plan.expected:
        with (plan.stage / item.path).open("rb") as handle:
            os.fsync(handle.fileno())
    write_marker(plan.entry, plan.stage, plan.revision, plan.verified)
    plan.target.parent.mkdir(parents=True, exist_ok=True)
    if plan.target.exists() or plan.target.is_symlink():
        old = plan.stage.with_name(plan.stage.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(plan.target, old)
        os.replace(plan.stage, plan.target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(plan.stage, plan.target)
    dir_fd = os.open(plan.target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
