from __future__ import annotations

import base64
import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from daemon.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_KEY,
    LoginLimiter,
    PasswordError,
    PasswordStore,
    Session,
    SessionStore,
    auth_middleware,
    clear_session_cookie,
    csrf_middleware,
    public_path,
    set_session_cookie,
)

GOOD = "correct horse battery"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- PasswordStore -----------------------------------------------------------


def test_set_and_verify(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "web" / "password.json")
    assert not store.is_set()
    assert not store.verify(GOOD)
    assert store.changed_at is None
    store.set_password(GOOD)
    assert store.is_set()
    assert store.verify(GOOD)
    assert not store.verify(GOOD + "!")
    assert not store.verify("")
    assert not store.verify("x" * 1000)
    assert store.changed_at is not None


def test_file_holds_hash_params_not_plaintext(tmp_path: Path) -> None:
    path = tmp_path / "web" / "password.json"
    PasswordStore(path).set_password(GOOD)
    text = path.read_text()
    assert GOOD not in text
    record = json.loads(text)
    assert record["scheme"] == "scrypt"
    assert (record["n"], record["r"], record["p"]) == (2**14, 8, 1)
    assert len(base64.b64decode(record["salt"])) == 16
    assert len(base64.b64decode(record["hash"])) == 32
    assert isinstance(record["set_at"], float)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["password.json"]  # no temp file left


def test_same_password_gets_a_new_salt(tmp_path: Path) -> None:
    path = tmp_path / "password.json"
    store = PasswordStore(path)
    store.set_password(GOOD)
    first = json.loads(path.read_text())
    store.set_password(GOOD)
    second = json.loads(path.read_text())
    assert first["salt"] != second["salt"] and first["hash"] != second["hash"]
    assert store.verify(GOOD)


@pytest.mark.parametrize(
    ("password", "words"),
    [("short", "too short"), ("          ", "only spaces"), ("\t\n" * 6, "only spaces"), ("x" * 257, "too long")],
)
def test_unusable_passwords(tmp_path: Path, password: str, words: str) -> None:
    store = PasswordStore(tmp_path / "password.json")
    with pytest.raises(PasswordError, match=words):
        store.set_password(password)
    assert not store.is_set()


def test_length_limits_are_inclusive(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "password.json")
    store.set_password("a" * 10)
    assert store.verify("a" * 10)
    store.set_password("b" * 256)
    assert store.verify("b" * 256)
    assert not store.verify("a" * 10)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"scheme": "md5"}',
        '{"scheme": "scrypt", "n": 16384, "r": 8, "p": 1, "salt": "@@@", "hash": "AAAA", "set_at": 1.0}',
        '{"scheme": "scrypt", "n": 1073741824, "r": 8, "p": 1, "salt": "AAAA", "hash": "'
        + "A" * 44
        + '", "set_at": 1.0}',
    ],
)
def test_corrupt_file_refuses_logins(tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str) -> None:
    path = tmp_path / "password.json"
    path.write_text(content)
    store = PasswordStore(path)
    with caplog.at_level(logging.WARNING):
        assert not store.verify(GOOD)
    assert "refusing the login" in caplog.text
    assert not store.is_set()
    assert store.changed_at is None


def test_ensure_initial_returns_the_password_once(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "web" / "password.json")
    initial = store.ensure_initial()
    assert initial is not None and len(initial) >= 10
    assert store.verify(initial)
    assert store.ensure_initial() is None
    assert PasswordStore(tmp_path / "web" / "password.json").ensure_initial() is None
    assert store.verify(initial)


def test_ensure_initial_keeps_a_password_set_by_the_owner(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "password.json")
    store.set_password(GOOD)
    assert store.ensure_initial() is None
    assert store.verify(GOOD)


def test_ensure_initial_replaces_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "password.json"
    path.write_text("{")
    store = PasswordStore(path)
    initial = store.ensure_initial()
    assert initial is not None and store.verify(initial)


def test_changed_at_moves_on_each_change(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "password.json")
    store.set_password(GOOD)
    first = store.changed_at
    store.set_password(GOOD + " two")
    second = store.changed_at
    assert first is not None and second is not None and second >= first


async def test_averify(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "password.json")
    assert not await store.averify(GOOD)
    store.set_password(GOOD)
    assert await store.averify(GOOD)
    assert not await store.averify("wrong password here")


# --- SessionStore ------------------------------------------------------------


def test_session_create_and_get() -> None:
    sessions = SessionStore()
    session = sessions.create("10.0.0.5")
    assert len(session.token) >= 43 and len(session.csrf) >= 43 and session.token != session.csrf
    assert session.remote == "10.0.0.5"
    assert sessions.get(session.token) is session
    assert sessions.get("nope") is None
    assert sessions.get(None) is None
    assert sessions.get("") is None
    assert len(sessions) == 1
    assert sessions.create("10.0.0.5").token != session.token


def test_session_idle_timeout_and_touch() -> None:
    clock = FakeClock()
    sessions = SessionStore(idle_s=100, lifetime_s=10_000, clock=clock)
    session = sessions.create("a")
    clock.now += 90
    assert sessions.get(session.token) is session
    assert session.last_seen == clock.now
    clock.now += 90  # 180 s since creation but only 90 idle
    assert sessions.get(session.token) is session
    clock.now += 101
    assert sessions.get(session.token) is None
    assert len(sessions) == 0


def test_session_absolute_lifetime() -> None:
    clock = FakeClock()
    sessions = SessionStore(idle_s=100, lifetime_s=250, clock=clock)
    session = sessions.create("a")
    for _ in range(5):
        clock.now += 50
        assert sessions.get(session.token) is session
    clock.now += 1
    assert sessions.get(session.token) is None


def test_session_eviction_drops_least_recently_seen() -> None:
    clock = FakeClock()
    sessions = SessionStore(max_sessions=3, clock=clock)
    first = sessions.create("a")
    clock.now += 1
    second = sessions.create("b")
    clock.now += 1
    third = sessions.create("c")
    clock.now += 1
    assert sessions.get(first.token) is first  # first is now the most recent
    fourth = sessions.create("d")
    assert len(sessions) == 3
    assert sessions.get(second.token) is None
    assert all(sessions.get(s.token) is s for s in (first, third, fourth))


def test_session_create_purges_expired_before_evicting() -> None:
    clock = FakeClock()
    sessions = SessionStore(idle_s=10, max_sessions=2, clock=clock)
    sessions.create("old")
    clock.now += 5
    live = sessions.create("live")
    clock.now += 6  # "old" is idle for 11 s
    sessions.create("new")
    assert len(sessions) == 2
    assert sessions.get(live.token) is live


def test_session_drop_and_drop_all() -> None:
    sessions = SessionStore()
    one, two, three = sessions.create("a"), sessions.create("b"), sessions.create("c")
    sessions.drop(one.token)
    sessions.drop("unknown")
    assert sessions.get(one.token) is None and len(sessions) == 2
    sessions.drop_all()
    assert len(sessions) == 0
    assert sessions.get(two.token) is None and sessions.get(three.token) is None


# --- LoginLimiter --------------------------------------------------------------


def test_limiter_free_attempts_then_doubling_delays() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(5):
        assert limiter.retry_after("ip") is None
        limiter.failed("ip")
    assert limiter.retry_after("ip") == pytest.approx(2.0)
    assert limiter.retry_after("other") is None
    expected = 2.0
    for _ in range(6):
        clock.now += expected - 0.5
        assert limiter.retry_after("ip") == pytest.approx(0.5)
        clock.now += 0.5
        assert limiter.retry_after("ip") is None
        limiter.failed("ip")
        expected *= 2
        assert limiter.retry_after("ip") == pytest.approx(expected)


def test_limiter_delay_is_capped() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_delay_s=300.0, clock=clock)
    for _ in range(100):
        limiter.failed("ip")
        clock.now += 1
    assert limiter.retry_after("ip") == pytest.approx(299.0)


def test_limiter_success_forgets_the_address() -> None:
    limiter = LoginLimiter(clock=FakeClock())
    for _ in range(7):
        limiter.failed("ip")
    assert limiter.retry_after("ip") is not None
    limiter.succeeded("ip")
    assert limiter.retry_after("ip") is None
    for _ in range(5):
        limiter.failed("ip")
    assert limiter.retry_after("ip") == pytest.approx(2.0)  # counting starts again


def test_limiter_window_expiry() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(window_s=900.0, clock=clock)
    for _ in range(8):
        limiter.failed("ip")
    clock.now += 899
    assert limiter.retry_after("ip") is None  # the 16 s delay passed, the streak goes on
    limiter.failed("ip")
    assert limiter.retry_after("ip") == pytest.approx(32.0)
    clock.now += 900
    assert limiter.retry_after("ip") is None
    limiter.failed("ip")
    assert limiter.retry_after("ip") is None  # a fresh streak: 1 failure of 5 free


def test_limiter_tracks_a_bounded_number_of_addresses() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(free_attempts=1, clock=clock, max_tracked=3)
    for key in ("a", "b", "c"):
        limiter.failed(key)
        clock.now += 0.1
    assert all(limiter.retry_after(k) is not None for k in ("a", "b", "c"))
    limiter.failed("d")
    assert limiter.retry_after("a") is None  # the oldest was forgotten
    assert all(limiter.retry_after(k) is not None for k in ("b", "c", "d"))
    assert len(limiter._failures) == 3


# --- public_path -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/healthz", True),
        ("/login", True),
        ("/static/a.css", True),
        ("/static/img/logo.png", True),
        ("/", False),
        ("/static", False),
        ("/staticx", False),
        ("/staticx/a.css", False),
        ("/static/../api/x", False),
        ("/static/./a.css", False),
        ("/static/..\\api", False),
        ("/login/", False),
        ("/loginx", False),
        ("/healthz/x", False),
        ("/logout", False),
        ("/api/status", False),
    ],
)
def test_public_path(path: str, public: bool) -> None:
    assert public_path(path) is public


# --- middlewares over a small app ------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    session: Session | None = request.get(SESSION_KEY)
    return web.Response(text=f"page {request.path} session={session is not None}")


async def _echo_form(request: web.Request) -> web.Response:
    form = await request.post()  # the CSRF middleware may have read it already
    return web.json_response({"name": str(form.get("name"))})


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    await ws.close()
    return ws


def _make_app(sessions: SessionStore) -> web.Application:
    async def login(request: web.Request) -> web.Response:
        session = sessions.create(request.remote or "")
        response = web.json_response({"csrf": session.csrf})
        set_session_cookie(response, session, secure=False)
        return response

    async def logout(request: web.Request) -> web.Response:
        sessions.drop(request[SESSION_KEY].token)
        response = web.json_response({"ok": True})
        clear_session_cookie(response)
        return response

    app = web.Application(middlewares=[auth_middleware(sessions), csrf_middleware()])
    app.router.add_get("/healthz", _page)
    app.router.add_get("/login", _page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/static/a.css", _page)
    app.router.add_get("/staticx", _page)
    app.router.add_get("/calls", _page)
    app.router.add_get("/api/x", _page)
    app.router.add_post("/api/form", _echo_form)
    app.router.add_route("*", "/api/thing", _page)
    app.router.add_get("/ws/events", _ws)
    return app


@pytest.fixture
async def sessions() -> SessionStore:
    return SessionStore()


@pytest.fixture
async def client(sessions: SessionStore) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(_make_app(sessions))) as test_client:
        yield test_client


async def _login(client: TestClient[web.Request, web.Application]) -> str:
    resp = await client.post("/login")
    assert resp.status == 200
    csrf: str = (await resp.json())["csrf"]
    return csrf


def _origin(client: TestClient[web.Request, web.Application]) -> str:
    return f"http://{client.host}:{client.port}"


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def test_page_without_session_redirects_to_login(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/calls?day=2024-05-01&x=a%20b", headers=HTML, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/login?next=%2Fcalls%3Fday%3D2024-05-01%26x%3Da%2520b"
    resp = await client.head("/calls", headers=HTML, allow_redirects=False)
    assert resp.status == 302


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/x", HTML),
        ("GET", "/calls", {"Accept": "application/json"}),
        ("GET", "/calls", {"Accept": "*/*"}),
        ("POST", "/calls", HTML),
        ("GET", "/ws/events", HTML),
        ("GET", "/calls", {**HTML, "Upgrade": "websocket", "Connection": "Upgrade"}),
    ],
)
async def test_non_page_requests_without_session_get_401(
    client: TestClient[web.Request, web.Application], method: str, path: str, headers: dict[str, str]
) -> None:
    resp = await client.request(method, path, headers=headers, allow_redirects=False)
    assert resp.status == 401
    assert await resp.json() == {"error": "login required"}


async def test_public_paths_need_no_session(client: TestClient[web.Request, web.Application]) -> None:
    for path in ("/healthz", "/login", "/static/a.css"):
        resp = await client.get(path, headers=HTML, allow_redirects=False)
        assert resp.status == 200, path
        assert await resp.text() == f"page {path} session=False"
    resp = await client.get("/staticx", allow_redirects=False)
    assert resp.status == 401


async def test_dot_segments_do_not_reach_private_routes(
    client: TestClient[web.Request, web.Application],
) -> None:
    for raw in ("/static/../api/x", "/static/%2e%2e/api/x", "/static/..%2Fapi/x"):
        resp = await client.get(raw, headers=HTML, allow_redirects=False)
        assert resp.status in (302, 401, 404), raw


async def test_encoded_slash_does_not_make_a_private_route_public(sessions: SessionStore) -> None:
    app = web.Application(middlewares=[auth_middleware(sessions), csrf_middleware()])
    app.router.add_get("/{page}", _page)  # matches "/static%2Fa.css" as one segment
    app.router.add_get("/static/{page}", _page)  # matches "/static/..%2Fapi"
    async with TestClient(TestServer(app)) as test_client:
        for raw in ("/static%2Fa.css", "/static/..%2Fapi", "/static/%2e%2e%2Fapi"):
            resp = await test_client.get(raw, allow_redirects=False)
            assert resp.status == 401, raw


async def test_session_cookie_attributes(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/login")
    header = resp.headers["Set-Cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=")
    lowered = header.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "max-age" not in lowered and "expires" not in lowered and "secure" not in lowered

    secure = web.Response()
    set_session_cookie(secure, Session("tok", "c", 0.0, 0.0, "r"), secure=True)
    morsel = secure.cookies[SESSION_COOKIE]
    assert morsel["secure"] is True and morsel["httponly"] is True and morsel["samesite"] == "Strict"


async def test_logged_in_get_and_logout(
    client: TestClient[web.Request, web.Application], sessions: SessionStore
) -> None:
    csrf = await _login(client)
    resp = await client.get("/calls", headers=HTML)
    assert resp.status == 200
    assert await resp.text() == "page /calls session=True"
    assert (await client.get("/api/x")).status == 200

    resp = await client.post("/logout", headers={CSRF_HEADER: csrf})
    assert resp.status == 200
    assert "max-age=0" in resp.headers["Set-Cookie"].lower()
    assert len(sessions) == 0
    assert (await client.get("/api/x")).status == 401


async def test_dropped_session_cookie_no_longer_works(
    client: TestClient[web.Request, web.Application], sessions: SessionStore
) -> None:
    await _login(client)
    sessions.drop_all()
    assert (await client.get("/api/x")).status == 401


async def test_post_needs_csrf_token(client: TestClient[web.Request, web.Application]) -> None:
    csrf = await _login(client)
    resp = await client.post("/api/thing")
    assert resp.status == 403
    assert await resp.json() == {"error": "missing or wrong CSRF token; reload the page"}
    assert (await client.post("/api/thing", headers={CSRF_HEADER: csrf + "x"})).status == 403
    assert (await client.post("/api/thing", headers={CSRF_HEADER: "é"})).status == 403
    assert (await client.post("/api/thing", data={CSRF_FIELD: "wrong", "name": "x"})).status == 403
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert (await client.request(method, "/api/thing")).status == 403, method
        assert (await client.request(method, "/api/thing", headers={CSRF_HEADER: csrf})).status == 200, method


async def test_csrf_form_field_urlencoded(client: TestClient[web.Request, web.Application]) -> None:
    csrf = await _login(client)
    resp = await client.post("/api/form", data={CSRF_FIELD: csrf, "name": "Anna"})
    assert resp.status == 200
    assert await resp.json() == {"name": "Anna"}


async def test_csrf_form_field_multipart(client: TestClient[web.Request, web.Application]) -> None:
    csrf = await _login(client)
    form = aiohttp.FormData()
    form.add_field(CSRF_FIELD, csrf)
    form.add_field("name", "Boris")
    form.add_field("voice", b"RIFF....", filename="v.wav", content_type="audio/wav")
    resp = await client.post("/api/form", data=form)
    assert resp.status == 200
    assert await resp.json() == {"name": "Boris"}

    bad = aiohttp.FormData()
    bad.add_field(CSRF_FIELD, "nope")
    bad.add_field("voice", b"RIFF....", filename="v.wav", content_type="audio/wav")
    assert (await client.post("/api/form", data=bad)).status == 403


async def test_csrf_field_in_json_body_is_not_accepted(client: TestClient[web.Request, web.Application]) -> None:
    csrf = await _login(client)
    resp = await client.post("/api/thing", json={CSRF_FIELD: csrf})
    assert resp.status == 403


async def test_malformed_multipart_is_refused(client: TestClient[web.Request, web.Application]) -> None:
    await _login(client)
    resp = await client.post(
        "/api/thing", data=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=zzz"}
    )
    assert resp.status in (400, 403)


async def test_origin_must_match(client: TestClient[web.Request, web.Application]) -> None:
    csrf = await _login(client)
    good = {CSRF_HEADER: csrf}
    for origin in ("http://evil.example", "null", f"https://{client.host}:{client.port}", f"http://{client.host}:1"):
        resp = await client.post("/api/thing", headers={**good, "Origin": origin})
        assert resp.status == 403, origin
        assert await resp.json() == {"error": "cross-site request refused"}
    assert (await client.post("/api/thing", headers={**good, "Origin": _origin(client)})).status == 200
    assert (await client.post("/api/thing", headers={**good, "Origin": _origin(client).upper()})).status == 200
    # a GET is not checked: browsers send Origin on some GETs and they must not break
    assert (await client.get("/api/x", headers={"Origin": "http://evil.example"})).status == 200


async def test_login_post_checks_origin_only(
    client: TestClient[web.Request, web.Application], sessions: SessionStore
) -> None:
    resp = await client.post("/login", headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    assert len(sessions) == 0
    assert (await client.post("/login", headers={"Origin": _origin(client)})).status == 200
    assert (await client.post("/login")).status == 200


async def test_websocket_origin(client: TestClient[web.Request, web.Application]) -> None:
    await _login(client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/events", origin="http://evil.example")
    assert refused.value.status == 403
    ws = await client.ws_connect("/ws/events", origin=_origin(client))
    assert await ws.receive_str() == "hello"
    await ws.close()


async def test_websocket_needs_session(client: TestClient[web.Request, web.Application]) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/events", origin=_origin(client))
    assert refused.value.status == 401


async def test_csrf_middleware_alone_fails_closed() -> None:
    app = web.Application(middlewares=[csrf_middleware()])
    app.router.add_post("/api/thing", _page)
    app.router.add_post("/login", _page)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.post("/api/thing", headers={CSRF_HEADER: "x"})).status == 403
        assert (await test_client.post("/login")).status == 200
