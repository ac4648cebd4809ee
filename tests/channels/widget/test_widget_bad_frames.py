"""A visitor's garbage gets a protocol error and the chat goes on; an oversized frame closes with 1009, nothing more.

Over the real widget server (real aiohttp, a real WebSocket client).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

from channels.widget.routes import MAX_FRAME_BYTES
from daemon.tools.private_broker import MosquittoBroker
from tests.channels.widget.test_widget_channel import site
from tests.channels.widget.widget_harness import SITE, receive_until, widget_box, widget_config


async def test_garbage_frames_are_answered_and_an_oversized_one_closes_only_its_socket(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    config = widget_config(tmp_path / "data", broker, {"site": site()})
    async with widget_box(config, daemon=False, ready=False) as box, aiohttp.ClientSession() as http:
        async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
            session = (await receive_until(ws, "hello"))[-1]["session"]
            for _ in range(5):
                for frame in ("[" * 5000, '{"type": "mess', '["message"]', '{"type": "message", "text": ["x"]}'):
                    await ws.send_str(frame)
                    answer = (await receive_until(ws, "error"))[-1]
                    assert answer["for"] in ("protocol", "message"), answer
                await ws.send_bytes(b"\xff\xfe")
                assert (await receive_until(ws, "error"))[-1]["for"] == "protocol"
            await ws.send_str('{"type": "message", "text": "' + "a" * MAX_FRAME_BYTES + '"}')
            closing = await ws.receive(timeout=5)
            assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED) and ws.close_code == WSCloseCode.MESSAGE_TOO_BIG
        # the visitor comes back to the same conversation; the server goes on
        async with http.ws_connect(box.chat_url(session=session), origin=SITE) as ws:
            assert (await receive_until(ws, "hello"))[-1]["session"] == session
