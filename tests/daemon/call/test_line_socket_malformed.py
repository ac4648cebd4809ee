"""The line socket refuses what is not a hello it can read, with the reason, and goes on serving calls.

The real service on a real Unix socket; the call behind it is an echo runner
(the call service is tested in test_line_socket.py): it plays back what the
caller says and keeps the DTMF keys it hears.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from channels import line_protocol as lp
from daemon.call.line_socket import LineSocketService
from daemon.call.stream_line import StreamLineSession
from daemon.runtime.service import ServiceState
from daemon.runtime.supervisor import RestartPolicy, Supervisor

BAD_HELLOS = {
    "nested": b"[" * 4000,  # under the size limit: the parser meets it
    "truncated": b'{"call_id": "c1", "channel": "twi',
    "bad UTF-8": b'{"call_id": "\xff\xfe"}',
    "wrong type": b'["c1", "twilio"]',
    "over the JSON limit": json.dumps({"call_id": "c1", "channel": "twilio", "pad": "a" * lp.MAX_JSON_PAYLOAD}).encode(),
}


@dataclass
class EchoCalls:
    keys: list[str] = field(default_factory=list)
    calls: int = 0

    async def __call__(self, session: StreamLineSession, on_event: Callable[[dict[str, Any]], None], *,
                       caller: str | None, channel: str, persona: str | None) -> str:
        self.calls += 1
        session.on_dtmf = self.keys.append
        while (frame := await session.read_frame()) is not None:
            session.write_frame(frame)
        on_event({"type": "ended", "call_id": session.call_id, "reason": "caller_hung_up"})
        return "ended"


@pytest.fixture
async def line_socket(tmp_path: Path) -> AsyncIterator[tuple[Path, EchoCalls]]:
    calls = EchoCalls()
    service = LineSocketService(tmp_path / "data", lambda: calls)
    supervisor = Supervisor(RestartPolicy(0.2, 2, 60), stop_timeout_s=5)
    supervisor.add(service)
    running = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(10):
        while supervisor.reports()["lines"].state is not ServiceState.RUNNING:
            await asyncio.sleep(0.02)
    yield service.path, calls
    assert supervisor.reports()["lines"].restarts == 0  # never crashed
    supervisor.stop()
    await asyncio.wait({running}, timeout=10)


async def say_hello(path: Path, hello: bytes) -> dict[str, Any]:
    """Send ``hello`` as the first message; what the daemon answers (and the socket is closed after it)."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(lp.encode(lp.HELLO, hello))
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await lp.read_message(reader)
            assert answer is not None and answer[0] == lp.EVENT
            assert await lp.read_message(reader) is None  # the daemon closed the line
        return json.loads(answer[1])
    finally:
        writer.close()


async def test_a_hello_that_cannot_be_read_is_refused_with_the_reason(
    line_socket: tuple[Path, EchoCalls], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "secretary")
    path, calls = line_socket
    for _ in range(10):
        for name, hello in BAD_HELLOS.items():
            answer = await say_hello(path, hello)
            assert answer["type"] == "refused", (name, answer)
            assert answer["message"].startswith("the hello is not a JSON object we accept"), (name, answer)
    assert "nested too deeply" in (await say_hello(path, BAD_HELLOS["nested"]))["message"]
    assert "over the limit of 4096" in (await say_hello(path, BAD_HELLOS["over the JSON limit"]))["message"]
    assert calls.calls == 0
    refused = [r.getMessage() for r in caplog.records if r.name == "secretary.lines" and r.levelno >= logging.WARNING]
    assert len(refused) == 1, refused  # 52 bad hellos: one line

    # the next good call is served, and a bad event in it is ignored, not the end of the call
    async with lp.open_line(path, call_id="c-good", caller="+15551230000", channel="twilio") as (line, ready):
        assert ready["type"] == "ready"
        line._writer.write(lp.encode(lp.EVENT, b"[" * 5000) + lp.encode(lp.EVENT, b"\xff"))
        await line.send_dtmf("5")
        await line.send_audio(bytes(range(256)) * 5)  # 4 frames
        echoed = bytearray()
        async with asyncio.timeout(5):
            async for kind, payload in line.messages():
                if kind == lp.AUDIO:
                    echoed.extend(payload)
                if len(echoed) >= 4 * lp.FRAME_BYTES:
                    break
        await line.hangup("caller hung up")
    assert bytes(echoed) == (bytes(range(256)) * 5)[:4 * lp.FRAME_BYTES] and calls.keys == ["5"]
