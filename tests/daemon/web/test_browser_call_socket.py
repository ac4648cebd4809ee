"""The test-call WebSocket against a real aiohttp server and client."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from daemon.call.stream_line import FRAME_BYTES, StreamLineSession
from daemon.web.browser_call_socket import CallRunner, serve_browser_call

Event = Callable[[dict[str, Any]], None]


@dataclass
class RunnerLog:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: str | None = None  # "returned" or "cancelled"
    frames: list[bytes] = field(default_factory=list)


def echo_runner(record: RunnerLog, *, reason: str = "caller_hangup") -> CallRunner:
    """Greets, then echoes every caller frame until the session closes."""

    async def run(session: StreamLineSession, on_event: Event) -> str:
        record.started.set()
        try:
            on_event({"type": "utterance", "role": "secretary", "text": "Hello, who is calling?"})
            while True:
                frame = await session.read_frame(timeout=0.05)
                if frame is None:
                    if session.closed:
                        record.outcome = "returned"
                        return reason
                    continue
                record.frames.append(frame)
                session.write_frame(frame)
        except asyncio.CancelledError:
            record.outcome = "cancelled"
            raise
        finally:
            record.ended.set()

    return run


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the loop's exception handler (destroyed pending tasks, unretrieved exceptions)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    gc.collect()
    await asyncio.sleep(0.01)
    loop.set_exception_handler(previous)
    assert errors == []


class AppServer(TestServer):
    """TestServer whose handlers run as under ``web.AppRunner``'s defaults (not cancelled when the client leaves)."""

    def __init__(self, app: web.Application, *, handler_cancellation: bool) -> None:
        super().__init__(app)
        self.handler_cancellation = handler_cancellation

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        kwargs["handler_cancellation"] = self.handler_cancellation
        return await super()._make_runner(**kwargs)


@asynccontextmanager
async def serving(
    runner: CallRunner,
    *,
    shutdown_timeout: float = 2.0,
    handler_cancellation: bool = False,
    **options: Any,
) -> AsyncIterator[TestClient]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_browser_call(request, runner, call_id="web-test", **options)

    app = web.Application()
    app.router.add_get("/ws/test-call", handler)
    server = AppServer(app, handler_cancellation=handler_cancellation)
    await server.start_server(shutdown_timeout=shutdown_timeout)
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def connect(client: TestClient) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/ws/test-call")
    ready = await ws.receive_json(timeout=2)
    assert ready == {"type": "ready", "call_id": "web-test", "sample_rate": 8000, "frame_ms": 20, "format": "s16le"}
    return ws


async def collect(ws: aiohttp.ClientWebSocketResponse, *, audio_bytes: int = 0, until: str | None = None) -> tuple[bytes, list[dict[str, Any]]]:
    """Reads until ``audio_bytes`` of audio arrived and (if given) an event of type ``until``."""
    audio = bytearray()
    events: list[dict[str, Any]] = []
    while len(audio) < audio_bytes or (until is not None and not any(e["type"] == until for e in events)):
        msg = await ws.receive(timeout=3)
        if msg.type is WSMsgType.BINARY:
            assert len(msg.data) == FRAME_BYTES
            audio += msg.data
        elif msg.type is WSMsgType.TEXT:
            events.append(json.loads(msg.data))
        else:
            raise AssertionError(f"socket ended early: {msg.type} {msg.data!r}")
    return bytes(audio), events


def pattern(count: int) -> bytes:
    return bytes((i * 7 + i // 256) % 256 for i in range(count))


async def test_ready_echo_and_event(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record)) as client:
        ws = await connect(client)
        audio = pattern(FRAME_BYTES * 3)
        for chunk in (audio[:1], audio[1:500], audio[500:501], audio[501:]):  # odd sizes, re-cut by the session
            await ws.send_bytes(chunk)
        echoed, events = await collect(ws, audio_bytes=len(audio), until="utterance")
        assert echoed == audio
        assert {"type": "utterance", "role": "secretary", "text": "Hello, who is calling?"} in events
        await ws.send_json({"type": "hangup"})
        _, events = await collect(ws, until="ended")
        assert events[-1] == {"type": "ended", "reason": "caller_hangup"}
        await ws.close()


async def test_hangup_ends_the_runner_and_closes(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record)) as client:
        ws = await connect(client)
        await asyncio.wait_for(record.started.wait(), 2)
        await ws.send_bytes(pattern(FRAME_BYTES))
        await ws.send_json({"type": "hangup"})
        _, events = await collect(ws, until="ended")
        assert events[-1] == {"type": "ended", "reason": "caller_hangup"}
        assert (await ws.receive(timeout=2)).type is WSMsgType.CLOSE
        assert record.ended.is_set() and record.outcome == "returned"
        assert record.frames == [pattern(FRAME_BYTES)]


async def test_malformed_text_is_answered_and_the_call_goes_on(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record)) as client:
        ws = await connect(client)
        for bad in ("not json", '{"type": "dance"}', "[1, 2]", '{"no_type": true}'):
            await ws.send_str(bad)
            _, events = await collect(ws, until="error")
            error = next(e for e in events if e["type"] == "error")
            assert isinstance(error["message"], str) and error["message"]
        await ws.send_bytes(pattern(FRAME_BYTES * 2))
        echoed, _ = await collect(ws, audio_bytes=FRAME_BYTES * 2)
        assert echoed == pattern(FRAME_BYTES * 2)
        assert not record.ended.is_set()
        await ws.send_json({"type": "hangup"})
        _, events = await collect(ws, until="ended")
        await ws.close()


async def test_runner_ending_first_sends_its_audio_then_ended_and_closes(loop_errors: list[dict[str, Any]]) -> None:
    async def goodbye(session: StreamLineSession, on_event: Event) -> str:
        on_event({"type": "utterance", "role": "secretary", "text": "Goodbye."})
        for value in (1, 2, 3):
            session.write_frame(bytes([value]) * FRAME_BYTES)
        return "completed"

    async with serving(goodbye) as client:
        ws = await connect(client)
        audio, events = await collect(ws, audio_bytes=FRAME_BYTES * 3, until="ended")
        assert audio == b"".join(bytes([v]) * FRAME_BYTES for v in (1, 2, 3))
        assert events == [
            {"type": "utterance", "role": "secretary", "text": "Goodbye."},
            {"type": "ended", "reason": "completed"},
        ]
        assert (await ws.receive(timeout=2)).type is WSMsgType.CLOSE
        assert ws.closed


@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["handler-kept", "handler-cancelled"])
async def test_browser_leaving_without_hangup_ends_the_runner(loop_errors: list[dict[str, Any]], handler_cancellation: bool) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record), handler_cancellation=handler_cancellation) as client:
        ws = await connect(client)
        await asyncio.wait_for(record.started.wait(), 2)
        await ws.close()
        await asyncio.wait_for(record.ended.wait(), 3)
        # aiohttp either lets the handler wind the call down or cancels it outright; both end the runner.
        assert record.outcome == ("cancelled" if handler_cancellation else "returned")


async def test_browser_connection_dropping_ends_the_runner(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record)) as client:
        ws = await connect(client)
        await asyncio.wait_for(record.started.wait(), 2)
        connection = ws._response.connection
        assert connection is not None and connection.transport is not None
        connection.transport.abort()  # no close frame: the TCP connection just goes
        await asyncio.wait_for(record.ended.wait(), 3)
        assert record.outcome == "returned"


async def test_runner_error_is_reported_as_ended_error(loop_errors: list[dict[str, Any]]) -> None:
    async def broken(session: StreamLineSession, on_event: Event) -> str:
        raise RuntimeError("the dialogue engine fell over")

    async with serving(broken) as client:
        ws = await connect(client)
        _, events = await collect(ws, until="ended")
        assert events[-1] == {"type": "ended", "reason": "error"}
        await ws.close()


async def test_max_call_duration(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record), max_call_s=0.3) as client:
        ws = await connect(client)
        _, events = await collect(ws, until="ended")
        assert events[-1] == {"type": "ended", "reason": "max_duration"}
        assert record.outcome == "returned"
        await ws.close()


async def test_a_runner_that_ignores_the_hangup_is_cancelled(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()

    async def stubborn(session: StreamLineSession, on_event: Event) -> str:
        record.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            record.outcome = "cancelled"
            raise
        return "never"

    async with serving(stubborn, runner_grace_s=0.2) as client:
        ws = await connect(client)
        await asyncio.wait_for(record.started.wait(), 2)
        await ws.send_json({"type": "hangup"})
        _, events = await collect(ws, until="ended")
        assert events[-1] == {"type": "ended", "reason": "hangup"}
        assert record.outcome == "cancelled"
        await ws.close()


async def test_oversized_message_closes_the_socket(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record), max_message_bytes=4096) as client:
        ws = await connect(client)
        await ws.send_bytes(b"\x00" * 5000)
        while (msg := await ws.receive(timeout=3)).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED):
            pass
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await asyncio.wait_for(record.ended.wait(), 3)


async def read_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """What a browser does: keep reading (and so answer the server's close) until the socket ends."""
    texts: list[Any] = []
    while (msg := await ws.receive(timeout=5)).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
        if msg.type is WSMsgType.TEXT:
            texts.append(json.loads(msg.data))
    return texts


async def test_server_shutdown_during_a_call_is_clean(loop_errors: list[dict[str, Any]]) -> None:
    record = RunnerLog()
    async with serving(echo_runner(record), shutdown_timeout=0.5) as client:
        ws = await connect(client)
        await asyncio.wait_for(record.started.wait(), 2)
        await ws.send_bytes(pattern(FRAME_BYTES))
        await collect(ws, audio_bytes=FRAME_BYTES)
        browser = asyncio.create_task(read_until_closed(ws))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.server.close()  # aiohttp waits shutdown_timeout, then cancels the handler
        assert loop.time() - started < 3
        assert record.ended.is_set() and record.outcome == "cancelled"
        await asyncio.wait_for(browser, 3)
        assert ws.closed
    pending = [t for t in asyncio.all_tasks() if t.get_name().startswith("test-call-")]
    assert pending == []

