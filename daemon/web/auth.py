"""Login for the local web UI: the password file, sessions, login throttling, CSRF.

The owner's password lives as a scrypt hash in a small JSON file (mode 0600).
A successful login creates an in-memory :class:`Session`; its random token
goes to the browser in an HttpOnly, SameSite=Strict cookie and its CSRF token
goes into pages (a ``_csrf`` form field or an ``X-CSRF-Token`` header sent by
scripts). Sessions die with the daemon, after an idle period, after an
absolute lifetime, and all at once when the password changes.

Wire the middlewares in this order (aiohttp runs the first one outermost)::

    web.Application(middlewares=[auth_middleware(sessions), csrf_middleware()])
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from yarl import URL

log = logging.getLogger("secretary.web")

SESSION_COOKIE = "secretary_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "_csrf"

_MIN_PASSWORD_CHARS = 10
_MAX_PASSWORD_CHARS = 256

# scrypt cost for new hashes: 16 MiB of memory and about 50 ms per hash.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
# Bounds for parameters read back from the file, so an edited file cannot make
# one login eat gigabytes; and at most this many hashes run at once.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_PARALLEL_HASHES = 2

_MAX_TOKEN_BYTES = 256
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Middleware = Callable[[web.Request, _Handler], Awaitable[web.StreamResponse]]


class PasswordError(ValueError):
    """A password that cannot be used; the message says what to change."""


class _CorruptFile(Exception):
    """The password file exists but its content is not a usable hash."""


@dataclass(frozen=True)
class _Hash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes
    set_at: float
    generated: bool  # made at first boot (ensure_initial, ``secretary web password --generated``)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    data = unicodedata.normalize("NFC", password).encode("utf-8")
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)


def _int_field(record: dict[str, Any], name: str, low: int, high: int) -> int:
    value = record[name]
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name}={value!r} is out of range {low}..{high}")
    return value


def _parse_hash(raw: bytes) -> _Hash:
    record = json.loads(raw)
    if not isinstance(record, dict) or record.get("scheme") != "scrypt":
        raise ValueError("not a scrypt password record")
    n = _int_field(record, "n", 2, _MAX_N)
    if n & (n - 1):
        raise ValueError(f"n={n} is not a power of two")
    salt = base64.b64decode(record["salt"], validate=True)
    digest = base64.b64decode(record["hash"], validate=True)
    set_at = record["set_at"]
    if not salt or len(digest) < 16 or type(set_at) not in (int, float):
        raise ValueError("empty salt, short hash or bad set_at")
    return _Hash(
        n=n,
        r=_int_field(record, "r", 1, _MAX_R),
        p=_int_field(record, "p", 1, _MAX_P),
        salt=salt,
        digest=digest,
        set_at=float(set_at),
        generated=record.get("generated") is True,
    )


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o600)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class PasswordStore:
    """The web password as a scrypt hash in a 0600 JSON file (e.g. data_dir/web/password.json).

    ``set_password``, ``verify`` and ``ensure_initial`` each cost one scrypt
    run (about 50 ms): call them from a thread, or use ``averify``.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._hashing = asyncio.Semaphore(_MAX_PARALLEL_HASHES)

    def _read(self) -> _Hash | None:
        """None when there is no file; _CorruptFile for bad content; other OSErrors pass."""
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _parse_hash(raw)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _CorruptFile(f"{self._path}: {exc}") from exc

    def is_set(self) -> bool:
        """True when a readable password hash is stored (a corrupt file counts as unset)."""
        try:
            return self._read() is not None
        except _CorruptFile as exc:
            log.warning("web password file is unreadable, treating the password as unset: %s", exc)
            return False

    def set_password(self, password: str, generated: bool = False) -> None:
        """Store ``password``; ``generated`` marks one the box made (first boot) rather than the owner's."""
        if len(password) > _MAX_PASSWORD_CHARS:
            raise PasswordError(f"The password is too long: use at most {_MAX_PASSWORD_CHARS} characters.")
        if not password.strip():
            raise PasswordError("The password cannot be only spaces.")
        if len(password) < _MIN_PASSWORD_CHARS:
            raise PasswordError(
                f"The password is too short: use at least {_MIN_PASSWORD_CHARS} characters "
                f"(it has {len(password)})."
            )
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _HASH_BYTES)
        record = {
            "scheme": "scrypt",
            "n": _SCRYPT_N,
            "r": _SCRYPT_R,
            "p": _SCRYPT_P,
            "salt": base64.b64encode(salt).decode("ascii"),
            "hash": base64.b64encode(digest).decode("ascii"),
            "set_at": time.time(),
            "generated": generated,
        }
        write_private(self._path, json.dumps(record, indent=2).encode("utf-8") + b"\n")
        log.info("web password changed")

    def verify(self, password: str) -> bool:
        if len(password) > _MAX_PASSWORD_CHARS:
            return False  # set_password never stores one this long; skip the hashing
        try:
            stored = self._read()
        except (_CorruptFile, OSError) as exc:
            log.warning("cannot check the web password, refusing the login: %s", exc)
            return False
        if stored is None:
            return False
        digest = _scrypt(password, stored.salt, stored.n, stored.r, stored.p, len(stored.digest))
        return hmac.compare_digest(digest, stored.digest)

    async def averify(self, password: str) -> bool:
        """``verify`` in a worker thread, at most a couple at a time (scrypt takes 16 MiB each)."""
        async with self._hashing:
            return await asyncio.to_thread(self.verify, password)

    def ensure_initial(self) -> str | None:
        """Store a random password when none is set and return it (the only time it is seen)."""
        if self.is_set():
            return None
        password = secrets.token_urlsafe(12)
        self.set_password(password, generated=True)
        return password

    @property
    def generated(self) -> bool | None:
        """True while the password is still the one generated at first boot; None when unset or unreadable."""
        try:
            stored = self._read()
        except (_CorruptFile, OSError):
            return None
        return None if stored is None else stored.generated

    @property
    def changed_at(self) -> float | None:
        """When the password was last set (``time.time()``), None when unset or unreadable."""
        try:
            stored = self._read()
        except (_CorruptFile, OSError):
            return None
        return None if stored is None else stored.set_at


@dataclass
class Session:
    token: str
    csrf: str
    created: float
    last_seen: float
    remote: str


SESSION_KEY: web.RequestKey[Session] = web.RequestKey("session", Session)
# A streamed upload's multipart reader, past the ``_csrf`` part the CSRF check read (csrf_middleware).
MULTIPART_KEY: web.RequestKey[MultipartReader] = web.RequestKey("multipart", MultipartReader)


class SessionStore:
    """In-memory sessions: random 32-byte url-safe tokens, idle timeout and absolute lifetime."""

    def __init__(
        self,
        idle_s: float = 8 * 3600,
        lifetime_s: float = 7 * 86400,
        max_sessions: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if idle_s <= 0 or lifetime_s <= 0 or max_sessions < 1:
            raise ValueError("idle_s and lifetime_s must be positive and max_sessions at least 1")
        self._idle_s = idle_s
        self._lifetime_s = lifetime_s
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently seen first

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self._idle_s or now - session.created > self._lifetime_s

    def create(self, remote: str) -> Session:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[token]
        while len(self._sessions) >= self._max:
            self._sessions.popitem(last=False)
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            remote=remote,
        )
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if self._expired(session, now):
            del self._sessions[token]
            return None
        session.last_seen = now
        self._sessions.move_to_end(token)
        return session

    def drop(self, token: str) -> None:
        self._sessions.pop(token, None)

    def drop_all(self) -> None:
        self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class _Failures:
    count: int
    last: float


class LoginLimiter:
    """Failed logins per client address: after ``free_attempts`` failures within
    ``window_s``, each further attempt must wait, doubling from ``base_delay_s``
    up to ``max_delay_s``.

    Failures count as one streak while each comes within ``window_s`` of the
    previous one; ``window_s`` without a failure forgets the address. The wait
    is measured from the last failure. At most ``max_tracked`` addresses are
    remembered; past that the one that failed longest ago is forgotten.
    """

    def __init__(
        self,
        free_attempts: int = 5,
        window_s: float = 900.0,
        base_delay_s: float = 2.0,
        max_delay_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 4096,
    ) -> None:
        if free_attempts < 1 or max_tracked < 1 or window_s <= 0 or not 0 < base_delay_s <= max_delay_s:
            raise ValueError("LoginLimiter: free_attempts >= 1, max_tracked >= 1, 0 < base_delay_s <= max_delay_s")
        self._free = free_attempts
        self._window_s = window_s
        self._base_s = base_delay_s
        self._max_s = max_delay_s
        self._clock = clock
        self._max_tracked = max_tracked
        self._failures: OrderedDict[str, _Failures] = OrderedDict()  # oldest failure first

    def _current(self, key: str, now: float) -> _Failures | None:
        entry = self._failures.get(key)
        if entry is not None and now - entry.last >= self._window_s:
            del self._failures[key]
            return None
        return entry

    def retry_after(self, key: str) -> float | None:
        now = self._clock()
        entry = self._current(key, now)
        if entry is None or entry.count < self._free:
            return None
        doublings = min(entry.count - self._free, 32)  # 2**32 * base is past any cap
        delay = min(self._base_s * 2**doublings, self._max_s)
        wait = entry.last + delay - now
        return wait if wait > 0 else None

    def failed(self, key: str) -> None:
        now = self._clock()
        entry = self._current(key, now)
        if entry is None:
            while self._failures:  # forget expired streaks first, then the oldest ones
                oldest_key, oldest = next(iter(self._failures.items()))
                if now - oldest.last < self._window_s and len(self._failures) < self._max_tracked:
                    break
                del self._failures[oldest_key]
            self._failures[key] = _Failures(count=1, last=now)
            return
        entry.count += 1
        entry.last = now
        self._failures.move_to_end(key)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str) -> None:
        """Take back one failure (one counted before a check that then passed)."""
        entry = self._failures.get(key)
        if entry is not None:
            entry.count -= 1
            if entry.count <= 0:
                del self._failures[key]


def public_path(path: str) -> bool:
    """True for the pages anyone may fetch: ``/healthz``, ``/login`` and files under ``/static/``."""
    if path in ("/healthz", "/login"):
        return True
    if not path.startswith("/static/"):
        return False
    return not any(part in (".", "..") for part in path.replace("\\", "/").split("/"))


def _is_public(request: web.Request) -> bool:
    # Both the decoded path and the router's form (where "%2F" stays encoded) must
    # qualify, so no spelling of a private route's path passes as public.
    return public_path(request.path) and public_path(request.rel_url.path_safe)


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _login_location(request: web.Request) -> str:
    target = request.rel_url.raw_path_qs
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return "/login?next=" + quote(target, safe="")


BasicVerifier = Callable[[web.Request, str], Awaitable[bool]]


def auth_middleware(
    sessions: SessionStore, basic: BasicVerifier | None = None, basic_paths: frozenset[str] = frozenset(),
) -> _Middleware:
    """Let through public paths; everything else needs a live session (put in ``request[SESSION_KEY]``).

    A visitor without one gets a redirect to the login page when a browser
    navigates to a page, otherwise 401 with a JSON body. On ``basic_paths``
    (GET only: ``/metrics`` for a Prometheus scraper) HTTP Basic credentials
    checked by ``basic(request, password)`` stand in for a session.
    """

    @web.middleware
    async def auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if _is_public(request):
            return await handler(request)
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            request[SESSION_KEY] = session
            return await handler(request)
        if basic is not None and request.path in basic_paths and request.method in ("GET", "HEAD"):
            password = _basic_password(request.headers.get(hdrs.AUTHORIZATION, ""))
            if password is not None and await basic(request, password):
                return await handler(request)
            if password is not None or "text/html" not in request.headers.get(hdrs.ACCEPT, "").lower():
                refused = _json_error(401, "login required")
                refused.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="secretary", charset="UTF-8"'
                return refused
        wants_page = (
            request.method in ("GET", "HEAD")
            and not request.path.startswith(("/api/", "/ws/"))
            and not _is_websocket(request)
            and "text/html" in request.headers.get(hdrs.ACCEPT, "").lower()
        )
        if not wants_page:
            return _json_error(401, "login required")
        return web.Response(status=302, headers={hdrs.LOCATION: _login_location(request)})

    return auth


def _basic_password(header: str) -> str | None:
    """The password of an HTTP Basic ``Authorization`` header (any user name), or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def _origin_key(url: str) -> tuple[str, str, int | None] | None:
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if not parsed.scheme or not parsed.host:
        return None
    return (parsed.scheme.lower(), parsed.host.lower(), parsed.port)


def _same_origin(origin: str, request: web.Request) -> bool:
    ours = _origin_key(f"{request.scheme}://{request.host}")
    return ours is not None and _origin_key(origin) == ours


def _token_matches(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


async def _form_token(request: web.Request) -> str | None:
    if request.content_type not in _FORM_TYPES:
        return None
    try:
        form = await request.post()  # cached on the request: the handler can read it again
    except ValueError:
        return None  # a malformed body has no token
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else None


async def _first_part_token(request: web.Request) -> str | None:
    """The ``_csrf`` field as the first part of a multipart body, read without the rest.

    The reader goes into ``request[MULTIPART_KEY]``, where the handler goes on
    with the parts after it.
    """
    if request.content_type != "multipart/form-data":
        return None
    try:
        reader = await request.multipart()
        request[MULTIPART_KEY] = reader
        part = await reader.next()
    except (ValueError, AssertionError):
        return None  # not multipart after all, or a broken boundary
    if not isinstance(part, BodyPartReader) or part.name != CSRF_FIELD or part.filename is not None:
        return None
    value = bytearray()
    while chunk := await part.read_chunk(_MAX_TOKEN_BYTES):
        value += chunk
        if len(value) > _MAX_TOKEN_BYTES:
            return None
    return value.decode("utf-8", "replace")


def csrf_middleware(streamed: frozenset[str] = frozenset()) -> _Middleware:
    """Refuse cross-site writes and WebSocket upgrades; must run after ``auth_middleware``.

    An ``Origin`` header, when present on an unsafe method or a WebSocket
    upgrade, must name this server. Unsafe methods from a logged-in session
    must also carry the session's CSRF token, in the ``X-CSRF-Token`` header
    or in a ``_csrf`` form field. Reading the field parses the whole body
    with ``request.post()`` (bounded by the app's ``client_max_size``); on the
    ``streamed`` paths, which read large uploads part by part, the field must
    be the body's first part and the handler continues from
    ``request[MULTIPART_KEY]``.
    """

    @web.middleware
    async def csrf(request: web.Request, handler: _Handler) -> web.StreamResponse:
        unsafe = request.method in _UNSAFE_METHODS
        if not unsafe and not _is_websocket(request):
            return await handler(request)
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and not _same_origin(origin, request):
            return _json_error(403, "cross-site request refused")
        if unsafe:
            session: Session | None = request.get(SESSION_KEY)
            if session is None and not _is_public(request):
                # auth_middleware would have refused this; fail closed if it is missing or misplaced
                return _json_error(403, "missing or wrong CSRF token; reload the page")
            read_field = _first_part_token if request.path in streamed else _form_token
            if session is not None and not (
                _token_matches(request.headers.get(CSRF_HEADER), session.csrf)
                or _token_matches(await read_field(request), session.csrf)
            ):
                return _json_error(403, "missing or wrong CSRF token; reload the page")
        return await handler(request)

    return csrf


def set_session_cookie(response: web.StreamResponse, session: Session, secure: bool) -> None:
    """A browser-session cookie (no Max-Age) that scripts cannot read and other sites do not get."""
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=True if secure else None,
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
