"""The settings page's secret and program rules through the real daemon, its aiohttp app and a signed-in session.

The attack of issue 19: point ``channels.remote.url`` at a listener of one's
own and ``password_env`` at the Twilio token's variable. The listener is a
real TCP server that reads the MQTT v5 CONNECT the bridge sends and keeps its
password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.tools.private_broker import MosquittoBroker
from tests.daemon.web.web_daemon import WebDaemon, web_daemon

TWILIO_TOKEN = "twilio-auth-token-0123456789"
pytestmark = pytest.mark.slow


class ConnectListener:
    """A loopback 'broker' that records the username and password of each MQTT CONNECT, then hangs up."""

    def __init__(self) -> None:
        self.logins: list[tuple[str | None, bytes | None]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ConnectListener:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readexactly(1)
            if header[0] >> 4 == 1:  # CONNECT
                self.logins.append(_credentials(await reader.readexactly(await _varint(reader))))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _varint(reader: asyncio.StreamReader) -> int:
    value, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7


def _credentials(body: bytes) -> tuple[str | None, bytes | None]:
    """(username, password) of an MQTT 3.1.1 or 5 CONNECT packet's body."""
    at = 0

    def take(size: int) -> bytes:
        nonlocal at
        at += size
        return body[at - size:at]

    def field() -> bytes:
        return take(int.from_bytes(take(2), "big"))

    def skip_properties() -> None:
        nonlocal at
        length, shift = 0, 0
        while True:
            byte = take(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        at += length

    field()  # "MQTT"
    level = take(1)[0]
    flags = take(1)[0]
    take(2)  # keepalive
    if level == 5:
        skip_properties()
    field()  # client id
    if flags & 0x04:  # a will
        if level == 5:
            skip_properties()
        field()
        field()
    username = field().decode() if flags & 0x80 else None
    password = field() if flags & 0x40 else None
    return username, password


@pytest.fixture
async def box(broker: MosquittoBroker, tmp_path: Path) -> AsyncIterator[WebDaemon]:
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"SECRETARY_TWILIO_AUTH_TOKEN={TWILIO_TOKEN}\n", encoding="utf-8")
    secrets.chmod(0o600)
    async with web_daemon(broker, tmp_path, extra=f"secrets_file: {secrets}\n") as daemon:
        yield daemon


async def _post(box: WebDaemon, section: str, form: dict[str, str]) -> tuple[int, str]:
    async with box.client() as http:
        csrf = await box.login(http)
        async with http.post(f"{box.url}/config/{section}", data={"_csrf": csrf, **form},
                             headers={"Origin": box.url}, allow_redirects=False) as response:
            return response.status, await response.text()


async def test_the_twilio_token_cannot_be_sent_to_a_listener_of_the_attackers(box: WebDaemon, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    config_before, secrets_before = box.config_path.read_bytes(), secrets.read_bytes()
    async with ConnectListener() as listener:
        attack = {
            "channels.remote.url": f"mqtt://127.0.0.1:{listener.port}",
            "channels.remote.username": "attacker",  # the client sends a password only with a username
            "channels.remote.password_env": "SECRETARY_TWILIO_AUTH_TOKEN",
            "present:channels.remote.enabled": "1", "channels.remote.enabled": "on",
        }
        status, page = await _post(box, "channels", attack)
        assert status == 400
        assert "type the secret again" in page and TWILIO_TOKEN not in page
        assert box.config_path.read_bytes() == config_before and secrets.read_bytes() == secrets_before
        await asyncio.sleep(1.0)
        assert listener.logins == []

        # The same change with the secret typed again: accepted, and what goes there is what was typed.
        status, _ = await _post(box, "channels", {**attack, "secret:channels.remote.password_env": "typed-for-the-bridge"})
        assert status == 303
        assert "SECRETARY_TWILIO_AUTH_TOKEN=typed-for-the-bridge" in secrets.read_text(encoding="utf-8")
        for _ in range(200):  # the reload starts the bridge, which connects to the listener
            if listener.logins:
                break
            await asyncio.sleep(0.05)
        assert listener.logins, "the bridge never connected"
        assert set(listener.logins) == {("attacker", b"typed-for-the-bridge")}


async def test_a_destination_change_without_a_stored_secret_is_saved(box: WebDaemon) -> None:
    status, _ = await _post(box, "channels", {"channels.remote.url": "mqtts://fleet.example.org:8883"})
    assert status == 303 and "mqtts://fleet.example.org:8883" in box.config_path.read_text(encoding="utf-8")


async def test_a_crafted_post_cannot_change_a_program_field(box: WebDaemon) -> None:
    before = box.config_path.read_bytes()
    status, page = await _post(box, "engines", {"engines.tts.xtts.python": "/tmp/evil-python"})
    assert status == 400 and "not editable from the web page" in page
    assert box.config_path.read_bytes() == before
    async with box.client() as http:
        await box.login(http)
        async with http.get(f"{box.url}/config/engines") as response:
            html = await response.text()
    field = html[html.index('id="f-engines-tts-xtts-python"') - 200:html.index('id="f-engines-tts-xtts-python"') + 200]
    assert "readonly" in field and 'name="engines.tts.xtts.python"' not in html
