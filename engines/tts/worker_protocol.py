"""The framed protocol between the daemon and a TTS worker process (over the worker's stdin/stdout).

GPU engines live in worker processes so a CUDA crash kills a worker, never the
daemon. Both directions carry the same frame::

    4 bytes   magic b"TTSW"
    4 bytes   header length H, big-endian (1 .. 64 KiB)
    4 bytes   payload length P, big-endian (0 .. 16 MiB; only "audio" has one)
    H bytes   header: a UTF-8 JSON object with a "type"
    P bytes   payload: int16 little-endian mono PCM

Messages (fields besides "type"):

    worker -> daemon                         daemon -> worker
    hello  {protocol, pid, python}           load       {backend, settings}
    ready  {info}                            synthesize {id, request}
    audio  {id, sample_rate, text} + PCM     cancel     {id}
    done   {id, cancelled}                   ping       {seq}
    error  {id|null, message, kind}          shutdown   {}
    pong   {seq}

``error.kind`` is "request" (bad input: no failover), "backend" (the engine
failed), "unavailable" (cannot run here: package, device or model missing) or
"protocol" (a malformed frame). The worker serves one synthesis at a time;
``cancel`` stops it after the chunk in progress and is answered by ``done``
with ``cancelled: true`` (or by the ``done``/``error`` that was already on its
way). Anything that breaks these rules is a ``ProtocolError`` naming what was
wrong; the magic makes stray prints on the worker's stdout fail loudly.

Stdlib and numpy only: the worker runs under other interpreters.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

PROTOCOL_VERSION = 1
MAGIC = b"TTSW"
PREFIX = struct.Struct(">4sII")
MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 16 * 1024 * 1024

ERROR_KINDS = frozenset({"request", "backend", "unavailable", "protocol"})

_INT = (int,)
_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": {"protocol": _INT, "pid": _INT, "python": (str,)},
    "ready": {"info": (dict,)},
    "audio": {"id": _INT, "sample_rate": _INT, "text": (str,)},
    "done": {"id": _INT, "cancelled": (bool,)},
    "error": {"id": (int, type(None)), "message": (str,), "kind": (str,)},
    "pong": {"seq": _INT},
    "load": {"backend": (str,), "settings": (dict,)},
    "synthesize": {"id": _INT, "request": (dict,)},
    "cancel": {"id": _INT},
    "ping": {"seq": _INT},
    "shutdown": {},
}
WORKER_MESSAGES = frozenset({"hello", "ready", "audio", "done", "error", "pong"})
DAEMON_MESSAGES = frozenset({"load", "synthesize", "cancel", "ping", "shutdown"})


class ProtocolError(Exception):
    """A frame or message broke the protocol."""


@dataclass(frozen=True)
class Message:
    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def __post_init__(self) -> None:
        schema = _SCHEMA.get(self.type)
        if schema is None:
            raise ProtocolError(f"unknown message type {self.type!r}")
        for name, types in schema.items():
            if name not in self.fields:
                raise ProtocolError(f"{self.type!r} message lacks field {name!r}")
            value = self.fields[name]
            if isinstance(value, bool) and bool not in types:
                raise ProtocolError(f"{self.type!r} field {name!r} must be {_names(types)}, got a bool")
            if not isinstance(value, types):
                raise ProtocolError(f"{self.type!r} field {name!r} must be {_names(types)}, got {type(value).__name__}")
        if self.type == "error" and self.fields["kind"] not in ERROR_KINDS:
            raise ProtocolError(f"error kind {self.fields['kind']!r} is not one of {sorted(ERROR_KINDS)}")
        if self.type == "audio":
            if self.fields["sample_rate"] <= 0:
                raise ProtocolError(f"audio sample_rate must be positive, got {self.fields['sample_rate']}")
            if len(self.payload) % 2:
                raise ProtocolError(f"audio payload of {len(self.payload)} bytes is not whole int16 samples")
        elif self.payload:
            raise ProtocolError(f"{self.type!r} message must not carry a payload ({len(self.payload)} bytes)")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def encode(message: Message) -> bytes:
    header = json.dumps({"type": message.type, **message.fields}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(header) > MAX_HEADER:
        raise ProtocolError(f"{message.type!r} header of {len(header)} bytes exceeds {MAX_HEADER}")
    if len(message.payload) > MAX_PAYLOAD:
        raise ProtocolError(f"{message.type!r} payload of {len(message.payload)} bytes exceeds {MAX_PAYLOAD}")
    return PREFIX.pack(MAGIC, len(header), len(message.payload)) + header + message.payload


def parse_prefix(prefix: bytes) -> tuple[int, int]:
    """(header length, payload length) of a frame prefix; ``ProtocolError`` when it is not one."""
    magic, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(
            f"malformed frame: bad magic {prefix[:4]!r} (expected {MAGIC!r}; "
            f"did something print to the worker's stdout? bytes seen: {prefix!r})"
        )
    if not 1 <= header_len <= MAX_HEADER:
        raise ProtocolError(f"malformed frame: header length {header_len} outside 1..{MAX_HEADER}")
    if payload_len > MAX_PAYLOAD:
        raise ProtocolError(f"malformed frame: payload length {payload_len} exceeds {MAX_PAYLOAD}")
    return header_len, payload_len


def parse_message(header: bytes, payload: bytes) -> Message:
    try:
        data = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed frame: header is not UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"malformed frame: header must be a JSON object, got {type(data).__name__}")
    kind = data.pop("type", None)
    if not isinstance(kind, str):
        raise ProtocolError("malformed frame: header has no string 'type'")
    return Message(kind, data, payload)


def read_message(stream: BinaryIO) -> Message | None:
    """Blocking read of one message; ``None`` at a clean end of stream (between frames)."""
    prefix = _read_exactly(stream, PREFIX.size, allow_eof=True)
    if prefix is None:
        return None
    header_len, payload_len = parse_prefix(prefix)
    header = _read_exactly(stream, header_len)
    payload = _read_exactly(stream, payload_len) if payload_len else b""
    assert header is not None and payload is not None
    return parse_message(header, payload)


def _read_exactly(stream: BinaryIO, size: int, *, allow_eof: bool = False) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        data = stream.read(remaining)
        if not data:
            if allow_eof and remaining == size:
                return None
            raise ProtocolError(f"truncated frame: stream ended {remaining} bytes short of {size}")
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


async def read_message_async(reader: asyncio.StreamReader) -> Message | None:
    """One message from an asyncio stream; ``None`` at a clean end of stream (between frames)."""
    try:
        prefix = await reader.readexactly(PREFIX.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError(f"truncated frame: stream ended after {len(exc.partial)} prefix bytes {exc.partial!r}") from None
    header_len, payload_len = parse_prefix(prefix)
    try:
        header = await reader.readexactly(header_len)
        payload = await reader.readexactly(payload_len) if payload_len else b""
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError(f"truncated frame: stream ended {exc.expected - len(exc.partial)} bytes short") from None
    return parse_message(header, payload)


# -- message constructors (one place that spells each message) --------------


def audio_message(request_id: int, samples: np.ndarray, sample_rate: int, text: str) -> Message:
    pcm = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    return Message("audio", {"id": request_id, "sample_rate": int(sample_rate), "text": text}, pcm)


def audio_samples(message: Message) -> np.ndarray:
    """The int16 samples of an ``audio`` message (a copy the caller owns)."""
    return np.frombuffer(message.payload, dtype="<i2").astype(np.int16)


def error_message(request_id: int | None, message: str, kind: str) -> Message:
    return Message("error", {"id": request_id, "message": message, "kind": kind})
