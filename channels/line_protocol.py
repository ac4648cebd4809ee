"""The line socket: how a channel hands a call's audio to the daemon's call flow.

Audio never travels over MQTT. A channel that carries a live call (Twilio
Media Streams) connects to the daemon's Unix socket
(``data_dir/run/lines.sock``) and speaks this framing, one message after
another: ``kind`` (1 byte) + payload length (2 bytes, big-endian) + payload.

- ``H`` hello (channel -> daemon, first): JSON ``{call_id, caller, channel, persona}``.
- ``E`` event (daemon -> channel): JSON; ``ready`` first (or ``refused`` and the
  socket closes), then the call's ``utterance`` events, then ``ended``.
- ``A`` audio (both ways): 8 kHz mono PCM16 little-endian; the daemon sends
  20 ms frames paced in real time, the channel any length.
- ``E`` event (channel -> daemon): ``{"type": "dtmf", "digit": "5"}``, a key the caller pressed.
- ``X`` hangup (channel -> daemon): JSON ``{reason}``; the caller is gone.

The 2-byte length caps every message at ``MAX_PAYLOAD`` (65535 bytes); a JSON
message (hello, event, hangup) is also refused over ``MAX_JSON_PAYLOAD`` and
when it is not a JSON object (``decode_json``), before it is parsed.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from channels.peer_json import BadJson, parse_peer_json

HELLO: Final = b"H"
EVENT: Final = b"E"
AUDIO: Final = b"A"
HANGUP: Final = b"X"
KINDS: Final = frozenset({HELLO, EVENT, AUDIO, HANGUP})
MAX_PAYLOAD: Final = 65_535
MAX_JSON_PAYLOAD: Final = 4096  # a hello or an event is a few short fields
SAMPLE_RATE: Final = 8000
FRAME_BYTES: Final = 320  # 20 ms


class LineProtocolError(ValueError):
    """The peer sent something that is not this framing."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / "run" / "lines.sock"


def encode(kind: bytes, payload: bytes) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    return kind + struct.pack(">H", len(payload)) + payload


def encode_json(kind: bytes, data: dict[str, Any]) -> bytes:
    return encode(kind, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def encode_audio(pcm: bytes) -> bytes:
    """Audio of any length as one or more ``A`` messages."""
    return b"".join(encode(AUDIO, pcm[i:i + MAX_PAYLOAD]) for i in range(0, len(pcm), MAX_PAYLOAD)) if pcm else b""


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next ``(kind, payload)``; None at a clean end of stream; LineProtocolError for garbage."""
    try:
        head = await reader.readexactly(3)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise LineProtocolError("the stream ended inside a message header") from None
        return None
    kind, length = head[:1], struct.unpack(">H", head[1:])[0]
    if kind not in KINDS:
        raise LineProtocolError(f"unknown message kind {kind!r}")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise LineProtocolError("the stream ended inside a message") from None
    return kind, payload


def decode_json(payload: bytes) -> dict[str, Any]:
    """A JSON message's object; LineProtocolError (saying why) for anything else."""
    if len(payload) > MAX_JSON_PAYLOAD:
        raise LineProtocolError(f"a JSON message of {len(payload)} bytes is over the limit of {MAX_JSON_PAYLOAD}")
    try:
        data = parse_peer_json(payload)
    except BadJson as exc:
        raise LineProtocolError(str(exc)) from None
    if not isinstance(data, dict):
        raise LineProtocolError("a JSON object was expected")
    return data


class LineConnection:
    """A channel's side of one call on the line socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send_audio(self, pcm: bytes) -> None:
        if pcm and not self._writer.is_closing():
            self._writer.write(encode_audio(pcm))
            await self._writer.drain()

    async def send_dtmf(self, digit: str) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode_json(EVENT, {"type": "dtmf", "digit": digit}))
            await self._writer.drain()

    async def hangup(self, reason: str) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode_json(HANGUP, {"reason": reason}))
            await self._writer.drain()

    async def messages(self) -> AsyncIterator[tuple[bytes, bytes]]:
        """What the daemon sends (``E`` events, ``A`` reply frames) until it closes the call."""
        while True:
            message = await read_message(self._reader)
            if message is None:
                return
            yield message

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass


@asynccontextmanager
async def open_line(
    path: Path, *, call_id: str, caller: str | None, channel: str, persona: str | None = None,
    timeout_s: float = 10.0,
) -> AsyncIterator[tuple[LineConnection, dict[str, Any]]]:
    """Connect, say hello and wait for ``ready``; yields the connection and the ready event.

    Raises ConnectionError when the daemon is not there or refuses the call.
    """
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"the daemon's line socket {path} is not answering: {exc}") from exc
    connection = LineConnection(reader, writer)
    try:
        writer.write(encode_json(HELLO, {"call_id": call_id, "caller": caller, "channel": channel, "persona": persona}))
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            first = await read_message(reader)
        if first is None or first[0] != EVENT:
            raise ConnectionError("the daemon closed the line without an answer")
        ready = decode_json(first[1])
        if ready.get("type") != "ready":
            raise ConnectionError(f"the daemon refused the call: {ready.get('message', ready)}")
        yield connection, ready
    finally:
        await connection.close()
