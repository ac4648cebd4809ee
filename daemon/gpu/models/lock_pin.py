"""Pin the lock file from the Hub's metadata (``secretary gpu models --lock``), where the Hub is reachable.

``HfApi.model_info(files_metadata=True)`` at the entry's revision (``main``
when it has none yet) gives the commit and, for each LFS file, its size and
sha256. A small (non-LFS) file carries only a git blob id, so it is fetched
at that commit and hashed; its size and blob id are checked against the
metadata. A pinned entry is only confirmed: when the Hub's values differ the
command stops (a mirror serving other bytes is an alarm, not an update).
"""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import replace
from datetime import datetime, timezone
from typing import TextIO

from huggingface_hub import HfApi
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers

from daemon.gpu.models import hub_fetch
from daemon.gpu.models.model_errors import ModelInstallError
from daemon.gpu.models.model_lock import LockedFile, ModelEntry, ModelLock


def pin_lock(lock: ModelLock, *, endpoint: str | None = None, out: TextIO = sys.stdout) -> ModelLock:
    """``lock`` with every entry's revision, sizes and sha256 taken from the Hub (raises ModelInstallError)."""
    url = hub_fetch.hub_endpoint(endpoint)
    api = HfApi(endpoint=url)
    for entry in lock.models:
        pinned = _pin_entry(api, entry, url)
        changed = pinned.files != entry.files or pinned.revision != entry.revision
        print(f"{entry.name}: {'pinned' if changed else 'confirmed'} {entry.repo}@{pinned.revision} "
              f"({len(pinned.files)} files)", file=out)
        lock = lock.with_entry(pinned)
    return lock


def _pin_entry(api: HfApi, entry: ModelEntry, endpoint: str) -> ModelEntry:
    revision = entry.revision or "main"
    try:
        info = api.model_info(entry.repo, revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the owner
        raise hub_fetch.fetch_error(exc, repo=entry.repo, revision=revision, path="(model info)", endpoint=endpoint,
                                    url=f"{endpoint}/api/models/{entry.repo}/revision/{revision}") from None
    commit = info.sha
    if not commit or (entry.revision is not None and commit != entry.revision):
        raise ModelInstallError(f"{endpoint} answered commit {commit} for {entry.repo} at {revision}")
    siblings = {s.rfilename: s for s in info.siblings or []}
    files = []
    for item in entry.files:
        sibling = siblings.get(item.path)
        if sibling is None:
            raise ModelInstallError(f"{entry.repo} at {commit} has no file {item.path}; "
                                    f"it has: {', '.join(sorted(siblings)) or 'no files'}. Fix the lock file's list")
        if sibling.lfs is not None:
            size, sha = sibling.lfs.size, sibling.lfs.sha256
        else:
            size, sha = _hash_small_file(entry, commit, item.path, endpoint, sibling.size, sibling.blob_id)
        if entry.pinned and (item.size, item.sha256) != (size, sha):
            raise ModelInstallError(f"{endpoint} says {entry.name}/{item.path} at {commit} is {size} bytes with sha256 "
                                    f"{sha}, the lock pins {item.size} bytes with {item.sha256}: not overwriting a pin. "
                                    "Check which server HF_ENDPOINT points at")
        files.append(LockedFile(item.path, size, sha))
    today = datetime.now(timezone.utc).date().isoformat()
    source = entry.source if entry.pinned else f"secretary gpu models --lock from {endpoint} on {today}"
    return replace(entry, revision=commit, files=tuple(files), state="pinned", source=source)


def _hash_small_file(entry: ModelEntry, commit: str, path: str, endpoint: str,
                     size: int | None, blob_id: str | None) -> tuple[int, str]:
    url = hub_fetch.file_url(entry.repo, commit, path, endpoint)
    buffer = io.BytesIO()
    try:
        http_get(url, buffer, headers=build_hf_headers(), expected_size=size, displayed_filename=f"{entry.name}/{path}")
    except Exception as exc:  # noqa: BLE001
        raise hub_fetch.fetch_error(exc, repo=entry.repo, revision=commit, path=path, endpoint=endpoint, url=url) from None
    data = buffer.getvalue()
    if blob_id is not None:
        blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()
        if blob != blob_id:
            raise ModelInstallError(f"{url} has git blob id {blob}, the Hub's metadata says {blob_id}")
    return len(data), hashlib.sha256(data).hexdigest()
