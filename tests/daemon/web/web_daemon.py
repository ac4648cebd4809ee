"""The whole daemon in-process with its web page on a free loopback port: real broker, simulator, light engines."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from daemon.web.auth import PasswordStore
from daemon.web.web_service import password_path
from tests.support.daemon_runner import LIGHT_ENGINES, write_config

PASSWORD = "correct horse battery"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "test-artifacts"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebDaemon:
    app: SecretaryApp
    url: str
    config_path: Path
    data_dir: Path
    broker: MosquittoBroker

    def client(self) -> aiohttp.ClientSession:
        """An HTTP client that keeps cookies for 127.0.0.1 (aiohttp's default jar ignores cookies of IP hosts)."""
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self, session: aiohttp.ClientSession, password: str = PASSWORD) -> str:
        """Sign in; returns the CSRF token of the session (from the page's meta tag)."""
        async with session.post(f"{self.url}/login", data={"password": password, "next": "/"},
                                headers={"Origin": self.url}) as response:
            text = await response.text()
            assert response.status == 200, (response.status, text[:500])
        marker = '<meta name="csrf-token" content="'
        start = text.index(marker) + len(marker)
        return text[start:text.index('"', start)]


@asynccontextmanager
async def web_daemon(
    broker: MosquittoBroker, tmp_path: Path, extra: str = "", engines: str = LIGHT_ENGINES,
) -> AsyncIterator[WebDaemon]:
    port = free_port()
    data_dir = tmp_path / "data"
    config = write_config(
        tmp_path / "config.yaml", broker, data_dir,
        extra=f"web:\n  listen: 127.0.0.1:{port}\n" + extra, answer_after_rings=1, engines=engines,
    )
    await asyncio.to_thread(PasswordStore(password_path(data_dir)).set_password, PASSWORD)
    app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(app.run())
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_serving(url)
        yield WebDaemon(app, url, config, data_dir, broker)
    finally:
        app.stop()
        await asyncio.wait_for(task, 10)


async def wait_until_serving(url: str, *, tls: bool = False) -> None:
    """Wait until the in-process daemon's page at ``url`` answers ``/healthz`` with the bus up (10 s at most)."""
    connector = aiohttp.TCPConnector(ssl=False) if tls else None  # only to see it is up: no certificate check here
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(200):
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200 and (await response.json())["bus"]:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the web page did not come up at {url}")
