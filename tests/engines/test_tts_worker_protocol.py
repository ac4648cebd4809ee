"""The worker protocol: frames round-trip, malformed frames are rejected with a reason, the worker process obeys it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engines
from engines.tts.settings import PiperSettings
from engines.tts.worker_protocol import (
    MAGIC,
    MAX_HEADER,
    Message,
    ProtocolError,
    audio_message,
    audio_samples,
    encode,
    error_message,
    read_message,
    read_message_async,
)

SOURCE_ROOT = Path(engines.__file__).resolve().parent.parent


def _frame(header: bytes, payload: bytes = b"", magic: bytes = MAGIC) -> bytes:
    return magic + struct.pack(">II", len(header), len(payload)) + header + payload


def test_messages_round_trip_sync_and_async() -> None:
    samples = (np.sin(np.arange(480) / 3) * 10000).astype(np.int16)
    messages = [
        Message("hello", {"protocol": 1, "pid": 42, "python": "/usr/bin/python3"}),
        audio_message(7, samples, 22050, "Привет."),
        Message("done", {"id": 7, "cancelled": False}),
        error_message(None, "no CUDA", "unavailable"),
        Message("shutdown"),
    ]
    stream = io.BytesIO(b"".join(encode(m) for m in messages))
    decoded = [read_message(stream) for _ in messages]
    assert read_message(stream) is None  # clean end between frames
    assert [m.type for m in decoded if m] == ["hello", "audio", "done", "error", "shutdown"]
    audio = decoded[1]
    assert audio is not None and audio["text"] == "Привет." and np.array_equal(audio_samples(audio), samples)

    async def read_all() -> list[Message]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"".join(encode(m) for m in messages))
        reader.feed_eof()
        out = []
        while (message := await read_message_async(reader)) is not None:
            out.append(message)
        return out

    assert [m.fields for m in asyncio.run(read_all())] == [m.fields for m in messages]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"Loading checkpoint...\n" + b"x" * 20, "bad magic b'Load'.*print to the worker's stdout"),
        (_frame(b""), "header length 0"),
        (MAGIC + struct.pack(">II", MAX_HEADER + 1, 0), "header length 65537"),
        (MAGIC + struct.pack(">II", 10, 1 << 30), "payload length 1073741824 exceeds"),
        (_frame(b"{not json"), "header is not UTF-8 JSON"),
        (_frame(b"[1, 2]"), "header must be a JSON object"),
        (_frame(b'{"id": 1}'), "no string 'type'"),
        (_frame(b'{"type": "dance"}'), "unknown message type 'dance'"),
        (_frame(b'{"type": "audio", "id": 1, "sample_rate": 22050}'), "'audio' message lacks field 'text'"),
        (_frame(b'{"type": "audio", "id": 1, "sample_rate": 22050, "text": ""}', b"\x00\x01\x02"), "not whole int16 samples"),
        (_frame(b'{"type": "done", "id": "7", "cancelled": false}'), "field 'id' must be int, got str"),
        (_frame(b'{"type": "done", "id": true, "cancelled": false}'), "field 'id' must be int, got a bool"),
        (_frame(b'{"type": "ping", "seq": 1}', b"\x00\x00"), "must not carry a payload"),
        (_frame(b'{"type": "error", "id": null, "message": "x", "kind": "oops"}'), "error kind 'oops'"),
        (_frame(b'{"type": "ping", "seq": 1}')[:-3], "truncated frame"),
    ],
)
def test_malformed_frames_are_rejected_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        read_message(io.BytesIO(data))


def test_worker_process_rejects_a_malformed_frame_and_exits_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "engines.tts.worker", "--backend", "piper"],
        input=b"GARBAGE-NOT-A-FRAME",
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2
    out = io.BytesIO(result.stdout)
    hello, error = read_message(out), read_message(out)
    assert hello is not None and hello.type == "hello" and hello["protocol"] == 1
    assert error is not None and error.type == "error" and error["kind"] == "protocol"
    assert "bad magic b'GARB'" in error["message"]


def test_worker_process_serves_load_ping_synthesize_and_exits_on_eof() -> None:
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    commands = b"".join(
        encode(m)
        for m in (
            Message("ping", {"seq": 1}),
            Message("load", {"backend": "piper", "settings": PiperSettings().as_json()}),
            Message("synthesize", {"id": 5, "request": {"text": "One. Two.", "language": "en", "voice": None, "preset": None}}),
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "engines.tts.worker", "--backend", "piper"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(commands)
        process.stdin.flush()
        replies = []
        while not replies or replies[-1].type not in ("done", "error"):
            message = read_message(process.stdout)
            assert message is not None, "worker closed its stdout early"
            replies.append(message)
        process.stdin.close()  # the daemon went away: the worker exits on its own
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    kinds = [m.type for m in replies]
    assert kinds[:3] == ["hello", "pong", "ready"]
    assert replies[2]["info"]["languages"] == ["en"]
    audio = [m for m in replies if m.type == "audio"]
    assert [m["text"] for m in audio] == ["One.", "Two."] and all(m["sample_rate"] == 22050 for m in audio)
    assert all(len(m.payload) > 4000 for m in audio)
    assert replies[-1].fields == {"id": 5, "cancelled": False}
    assert process.stderr is not None and b"stdin closed" in process.stderr.read()


def test_worker_refuses_an_unknown_request_field_as_a_request_error() -> None:
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    commands = b"".join(
        encode(m)
        for m in (
            Message("load", {"backend": "piper", "settings": PiperSettings().as_json()}),
            Message("synthesize", {"id": 1, "request": {"text": "x", "language": "en", "pitch": 3}}),
            Message("synthesize", {"id": 2, "request": {"text": "Hi.", "language": "ru"}}),
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "engines.tts.worker", "--backend", "piper"],
        input=commands, capture_output=True, env=env, timeout=60,
    )
    stream = io.BytesIO(result.stdout)
    errors = []
    while (message := read_message(stream)) is not None:
        if message.type == "error":
            errors.append(message)
    assert [(e["id"], e["kind"]) for e in errors] == [(1, "request"), (2, "request")]
    assert "unknown synthesis request fields: ['pitch']" in errors[0]["message"]
    assert "no voice for language 'ru'" in errors[1]["message"]
    assert json.dumps(errors[1].fields)  # plain JSON all the way
