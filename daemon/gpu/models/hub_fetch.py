"""One file from the Hub (or a mirror) at a pinned commit, resumable, through ``huggingface_hub``'s own client.

The metadata comes from ``get_hf_file_metadata`` (``HEAD .../resolve/<commit>/<file>``:
the commit the server answers for, the size, the ETag: an LFS file's sha256
or a small file's git blob id), the bytes from ``file_download.http_get``,
which sends the Hub's headers (token, user agent), follows the CDN, retries a
dropped connection with a ``Range`` request and checks the length.

Why not ``hf_hub_download``: in huggingface_hub 2.4.0 it writes each file to a
process-unique ``<etag>.<uuid>.incomplete`` and deletes it when the download
fails (``_download_to_tmp_and_move``, PR #4228), so a rerun after a cut
connection or a power loss starts the file over. Here the partial file is
``<file>.part`` in the model's staging directory and a rerun hands its length
to ``http_get`` as ``resume_size``: the server is asked for the rest only.
``HF_ENDPOINT`` (read when the command runs) or an explicit endpoint chooses
the server.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers

from daemon.gpu.models.model_errors import ModelInstallError

PART_SUFFIX = ".part"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def hub_endpoint(endpoint: str | None = None) -> str:
    """The Hub to ask: ``endpoint``, else ``HF_ENDPOINT`` as it is now, else huggingface.co."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def file_url(repo: str, revision: str, path: str, endpoint: str) -> str:
    return hf_hub_url(repo, path, revision=revision, endpoint=endpoint)


@dataclass(frozen=True)
class RemoteFile:
    url: str  # where the bytes are (the CDN location the Hub redirects to, or the resolve URL)
    size: int | None
    etag: str | None  # sha256 for an LFS file, the git blob id for a small one
    commit: str


def remote_file(repo: str, revision: str, path: str, endpoint: str) -> RemoteFile:
    """HEAD the file at ``revision``; ModelInstallError when the server answers for another commit or not at all."""
    url = file_url(repo, revision, path, endpoint)
    try:
        meta = get_hf_file_metadata(url, endpoint=endpoint, retry_on_errors=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the owner
        raise fetch_error(exc, repo=repo, revision=revision, path=path, endpoint=endpoint, url=url) from None
    if meta.commit_hash is None:
        raise ModelInstallError(f"{endpoint} did not say which commit it serves for {url} (no X-Repo-Commit header): "
                                "is HF_ENDPOINT a Hugging Face Hub or a mirror of it?")
    if _GIT_SHA1.match(revision) and meta.commit_hash != revision:
        raise ModelInstallError(f"{endpoint} answered commit {meta.commit_hash} for {repo} at {revision}: "
                                "the mirror does not serve the pinned revision")
    return RemoteFile(url=meta.location or url, size=meta.size, etag=meta.etag, commit=meta.commit_hash)


def download(remote: RemoteFile, part: Path, expected_size: int | None, label: str) -> None:
    """Fill ``part`` with the file, continuing from what a previous run left in it."""
    part.parent.mkdir(parents=True, exist_ok=True)
    size = expected_size if expected_size is not None else remote.size
    resume = part.stat().st_size if part.exists() else 0
    if size is not None and resume > size:
        part.unlink()
        resume = 0
    with part.open("ab") as handle:
        http_get(remote.url, handle, resume_size=resume, headers=build_hf_headers(), expected_size=size,
                 displayed_filename=label)
        handle.flush()
        os.fsync(handle.fileno())


def etag_sha256(etag: str | None) -> str | None:
    """The sha256 an LFS file's ETag is, else None."""
    return etag if etag is not None and _SHA256.match(etag) else None


def git_blob_id(path: Path) -> str:
    """The git object id of ``path``'s contents (what the Hub sends as a small file's ETag)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def etag_mismatch(path: Path, etag: str | None, sha256: str) -> str | None:
    """Why ``path`` (hashed to ``sha256``) is not what the Hub's ETag says, or None when it is (or cannot be told)."""
    if etag is None:
        return None
    if _SHA256.match(etag):
        return None if sha256 == etag else f"has sha256 {sha256}, the Hub says {etag}"
    if _GIT_SHA1.match(etag):
        blob = git_blob_id(path)
        return None if blob == etag else f"has git blob id {blob}, the Hub says {etag}"
    return None


def fetch_error(exc: BaseException, *, repo: str, revision: str, path: str, endpoint: str, url: str,
                part: Path | None = None) -> ModelInstallError:
    """A message the owner can act on for what went wrong fetching ``path``."""
    where = f"{repo}@{revision[:12]} {path}"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        kept = f" The part already fetched stays in {part} and a rerun continues it." if part else ""
        return ModelInstallError(f"the disk filled up while fetching {where}: free space under "
                                 f"{part.parent if part else 'engines.models_dir'} and run again. "
                                 f"Nothing was moved into the models directory.{kept}")
    if isinstance(exc, OfflineModeIsEnabled):
        return ModelInstallError(f"HF_HUB_OFFLINE is set, so {where} cannot be fetched from {endpoint}: unset it "
                                 "for this command, or import the models from a stick with --from DIR")
    if isinstance(exc, RevisionNotFoundError):
        return ModelInstallError(f"{endpoint} has no revision {revision} of {repo}: the mirror is not up to date "
                                 "with the lock file (or the lock names a wrong commit)")
    if isinstance(exc, RemoteEntryNotFoundError):
        return ModelInstallError(f"{endpoint} has no file {path} in {repo} at {revision}: check the lock file")
    if isinstance(exc, (RepositoryNotFoundError, GatedRepoError)):
        return ModelInstallError(f"{endpoint} refuses {repo} ({type(exc).__name__}): set HF_TOKEN to a token "
                                 "allowed to read it, or check the repository id in the lock file")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        again = " A rerun continues the file where it stopped." if part else ""
        return ModelInstallError(f"{endpoint} answered HTTP {status} for {url} ({where}).{again}")
    if isinstance(exc, httpx2.HTTPError):
        again = " A rerun continues the file where it stopped." if part else ""
        return ModelInstallError(f"cannot fetch {where} from {endpoint}: {exc.__class__.__name__}: {exc}.{again} "
                                 "Check the network, set HF_ENDPOINT to a reachable mirror, or import from a stick "
                                 "with --from DIR")
    if isinstance(exc, OSError):
        again = " A rerun continues the file where it stopped." if part else ""
        return ModelInstallError(f"fetching {where} failed: {exc}.{again}")
    return ModelInstallError(f"fetching {where} from {endpoint} failed: {exc.__class__.__name__}: {exc}")
