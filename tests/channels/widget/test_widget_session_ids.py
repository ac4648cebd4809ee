"""Widget session ids are the server's: a made-up id never becomes a session, and new sessions are rate-limited.

Over the real widget server (real aiohttp, a real WebSocket client); the
visitor's address comes from ``X-Forwarded-For`` as a reverse proxy on the
same host would send it.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from channels.widget.visitor_sessions import valid_session_id
from channels.widget.widget_context import NEW_SESSIONS_PER_HOUR
from daemon.tools.private_broker import MosquittoBroker
from tests.channels.widget.test_widget_channel import site
from tests.channels.widget.widget_harness import SITE, WidgetBox, receive_until, widget_box, widget_config


async def hello(http: aiohttp.ClientSession, box: WidgetBox, session: str | None = None,
                address: str = "203.0.113.7") -> str:
    """The session id the server gives a visitor at ``address`` who brings ``session``."""
    async with http.ws_connect(box.chat_url(session=session), origin=SITE,
                               headers={"X-Forwarded-For": address}) as ws:
        answer = (await receive_until(ws, "hello", timeout=10))[-1]
    assert valid_session_id(answer["session"])
    return str(answer["session"])


async def test_a_made_up_session_id_gets_a_fresh_one_and_a_real_one_resumes(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    config = widget_config(tmp_path / "data", broker, {"site": site(), "shop": site()})
    async with widget_box(config, daemon=False, ready=False) as box, aiohttp.ClientSession() as http:
        issued = await hello(http, box)
        assert len(issued) == 24
        assert await hello(http, box, issued) == issued  # a reload resumes the server's session
        made_up = "A" * 24  # looks like an id, was never issued
        first = await hello(http, box, made_up)
        assert first not in (made_up, issued)
        assert await hello(http, box, made_up) not in (made_up, first)  # it did not become a session
        victim = await hello(http, box, address="198.51.100.1")
        assert await hello(http, box, victim, address="198.51.100.1") == victim
        other_widget = box.chat_url(widget="shop", session=issued)
        async with http.ws_connect(other_widget, origin=SITE) as ws:  # another widget's id is not this one's
            assert (await receive_until(ws, "hello", timeout=10))[-1]["session"] != issued
        assert len({issued, first, victim}) == 3


async def test_new_sessions_are_rate_limited_per_address(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = widget_config(tmp_path / "data", broker, {"site": site()})
    async with widget_box(config, daemon=False, ready=False) as box, aiohttp.ClientSession() as http:
        sessions = [await hello(http, box) for _ in range(NEW_SESSIONS_PER_HOUR)]
        assert len(set(sessions)) == NEW_SESSIONS_PER_HOUR
        for made_up in (None, "B" * 24):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await hello(http, box, made_up)
            assert refused.value.status == 429
            assert refused.value.headers is not None and int(refused.value.headers["Retry-After"]) > 3000
        assert await hello(http, box, sessions[0]) == sessions[0]  # the visitor's own session still resumes
        assert await hello(http, box, address="203.0.113.8") not in sessions  # another address is not held up
        async with http.get(f"{box.url}/healthz") as response:
            assert response.status == 200  # the server goes on
