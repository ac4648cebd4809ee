"""The widget channel end to end over HTTP and WebSocket: the real broker, the daemon's real chat service,
an OpenAI-protocol stand-in for the model, and a stand-in for the owner's call-back desk."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path

import aiohttp
import pytest

from channels.bus_contract.clients import WIDGET
from channels.widget.widget_channel import WidgetChannel
from daemon.tools.private_broker import MosquittoBroker
from tests.calls.call_harness import cloud_llm
from tests.channels.widget.callback_desk import callback_desk
from tests.channels.widget.widget_harness import (
    ANSWER,
    SITE,
    RecordedStatus,
    StreamedAnswers,
    no_conversational_llm,
    receive_until,
    wait_for,
    widget_box,
    widget_config,
)
from tests.daemon.web.web_daemon import free_port
from tests.engines.llm_standins import StandIn

pytestmark = pytest.mark.timeout(120)
OTHER_SITE = "https://evil.example"


def site(**overrides: object) -> dict[str, object]:
    return {"persona": "gulya", "title": "Ask Gulya", "greeting": "Hi! How can I help?", "primary_color": "#112233",
            "position": "bottom-left", "allowed_origins": [SITE], **overrides}


def upgrade_headers(origin: str | None) -> dict[str, str]:
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    if origin is not None:
        headers["Origin"] = origin
    return headers


async def test_script_config_cors_origin_checks_and_health(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = widget_config(tmp_path / "data", broker, {"site": site()})
    async with widget_box(config, daemon=False) as box, aiohttp.ClientSession() as http:
        async with http.get(f"{box.url}/widget.js") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
            assert response.headers["Cache-Control"] == "public, max-age=300"
            script = await response.read()
            etag = response.headers["ETag"]
        assert script == (Path(__file__).resolve().parents[3] / "channels/widget/static/widget.js").read_bytes()
        async with http.get(f"{box.url}/widget.js", headers={"If-None-Match": etag}) as response:
            assert response.status == 304

        async with http.get(f"{box.url}/widget/site/config", headers={"Origin": SITE}) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == SITE
            assert response.headers["Vary"] == "Origin"
            look = await response.json()
        assert look == {"id": "site", "title": "Ask Gulya", "name": "Гуля", "language": "ru", "greeting": "Hi! How can I help?",
                        "primary_color": "#112233", "text_color": "#ffffff", "position": "bottom-left", "max_chars": 1000}
        for origin in (OTHER_SITE, "null", None):
            headers = {"Origin": origin} if origin is not None else {}
            async with http.get(f"{box.url}/widget/site/config", headers=headers) as response:
                assert response.status == 403, origin
                assert "Access-Control-Allow-Origin" not in response.headers
                assert await response.json() == {"error": "origin not allowed"}
        async with http.get(f"{box.url}/widget/nope/config", headers={"Origin": SITE}) as response:
            assert response.status == 404

        # the chat socket: the origin is checked before the upgrade
        for origin in (OTHER_SITE, None):
            async with http.get(f"{box.url}/widget/site/chat", headers=upgrade_headers(origin)) as response:
                assert response.status == 403
                assert await response.json() == {"error": "origin not allowed"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(box.chat_url(), origin=OTHER_SITE)
        assert refused.value.status == 403
        async with http.get(f"{box.url}/widget/nope/chat", headers=upgrade_headers(SITE)) as response:
            assert response.status == 404
            assert await response.json() == {"error": "unknown widget"}
        async with http.get(f"{box.url}/widget/site/chat", headers={"Origin": SITE}) as response:
            assert response.status == 400  # not an upgrade

        async with http.get(f"{box.url}/healthz") as response:
            assert await response.json() == {"status": "ok", "bus": True, "widgets": ["site"], "chats": 0}
    assert box.status.history[-1] == ("ready", f"serving 1 widget(s) on {config.channels.widget.listen}")


async def test_answers_stream_with_the_persona_and_history_survives_a_reconnect(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    llm = StreamedAnswers()
    server = StandIn(llm)
    await server.start()
    try:
        config = widget_config(tmp_path / "data", broker, {"site": site(history_turns=1, llm=["cloud"])},
                               engines__llm=cloud_llm(server.url))
        async with widget_box(config) as box, aiohttp.ClientSession() as http:
            async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
                hello = (await receive_until(ws, "hello"))[-1]
                assert hello["history"] == []
                session = hello["session"]
                await ws.send_json({"type": "message", "text": "Is Alex in today?"})
                streamed = await receive_until(ws, "done")
            assert streamed == [{"type": "delta", "text": piece} for piece in ANSWER] + [
                {"type": "done", "text": "Hello! Alex is out until five.", "handoff": False}]

            # a reload: the same session id brings the conversation back, and the model gets it as history
            async with http.ws_connect(box.chat_url(session=session), origin=SITE) as ws:
                hello = (await receive_until(ws, "hello"))[-1]
                assert hello == {"type": "hello", "session": session, "history": [
                    {"role": "user", "text": "Is Alex in today?"},
                    {"role": "assistant", "text": "Hello! Alex is out until five."}]}
                for text in ("And tomorrow?", "Thanks"):
                    await ws.send_json({"type": "message", "text": text})
                    assert (await receive_until(ws, "done"))[-1]["type"] == "done"

            # another visitor has a conversation of their own
            async with http.ws_connect(box.chat_url(session="forged-but-unknown-id"), origin=SITE) as ws:
                hello = (await receive_until(ws, "hello"))[-1]
                assert hello["history"] == [] and hello["session"] != session
    finally:
        await server.stop()
    first, second, third = (body["messages"] for body in llm.bodies)
    assert first[0]["role"] == "system" and first[0]["content"].startswith("Ты Гуля")  # the widget's persona
    assert first[1:] == [{"role": "user", "content": "Is Alex in today?"}]
    assert second[1:] == [{"role": "user", "content": "Is Alex in today?"},
                          {"role": "assistant", "content": "Hello! Alex is out until five."},
                          {"role": "user", "content": "And tomorrow?"}]
    # history_turns: 1, so the third request carries only the exchange before it
    assert third[1:] == [{"role": "user", "content": "And tomorrow?"},
                         {"role": "assistant", "content": "Hello! Alex is out until five."},
                         {"role": "user", "content": "Thanks"}]


async def test_without_a_conversational_model_the_visitor_is_offered_a_call_back(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    server = StandIn(StreamedAnswers())
    await server.start()
    try:
        config = widget_config(tmp_path / "data", broker, {"site": site()},
                               engines__llm=no_conversational_llm(server.url))
        async with widget_box(config) as box, aiohttp.ClientSession() as http:
            async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
                await receive_until(ws, "hello")
                await ws.send_json({"type": "message", "text": "Hello?"})
                done = (await receive_until(ws, "done"))[-1]
                hello_again = None
            async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
                hello_again = (await receive_until(ws, "hello"))[-1]
    finally:
        await server.stop()
    assert done["handoff"] is True and "leave your number and we will call you back" in done["text"]
    assert not [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert hello_again["history"] == []


async def test_bad_frames_get_an_error_and_the_conversation_goes_on(tmp_path: Path, broker: MosquittoBroker) -> None:
    server = StandIn(StreamedAnswers())
    await server.start()
    try:
        config = widget_config(tmp_path / "data", broker, {"site": site(llm=["cloud"])},
                               engines__llm=cloud_llm(server.url))
        async with widget_box(config) as box, aiohttp.ClientSession() as http:
            async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
                await receive_until(ws, "hello")
                errors = []
                for frame in ("not json", "[1, 2]", json.dumps({"type": "shout"}), json.dumps({"type": "message"}),
                              json.dumps({"type": "message", "text": "   "}),
                              json.dumps({"type": "message", "text": "x" * 1001}), "[" * 30000 + "]" * 30000):
                    await ws.send_str(frame)
                    errors.append((await receive_until(ws, "error", timeout=5))[-1])
                await ws.send_bytes(b"\x00\x01")
                errors.append((await receive_until(ws, "error", timeout=5))[-1])
                await ws.send_json({"type": "message", "text": "y" * 1000})  # exactly the limit is fine
                answered = await receive_until(ws, "done")
    finally:
        await server.stop()
    assert [e["for"] for e in errors] == ["protocol", "protocol", "protocol", "message", "message", "message", "protocol",
                                          "protocol"]
    assert "not a JSON message" in errors[0]["message"]
    assert "too long: at most 1000 characters" in errors[5]["message"]
    assert answered[-1]["text"] == "Hello! Alex is out until five."
    assert len(server.requests) >= 1 and server.requests[-1].body["messages"][-1]["content"] == "y" * 1000


async def test_rate_limits_per_session_and_per_address(tmp_path: Path, broker: MosquittoBroker) -> None:
    server = StandIn(StreamedAnswers())
    await server.start()
    try:
        widgets = {"site": site(messages_per_minute=2), "shop": site(messages_per_minute=5, persona=None)}
        config = widget_config(tmp_path / "data", broker, widgets, engines__llm=cloud_llm(server.url))
        async with widget_box(config) as box, aiohttp.ClientSession() as http:
            async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
                await receive_until(ws, "hello")
                for n in range(2):
                    await ws.send_json({"type": "message", "text": f"question {n}"})
                    assert (await receive_until(ws, "done"))[-1]["type"] == "done"
                started = time.monotonic()
                await ws.send_json({"type": "message", "text": "one more"})
                limited = (await receive_until(ws, "rate_limited", "done"))[-1]
            # a new session from the same address: the address has used its minute too
            async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
                await receive_until(ws, "hello")
                await ws.send_json({"type": "message", "text": "fresh session"})
                limited_again = (await receive_until(ws, "rate_limited", "done"))[-1]
            # another widget counts on its own
            async with http.ws_connect(box.chat_url("shop"), origin=SITE) as ws:
                await receive_until(ws, "hello")
                await ws.send_json({"type": "message", "text": "shop question"})
                other = (await receive_until(ws, "rate_limited", "done"))[-1]
    finally:
        await server.stop()
    assert limited["type"] == "rate_limited" and limited["for"] == "message"
    assert 1 <= limited["retry_after_s"] <= 60 - int(time.monotonic() - started) + 1
    assert "too fast" in limited["message"] and f"wait {limited['retry_after_s']} second" in limited["message"]
    assert limited_again["type"] == "rate_limited"
    assert other["type"] == "done"
    answered = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(answered) == 3  # refused messages never reach the model


async def test_the_call_back_hand_off_reaches_the_desk(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = widget_config(tmp_path / "data", broker, {"site": site()})
    async with (callback_desk(broker) as desk, widget_box(config, daemon=False) as box,
                aiohttp.ClientSession() as http):
        async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
            session = (await receive_until(ws, "hello"))[-1]["session"]
            await ws.send_json({"type": "callback", "name": "John", "number": "call me maybe"})
            invalid = (await receive_until(ws, "error"))[-1]
            await ws.send_json({"type": "callback", "name": " John  Peters ", "number": "+7 (916) 123-45-67",
                                "note": "About the invoice", "page": f"{SITE}/pricing"})
            accepted = (await receive_until(ws, "callback_ok"))[-1]
            desk.reply = {"ok": False, "error": {"code": "invalid", "message": "this number is blocked"}}
            await ws.send_json({"type": "callback", "number": "12345"})
            refused = (await receive_until(ws, "error"))[-1]
            desk.reply = None
            for _ in range(4):  # five call-backs an hour per visitor
                await ws.send_json({"type": "callback", "number": "12345", "page": "https://elsewhere.example/"})
                assert (await receive_until(ws, "callback_ok", "error"))[-1]["type"] == "callback_ok"
            await ws.send_json({"type": "callback", "number": "12345"})
            too_many = (await receive_until(ws, "rate_limited", "callback_ok"))[-1]
        requests = await desk.wait(6)
    assert invalid == {"type": "error", "for": "callback", "handoff": False,
                       "message": "Please enter a valid phone number: digits with an optional leading +, 5 to 20 digits."}
    assert accepted == {"type": "callback_ok", "id": "cb-1"}
    first = requests[0]
    assert abs(first.pop("ts") - time.time()) < 30
    assert first["session"].startswith("widget:site:") and session not in first["session"]
    assert first == {"widget": "site", "name": "John Peters", "number": "+79161234567", "note": "About the invoice",
                     "page": f"{SITE}/pricing", "session": first["session"]}
    assert refused["for"] == "callback" and "this number is blocked" in refused["message"]
    assert requests[2]["page"] == SITE  # a page off the chat's origin is not believed
    assert too_many["type"] == "rate_limited" and too_many["for"] == "callback"
    assert len(desk.requests) == 6


async def test_without_the_broker_it_serves_degraded_and_tells_the_visitor(tmp_path: Path) -> None:
    config = widget_config(tmp_path / "data", f"mqtt://127.0.0.1:{free_port()}", {"site": site()})
    async with widget_box(config, daemon=False, ready=False) as box, aiohttp.ClientSession() as http:
        await wait_for(lambda: box.status.last is not None and box.status.last[0] == "degraded", 10, "degraded")
        async with http.get(f"{box.url}/healthz") as response:
            assert (await response.json())["bus"] is False
        async with http.ws_connect(box.chat_url(), origin=SITE) as ws:
            await receive_until(ws, "hello")
            await ws.send_json({"type": "message", "text": "Anyone there?"})
            chat_error = (await receive_until(ws, "error"))[-1]
            await ws.send_json({"type": "callback", "number": "12345"})
            callback_error = (await receive_until(ws, "error"))[-1]
    assert "not connected to the broker" in box.status.history[-1][1]
    assert chat_error["for"] == "message" and "not reachable" in chat_error["message"]
    assert callback_error["for"] == "callback" and "could not be sent" in callback_error["message"]


async def test_stopping_closes_open_chats_as_going_away_and_frees_the_port(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = widget_config(tmp_path / "data", broker, {"site": site()})
    channel = WidgetChannel(config, broker.login(WIDGET))
    status = RecordedStatus()
    async with asyncio.TaskGroup() as tasks, aiohttp.ClientSession() as http:
        served = tasks.create_task(channel.run(status))
        await wait_for(lambda: status.last is not None and status.last[0] == "ready", 10, "the widget server")
        port = channel.port
        sockets = [await http.ws_connect(f"ws://127.0.0.1:{port}/widget/site/chat", origin=SITE) for _ in range(3)]
        for ws in sockets:
            await receive_until(ws, "hello")
        started = time.monotonic()
        served.cancel()
        closes = [await asyncio.wait_for(ws.receive(), 5) for ws in sockets]
        await asyncio.wait_for(asyncio.gather(served, return_exceptions=True), 5)
        stopped_in = time.monotonic() - started
        for ws in sockets:
            await ws.close()
    assert [c.type for c in closes] == [aiohttp.WSMsgType.CLOSE] * 3
    assert {c.data for c in closes} == {1001}
    assert stopped_in < 3 and channel.port is None
    # the port is free again: a new server binds it
    again = WidgetChannel(config, broker.login(WIDGET))
    async with asyncio.TaskGroup() as tasks:
        served = tasks.create_task(again.run(RecordedStatus()))
        await wait_for(lambda: again.port == port, 10, "the second server")
        served.cancel()
