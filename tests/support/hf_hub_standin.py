"""A stand-in Hugging Face Hub on 127.0.0.1, speaking the HTTP the real ``huggingface_hub`` client uses.

What it serves, as the Hub does (huggingface_hub 2.4.0 ``file_download.py``,
``hf_api.model_info``):

- ``HEAD|GET /{repo}/resolve/{revision}/{path}``: ``X-Repo-Commit``, ``ETag``
  (the git blob id of a small file); an LFS file answers ``302`` to its CDN
  address on another host name (``localhost``, so the client does not follow
  it for the metadata, as with the real CDN) with ``X-Linked-Etag`` (its
  sha256) and ``X-Linked-Size``; an unknown revision or file is ``404`` with
  ``X-Error-Code: RevisionNotFound`` / ``EntryNotFound``;
- ``GET /cdn/{sha256}``: the bytes, with ``Range`` (``206``, ``Content-Range``);
- ``GET /api/models/{repo}/revision/{revision}``: ``id``, ``sha`` and the
  ``siblings`` with ``size``, ``blobId`` and ``lfs {sha256, size, pointerSize}``.

Faults for tests, all on the bytes of one file path: ``drop_after[path] = n``
closes the connection after n bytes of the next GET; ``fail_status[path] =
[500, ...]`` answers those statuses to the next GETs (after a pending drop); ``corrupt[path] = data``
serves other bytes than the metadata says; ``before_get`` runs before a GET of
the bytes (e.g. to fill a disk). ``requests`` records every request.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    range: str | None


@dataclass
class StandinFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def blob_id(self) -> str:
        return hashlib.sha1(f"blob {len(self.data)}\0".encode() + self.data, usedforsecurity=False).hexdigest()


@dataclass
class StandinRepo:
    commit: str
    files: dict[str, StandinFile]


@dataclass
class StandinHub:
    repos: dict[str, StandinRepo] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    drop_after: dict[str, int] = field(default_factory=dict)
    fail_status: dict[str, list[int]] = field(default_factory=dict)
    corrupt: dict[str, bytes] = field(default_factory=dict)
    before_get: Callable[[str], None] | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def add_repo(self, repo: str, files: dict[str, bytes], *, lfs: set[str] | None = None) -> str:
        """Serve ``repo`` with ``files`` (those in ``lfs`` as LFS files); returns its commit id."""
        content = repo.encode() + b"".join(p.encode() + files[p] for p in sorted(files))
        commit = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        self.repos[repo] = StandinRepo(commit, {p: StandinFile(d, p in (lfs or set())) for p, d in files.items()})
        return commit

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def cdn(self) -> str:
        assert self._server is not None
        return f"http://localhost:{self._server.server_address[1]}"

    def gets(self, path_suffix: str) -> list[SeenRequest]:
        """The GETs of the bytes of a file whose path ends with ``path_suffix`` (resolve or CDN)."""
        wanted = self._cdn_names(path_suffix)
        return [r for r in self.requests if r.method == "GET" and (r.path.endswith("/" + path_suffix) or r.path in wanted)]

    def _cdn_names(self, path_suffix: str) -> set[str]:
        return {f"/cdn/{f.sha256}" for repo in self.repos.values() for p, f in repo.files.items()
                if p.endswith(path_suffix) and f.lfs}

    def __enter__(self) -> StandinHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - the http.server spelling
                hub._handle(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                hub._handle(self, head=False)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is not an error here
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hf-hub-standin", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- the Hub's answers ---------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = unquote(urlsplit(req.path).path)
        self.requests.append(SeenRequest("HEAD" if head else "GET", path, req.headers.get("Range")))
        if match := re.fullmatch(r"/api/models/(.+?)/revision/([^/]+)", path):
            return self._model_info(req, match.group(1), match.group(2))
        if match := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            found = next(((p, f) for r in self.repos.values() for p, f in r.files.items() if f.sha256 == match.group(1)),
                         None)
            if found is None:
                return self._error(req, 404, "EntryNotFound")
            return self._bytes(req, found[0], found[1].data, head=head, etag=found[1].sha256)
        match = re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path)
        if match is None:
            return self._error(req, 404, "RepoNotFound")
        repo = self.repos.get(match.group(1))
        if repo is None:
            return self._error(req, 401, "RepoNotFound")
        if match.group(2) not in (repo.commit, "main"):
            return self._error(req, 404, "RevisionNotFound", repo.commit)
        item = repo.files.get(match.group(3))
        if item is None:
            return self._error(req, 404, "EntryNotFound", repo.commit)
        if item.lfs:
            req.send_response(302)
            req.send_header("Location", f"{self.cdn}/cdn/{item.sha256}")
            req.send_header("X-Repo-Commit", repo.commit)
            req.send_header("X-Linked-Etag", f'"{item.sha256}"')
            req.send_header("X-Linked-Size", str(len(item.data)))
            req.send_header("ETag", f'"{item.blob_id}"')
            req.send_header("Content-Length", "0")
            req.end_headers()
            return None
        return self._bytes(req, match.group(3), item.data, head=head, etag=item.blob_id, commit=repo.commit)

    def _bytes(self, req: BaseHTTPRequestHandler, path: str, data: bytes, *, head: bool, etag: str,
               commit: str | None = None) -> None:
        if not head:
            if self.before_get is not None:
                self.before_get(path)
            statuses = self.fail_status.get(path)
            if statuses and path not in self.drop_after:  # a drop comes first, then the failures
                return self._error(req, statuses.pop(0), "Unavailable")
            data = self.corrupt.get(path, data)
        start, status = 0, 200
        wanted = req.headers.get("Range")
        if wanted and not head and (m := re.fullmatch(r"bytes=(\d+)-", wanted)):
            start, status = int(m.group(1)), 206
        body = data[start:]
        req.send_response(status)
        if commit:
            req.send_header("X-Repo-Commit", commit)
        req.send_header("ETag", f'"{etag}"')
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("Content-Length", str(len(body)))
        if status == 206:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        if head:
            return
        cut = self.drop_after.pop(path, None)
        if cut is not None:
            req.wfile.write(body[:cut])
            req.wfile.flush()
            req.close_connection = True
            req.connection.shutdown(2)  # the connection drops mid-file
            return
        req.wfile.write(body)

    def _model_info(self, req: BaseHTTPRequestHandler, repo_id: str, revision: str) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(req, 401, "RepoNotFound")
        if revision not in (repo.commit, "main"):
            return self._error(req, 404, "RevisionNotFound")
        siblings = []
        for path, item in repo.files.items():
            sibling: dict[str, object] = {"rfilename": path, "size": len(item.data), "blobId": item.blob_id}
            if item.lfs:
                sibling["lfs"] = {"sha256": item.sha256, "size": len(item.data), "pointerSize": 134}
            siblings.append(sibling)
        self._json(req, {"id": repo_id, "sha": repo.commit, "siblings": siblings})

    def _json(self, req: BaseHTTPRequestHandler, value: object) -> None:
        body = json.dumps(value).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _error(self, req: BaseHTTPRequestHandler, status: int, code: str, commit: str | None = None) -> None:
        body = json.dumps({"error": code}).encode()
        req.send_response(status)
        req.send_header("X-Error-Code", code)
        if commit:
            req.send_header("X-Repo-Commit", commit)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


def write_lock_for(path: Path, hub: StandinHub, models: dict[str, tuple[str, str]], *, pinned: bool = True) -> Path:
    """A lock file for repositories of ``hub``: ``{name: (repo, target)}``, pinned (or with sizes/hashes unknown)."""
    entries = []
    for name, (repo_id, target) in models.items():
        repo = hub.repos[repo_id]
        entries.append({
            "name": name, "role": "tts", "repo": repo_id, "revision": repo.commit, "target": target,
            "state": "pinned" if pinned else "unverified",
            "files": [{"path": p, "size": len(f.data) if pinned else None, "sha256": f.sha256 if pinned else None}
                      for p, f in repo.files.items()],
        })
    path.write_text(json.dumps({"schema": 1, "models": entries}, indent=2), encoding="utf-8")
    return path


def owner_shell(monkeypatch: Any) -> None:
    """The environment of an owner running ``secretary gpu models``: the Hub may be asked.

    Importing ``engines.stt`` sets ``HF_HUB_OFFLINE=1`` for the daemon, and huggingface_hub reads it once at its
    first import; in a test session that imported the engines first, this undoes it for the test.
    """
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
