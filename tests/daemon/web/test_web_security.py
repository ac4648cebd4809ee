"""The web page's doors, against the real daemon: login, sessions, CSRF, traversal, oversized uploads, rate limits."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from daemon.tools.private_broker import MosquittoBroker
from tests.daemon.web.web_daemon import PASSWORD, WebDaemon, web_daemon

pytestmark = pytest.mark.slow

PAGES = ["/", "/calls", "/calls/20261124T000000Z-abcdef", "/config", "/config/modem", "/voices", "/test-call",
         "/metrics", "/api/state", "/api/events", "/calls/x/audio/caller.wav", "/voices/anna/samples/01.wav"]
CHANGES = ["/logout", "/config/modem", "/config/personas/add", "/calls/x/delete", "/voices/upload",
           "/voices/anna/use", "/voices/anna/samples/01.wav/delete", "/api/voices/preview"]


@pytest.fixture
async def box(broker: MosquittoBroker, tmp_path: Path) -> WebDaemon:
    async with web_daemon(broker, tmp_path) as daemon:
        yield daemon  # type: ignore[misc]


def _wav(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    samples = (voiced / np.max(np.abs(voiced)) * 0.3 * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


async def test_everything_but_healthz_needs_a_session(box: WebDaemon) -> None:
    async with box.client() as http:
        async with http.get(f"{box.url}/healthz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ok"
        for path in PAGES:
            async with http.get(f"{box.url}{path}", allow_redirects=False, headers={"Accept": "text/html"}) as response:
                if path.startswith("/api/"):
                    assert response.status == 401, path
                else:  # a browser is sent to the login page and comes back afterwards
                    assert response.status == 302 and response.headers["Location"].startswith("/login?next="), path
            async with http.get(f"{box.url}{path}", allow_redirects=False) as response:  # a script or a scraper
                assert response.status == 401 and (await response.json())["error"] == "login required", path
        for path in CHANGES:
            async with http.post(f"{box.url}{path}", data={"x": "1"}, allow_redirects=False) as response:
                assert response.status == 401, path
        async with http.get(f"{box.url}/login") as response:
            assert response.status == 200 and 'type="password"' in await response.text()
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_login_sets_a_strict_cookie_and_logout_ends_the_session(box: WebDaemon) -> None:
    async with box.client() as http:
        async with http.post(f"{box.url}/login", data={"password": PASSWORD, "next": "/calls"},
                             allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/calls"
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age" not in cookie
        async with http.get(f"{box.url}/calls") as response:
            assert response.status == 200 and "<h1>Calls</h1>" in await response.text()
        csrf = await box.login(http)
        async with http.post(f"{box.url}/logout", headers={"X-CSRF-Token": csrf}, allow_redirects=False) as response:
            assert response.status == 303
        async with http.get(f"{box.url}/api/state") as response:
            assert response.status == 401
        # An open redirect through next= is refused.
        async with http.post(f"{box.url}/login", data={"password": PASSWORD, "next": "//evil.example/"},
                             allow_redirects=False) as response:
            assert response.headers["Location"] == "/"


async def test_changes_need_the_csrf_token_and_the_same_origin(box: WebDaemon) -> None:
    async with box.client() as http:
        csrf = await box.login(http)
        async with http.post(f"{box.url}/config/modem", data={"modem.answer_after_rings": "3"}) as response:
            assert response.status == 403 and "CSRF" in (await response.json())["error"]
        async with http.post(f"{box.url}/config/modem", data={"modem.answer_after_rings": "3", "_csrf": "wrong"}) as r:
            assert r.status == 403
        async with http.post(f"{box.url}/config/modem", data={"modem.answer_after_rings": "3", "_csrf": csrf},
                             headers={"Origin": "http://evil.example"}) as response:
            assert response.status == 403 and "cross-site" in (await response.json())["error"]
        assert "answer_after_rings: 3" not in box.config_path.read_text()


async def test_cross_site_websocket_is_refused(box: WebDaemon) -> None:
    async with box.client() as http:
        await box.login(http)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{box.url}/ws/test-call", headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403


async def test_path_traversal_in_file_routes_is_refused(box: WebDaemon) -> None:
    secret = box.data_dir / "web" / "password.json"
    assert secret.exists()
    async with box.client() as http:
        await box.login(http)
        for path in [
            "/calls/..%2Fweb%2Fpassword.json/audio/caller.wav",
            "/calls/../web/audio/caller.wav",
            "/calls/%2e%2e/audio/caller.wav",
            "/calls/x/audio/..%2F..%2Fweb%2Fpassword.wav",
            "/calls/x/audio/transcript.wav",
            "/voices/..%2Fweb/samples/01.wav",
            "/voices/anna/samples/..%2F..%2Fweb%2Fpassword.json",
            "/voices/anna/samples/%2e%2e%2fpassword.json",
            "/static/..%2Fweb_service.py",
            "/static/../web_service.py",
        ]:
            async with http.get(f"{box.url}{path}", allow_redirects=False) as response:
                body = await response.read()
                assert response.status in (400, 403, 404), (path, response.status)
                assert b"scrypt" not in body and b"import" not in body, path


async def test_uploads_are_checked_and_oversized_ones_refused_clearly(box: WebDaemon) -> None:
    async with box.client() as http:
        csrf = await box.login(http)
        headers = {"X-CSRF-Token": csrf}
        form = aiohttp.FormData()
        form.add_field("voice", "anna")
        form.add_field("samples", b"ID3\x03\x00 not a wav at all" * 10, filename="song.mp3", content_type="audio/mpeg")
        async with http.post(f"{box.url}/voices/upload", data=form, headers=headers) as response:
            text = await response.text()
            assert response.status == 400 and "song.mp3" in text and "not a WAV file" in text
        form = aiohttp.FormData()
        form.add_field("voice", "anna")
        form.add_field("samples", _wav(5.0), filename="me.wav", content_type="audio/wav")
        async with http.post(f"{box.url}/voices/upload", data=form, headers=headers) as response:
            assert response.status == 200 and "Added 1 sample to anna" in await response.text()
        assert (box.data_dir / "voices" / "anna" / "01.wav").exists()
        huge = aiohttp.FormData()
        huge.add_field("voice", "anna")
        huge.add_field("samples", b"\0" * (33 * 1024 * 1024), filename="huge.wav", content_type="audio/wav")
        async with http.post(f"{box.url}/voices/upload", data=huge, headers=headers) as response:
            assert response.status == 413 and "too large" in (await response.json())["error"]
        async with http.get(f"{box.url}/voices/anna/samples/01.wav") as response:
            assert response.status == 200 and (await response.read())[:4] == b"RIFF"


async def test_login_attempts_are_rate_limited(box: WebDaemon) -> None:
    async with box.client() as http:
        statuses = []
        for _ in range(7):
            async with http.post(f"{box.url}/login", data={"password": "guess"}) as response:
                statuses.append(response.status)
        assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
        async with http.post(f"{box.url}/login", data={"password": PASSWORD}, allow_redirects=False) as response:
            assert response.status == 429 and int(response.headers["Retry-After"]) >= 1  # even the right one waits
        # Parallel guesses cannot slip through before the failures are counted.
    async with box.client() as http:
        results = await asyncio.gather(*(http.post(f"{box.url}/login", data={"password": "x"}) for _ in range(10)))
        assert all(r.status == 429 for r in results)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_a_scraper_reads_metrics_with_basic_auth(box: WebDaemon) -> None:
    async with box.client() as http:
        async with http.get(f"{box.url}/metrics", headers=_basic("prometheus", PASSWORD)) as response:
            assert response.status == 200 and "secretary_calls_total" in await response.text()
        async with http.get(f"{box.url}/metrics", headers=_basic("prometheus", "wrong")) as response:
            assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
        async with http.get(f"{box.url}/api/state", headers=_basic("prometheus", PASSWORD)) as response:
            assert response.status == 401  # Basic opens /metrics only


async def test_metrics_and_live_state_after_login(box: WebDaemon) -> None:
    async with box.client() as http:
        await box.login(http)
        async with http.get(f"{box.url}/metrics") as response:
            text = await response.text()
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
            assert "secretary_engine_state" in text and "secretary_memory_total_bytes" in text
        async with http.get(f"{box.url}/api/state") as response:
            state = await response.json()
            assert state["bus_connected"] is True and "services/web/state" in state["state"]
        async with http.get(f"{box.url}/api/events") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            chunk = await asyncio.wait_for(response.content.read(65536), 5)
            assert b"event: snapshot" in chunk
