"""The web page's transport against the real daemon over real TLS: certificate, Host, body limits, throttle keys.

The daemon runs in-process with ``web.tls.mode: on`` on a loopback port; clients are Python's ``ssl``
module, aiohttp with the certificate's fingerprint pinned, raw sockets for what a library would not send,
and Debian's chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from daemon.web.auth import PasswordStore
from daemon.web.transport.certificate import read_certificate
from daemon.web.transport.host_check import own_addresses
from daemon.web.web_service import password_path
from tests.daemon.web.chromium import chromium
from tests.daemon.web.test_web_transport_units import issued_pair
from tests.daemon.web.web_daemon import PASSWORD, free_port, wait_until_serving
from tests.support.daemon_runner import write_config

pytestmark = pytest.mark.slow

OVERSIZED = 31 * 1024 * 1024


@dataclass
class TlsBox:
    url: str
    port: int
    data_dir: Path
    cert_path: Path
    key_path: Path

    def fingerprint(self) -> bytes:
        return bytes.fromhex(read_certificate(self.cert_path).fingerprint.replace(":", ""))

    def client(self) -> aiohttp.ClientSession:
        """aiohttp pinned to the served certificate's SHA-256 (no CA can vouch for a self-signed one)."""
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                     connector=aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(self.fingerprint())))

    async def login(self, http: aiohttp.ClientSession) -> str:
        async with http.post(f"{self.url}/login", data={"password": PASSWORD, "next": "/"},
                             headers={"Origin": self.url}) as response:
            text = await response.text()
            assert response.status == 200, (response.status, text[:300])
        return re.search(r'<meta name="csrf-token" content="([^"]+)"', text).group(1)  # type: ignore[union-attr]

    def verifying_context(self) -> ssl.SSLContext:
        """A client that trusts exactly the box's certificate and checks the name."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    async def raw(self, request: bytes, read_timeout_s: float = 5.0) -> bytes:
        """One raw HTTP/1.1 exchange over TLS: the request's bytes as given, the answer until the server closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.verifying_context(),
                                                       server_hostname="localhost")
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(65536), read_timeout_s)
        finally:
            writer.close()


@asynccontextmanager
async def tls_box(broker: MosquittoBroker, tmp_path: Path, web_extra: str = "") -> AsyncIterator[TlsBox]:
    port = free_port()
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data_dir,
                          extra=f"web:\n  listen: 127.0.0.1:{port}\n  tls:\n    mode: on\n" + web_extra)
    await asyncio.to_thread(PasswordStore(password_path(data_dir)).set_password, PASSWORD)
    app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(app.run())
    url = f"https://127.0.0.1:{port}"
    try:
        await wait_until_serving(url, tls=True)
        tls = data_dir / "web" / "tls"
        yield TlsBox(url, port, data_dir, tls / "cert.pem", tls / "key.pem")
    finally:
        app.stop()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def box(broker: MosquittoBroker, tmp_path: Path) -> AsyncIterator[TlsBox]:
    async with tls_box(broker, tmp_path, "  allowed_hosts: [secretary.example.org]\n"
                                         "  trusted_proxies: [127.0.0.1]\n") as running:
        yield running


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_the_page_is_served_over_tls_with_the_box_certificate(box: TlsBox) -> None:
    assert stat.S_IMODE(box.key_path.stat().st_mode) == 0o600
    info = read_certificate(box.cert_path)
    assert info.self_signed and "localhost" in info.names
    # Python's ssl module, trusting only the box's certificate and checking the name: the handshake verifies.
    reader, writer = await asyncio.open_connection("127.0.0.1", box.port, ssl=box.verifying_context(),
                                                   server_hostname="localhost")
    served = writer.get_extra_info("ssl_object")
    assert hashlib.sha256(served.getpeercert(binary_form=True)).hexdigest() == info.fingerprint.replace(":", "").lower()
    assert served.version() in ("TLSv1.2", "TLSv1.3")
    writer.close()
    # A default client (the system's CAs) refuses it: nobody can pass off another certificate either.
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", box.port, ssl=ssl.create_default_context(),
                                      server_hostname="localhost")
    # The page does not speak plain HTTP on its TLS port.
    reader, writer = await asyncio.open_connection("127.0.0.1", box.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    assert b"200 OK" not in await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    # aiohttp with the fingerprint pinned; a wrong pin is refused.
    async with box.client() as http:
        async with http.get(f"{box.url}/healthz") as response:
            assert response.status == 200
    wrong = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(hashlib.sha256(b"another certificate").digest()))
    async with aiohttp.ClientSession(connector=wrong) as http:
        with pytest.raises(aiohttp.ServerFingerprintMismatch):
            await http.get(f"{box.url}/healthz")


async def test_tls_responses_carry_hsts_a_secure_cookie_and_no_server_name(box: TlsBox) -> None:
    async with box.client() as http:
        async with http.post(f"{box.url}/login", data={"password": PASSWORD, "next": "/"},
                             allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        for path, status in [("/", 200), ("/healthz", 200), ("/nowhere", 404), ("/static/app.css", 200)]:
            async with http.get(f"{box.url}{path}") as response:
                assert response.status == status, path
                assert "Server" not in response.headers, (path, response.headers.get("Server"))
                assert "Strict-Transport-Security" in response.headers, path
        async with http.get(f"{box.url}/healthz", headers={"Host": "evil.example"}) as response:
            assert response.status == 421 and "Server" not in response.headers


async def test_a_name_that_is_not_the_box_is_refused(box: TlsBox) -> None:
    """A DNS-rebinding page sends its own name as Host, with a matching Origin: 421, nothing served."""
    rebinding = "evil.example:8443"
    async with box.client() as http:
        csrf = await box.login(http)
        async with http.get(f"{box.url}/api/state", headers={"Host": rebinding}) as response:
            text = await response.text()
            assert response.status == 421 and response.content_type == "text/plain"
            assert "evil.example" in text and "web.allowed_hosts" in text
        async with http.post(f"{box.url}/logout", headers={"Host": rebinding, "Origin": f"https://{rebinding}",
                                                            "X-CSRF-Token": csrf}) as response:
            assert response.status == 421
        async with http.get(f"{box.url}/api/state") as response:
            assert response.status == 200  # still signed in: the refused logout did nothing
        short = socket.gethostname().split(".")[0]
        others = [a for a in own_addresses() if not a.startswith(("127.", "::1", "fe80"))]
        good = ["localhost", f"localhost:{box.port}", f"127.0.0.1:{box.port}", f"[::1]:{box.port}", f"{short}.local",
                "secretary.example.org", *(f"[{a}]" if ":" in a else a for a in others[:2])]
        for host in good:
            async with http.get(f"{box.url}/healthz", headers={"Host": host}) as response:
                assert response.status == 200, host
        for host in ["secretary.example.org.evil.example", "192.0.2.1", "localhost.evil.example", "0.0.0.0"]:
            async with http.get(f"{box.url}/healthz", headers={"Host": host}) as response:
                assert response.status == 421, host
    # Without any Host at all (HTTP/1.0): 400.
    answer = await box.raw(b"GET /healthz HTTP/1.0\r\n\r\n")
    assert _status(answer) == 400 and b"Host header is required" in answer


async def test_an_uploaded_certificate_is_checked_then_served(box: TlsBox) -> None:
    before = box.fingerprint()
    cert_pem, key_pem = issued_pair()
    _, other_key = issued_pair()
    async with box.client() as http:
        csrf = await box.login(http)

        def form(cert: bytes, key: bytes, token: str = csrf) -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("_csrf", token)
            data.add_field("certificate", cert, filename="cert.pem", content_type="application/x-pem-file")
            data.add_field("key", key, filename="key.pem", content_type="application/x-pem-file")
            return data

        async with http.get(f"{box.url}/security") as response:
            page = await response.text()
            assert response.status == 200 and read_certificate(box.cert_path).fingerprint in page
        async with http.post(f"{box.url}/security/certificate", data=form(cert_pem, other_key)) as response:
            text = await response.text()
            assert response.status == 400 and "does not belong to the certificate" in text
        async with http.post(f"{box.url}/security/certificate", data=form(cert_pem, key_pem, "wrong")) as response:
            assert response.status == 403
        assert box.fingerprint() == before
        async with http.post(f"{box.url}/security/certificate", data=form(cert_pem, key_pem)) as response:
            assert response.status == 200 and "installed and served from now on" in await response.text()
    expected = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    assert box.fingerprint() == expected and stat.S_IMODE(box.key_path.stat().st_mode) == 0o600
    # A new connection gets the new certificate at once, without a restart.
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", box.port, ssl=unchecked)
    assert hashlib.sha256(writer.get_extra_info("ssl_object").getpeercert(binary_form=True)).digest() == expected
    writer.close()


async def test_login_in_chromium_over_https(box: TlsBox) -> None:
    async with chromium() as browser:
        context = await browser.new_context(ignore_https_errors=True)  # the box's own certificate
        page = await context.new_page()
        first = await page.goto(f"{box.url}/")
        assert first is not None and "/login" in page.url
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{box.url}/")
        assert await page.locator("h1").first.inner_text()
        cookies = {c["name"]: c for c in await context.cookies()}
        session = cookies["secretary_session"]
        assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
        response = await page.goto(f"{box.url}/security")
        assert response is not None and response.status == 200
        assert "strict-transport-security" in response.headers and "server" not in response.headers
        assert read_certificate(box.cert_path).fingerprint in await page.inner_text("#fingerprint")
        await context.close()


async def test_oversized_bodies_are_refused_before_they_are_read(box: TlsBox) -> None:
    """Headers announcing 31 MB, and not one byte of body: the answer comes at once, so nothing was waited for."""
    for path in ("/login", "/config/modem", "/logout"):
        answer = await box.raw(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-"
                               f"urlencoded\r\nContent-Length: {OVERSIZED}\r\n\r\n".encode())
        assert _status(answer) == 413 and b"at most 256 KB" in answer and b"Connection: close" in answer, answer[:300]
    # The voice upload takes more, but only after login: a visitor's big upload is refused unread too.
    answer = await box.raw(f"POST /voices/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; "
                           f"boundary=x\r\nContent-Length: {OVERSIZED}\r\n\r\n".encode())
    assert _status(answer) == 401
    # A chunked body has no length up front: it is cut off at the limit while read.
    chunk = b"a=" + b"x" * (1024 * 1024)
    answer = await box.raw(b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded"
                           b"\r\nTransfer-Encoding: chunked\r\n\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert _status(answer) == 413
    async with box.client() as http:
        csrf = await box.login(http)
        cookie = next(c for c in http.cookie_jar if c.key == "secretary_session").value
        answer = await box.raw(f"POST /voices/upload HTTP/1.1\r\nHost: localhost\r\nCookie: secretary_session={cookie}"
                               f"\r\nX-CSRF-Token: {csrf}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                               f"Content-Length: {40 * 1024 * 1024}\r\n\r\n".encode())
        assert _status(answer) == 413 and b"at most 32 MB" in answer


async def test_the_throttle_keys_ipv6_by_64_and_believes_only_trusted_proxies(box: TlsBox,
                                                                             broker: MosquittoBroker,
                                                                             tmp_path: Path) -> None:
    async def attempt(http: aiohttp.ClientSession, forwarded: str | None, password: str = "a wrong guess") -> int:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        async with http.post(f"{box.url}/login", data={"password": password}, headers=headers,
                             allow_redirects=False) as response:
            return response.status

    async with box.client() as http:  # 127.0.0.1 is a trusted proxy here
        assert [await attempt(http, "2001:db8:1:2::a") for _ in range(5)] == [401] * 5
        assert await attempt(http, "2001:db8:1:2::a") == 429
        assert await attempt(http, "2001:db8:1:2:ffff::77") == 429  # the same /64: the same client
        assert await attempt(http, "2001:db8:1:3::a") == 401  # the next /64 is someone else
        # A client cannot pick its address: the proxy's own (rightmost) entry counts, not what the client sent.
        assert [await attempt(http, f"203.0.113.{n}, 198.51.100.7") for n in range(5)] == [401] * 5
        assert await attempt(http, "203.0.113.99, 198.51.100.7") == 429
        assert await attempt(http, "198.51.100.8") == 401
        # Without a header the proxy itself is the client, and the right password still works from elsewhere.
        assert await attempt(http, "192.0.2.50", PASSWORD) == 303


async def test_forwarded_for_is_ignored_without_trusted_proxies(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with tls_box(broker, tmp_path) as plain_box, plain_box.client() as http:
        statuses = []
        for n in range(6):
            async with http.post(f"{plain_box.url}/login", data={"password": "guess"},
                                 headers={"X-Forwarded-For": f"203.0.113.{n}"}) as response:
                statuses.append(response.status)
        assert statuses == [401] * 5 + [429]  # every guess came from 127.0.0.1, whatever the header said


async def test_a_streamed_upload_reads_its_csrf_field_first(box: TlsBox) -> None:
    """The voice upload is read part by part: the form's _csrf must come first; a missing or late one is refused."""
    from tests.daemon.web.test_web_security import _wav

    async with box.client() as http:
        csrf = await box.login(http)

        def form(fields: list[tuple[str, str]]) -> aiohttp.FormData:
            data = aiohttp.FormData()
            for name, value in fields:
                data.add_field(name, value)
            data.add_field("samples", _wav(5.0), filename="me.wav", content_type="audio/wav")
            return data

        async with http.post(f"{box.url}/voices/upload", data=form([("voice", "anna"), ("_csrf", csrf)])) as response:
            assert response.status == 403  # the token came after another field
        async with http.post(f"{box.url}/voices/upload", data=form([("_csrf", "forged"), ("voice", "anna")])) as response:
            assert response.status == 403
        assert not (box.data_dir / "voices" / "anna").exists()
        async with http.post(f"{box.url}/voices/upload", data=form([("_csrf", csrf), ("voice", "anna")])) as response:
            assert response.status == 200 and "Added 1 sample to anna" in await response.text()
        assert (box.data_dir / "voices" / "anna" / "01.wav").exists()
