"""A stand-in for Twilio in tests: signed webhooks and a Media Streams client that behaves like Twilio's.

It posts ``/twilio/voice`` like Twilio does (form parameters, signed for the
public URL), reads the TwiML back, opens the ``<Stream>`` URL with a signed
upgrade (it connects to the local listener but signs the public ``wss://``
URL, as Twilio does through a proxy), and then speaks the real Media Streams
protocol: ``connected``, ``start``, 20 ms ``media`` messages of mu-law paced in
real time, ``stop``. Outbound ``media`` is "played" in real time: a ``mark``
is echoed back once the audio sent before it has played, and ``clear`` drops
what is still buffered (echoing the pending marks at once), as Twilio does.
When the server closes the stream, the client requests the ``<Connect>``
action like Twilio would and keeps the TwiML it got.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
from twilio.request_validator import RequestValidator

from drivers.audio.g711 import ulaw_decode, ulaw_encode

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
FRAME_S = 0.02


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def pcm_to_ulaw(pcm: bytes) -> bytes:
    return ulaw_encode(np.frombuffer(pcm, dtype="<i2")).tobytes()


def ulaw_to_samples(codes: bytes) -> np.ndarray:
    return ulaw_decode(codes).astype(np.float64)


@dataclass
class StreamCall:
    """What one call over the media stream looked like from Twilio's side."""

    call_sid: str
    stream_sid: str
    twiml: ET.Element
    stream_url: str
    parameters: dict[str, str]
    started_at: float = 0.0
    media: list[tuple[float, bytes]] = field(default_factory=list)  # (seconds after start, mu-law)
    marks_received: list[tuple[float, str]] = field(default_factory=list)
    marks_echoed: list[tuple[float, str]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    stop_sent_at: float | None = None
    client_closed: bool = False
    closed_by_server_at: float | None = None
    close_code: int | None = None
    action_twiml: ET.Element | None = None

    @property
    def reply_audio(self) -> bytes:
        return b"".join(codes for _, codes in self.media)

    @property
    def first_media_s(self) -> float | None:
        return self.media[0][0] if self.media else None

    @property
    def first_speech_s(self) -> float | None:
        return next((at for at, codes in self.media if is_speech(codes)), None)


class TwilioStandIn:
    """Twilio, as far as the box can tell: signed webhooks and Media Streams calls."""

    def __init__(self, local_url: str, public_url: str, auth_token: str, account_sid: str) -> None:
        self.local_url = local_url.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> TwilioStandIn:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    # -- webhooks -----------------------------------------------------------------------
    def call_params(self, call_sid: str, caller: str, called: str, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "ringing",
            "Called": called, "Caller": caller, "Direction": "inbound", "From": caller, "To": called,
            "CallerCountry": "US", "ToCountry": "US", **extra,
        }

    def local(self, url: str) -> str:
        """The local listener's URL for a public one (what the proxy in front of the box would forward to)."""
        parts = urlsplit(url)
        assert url.startswith(self.public_url) or url.replace("wss://", "https://").startswith(self.public_url), url
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        base = self.local_url.replace("http://", "ws://") if parts.scheme in ("ws", "wss") else self.local_url
        return base + path

    async def post(
        self, url: str, params: Mapping[str, str], *, signature: str | None | bool = True,
    ) -> tuple[int, str]:
        """POST ``params`` to the public ``url`` (signed unless ``signature`` says otherwise)."""
        assert self.session is not None
        headers = {}
        if signature is True:
            headers["X-Twilio-Signature"] = self.validator.compute_signature(url, dict(params))
        elif isinstance(signature, str):
            headers["X-Twilio-Signature"] = signature
        async with self.session.post(self.local(url), data=dict(params), headers=headers) as response:
            return response.status, await response.text()

    async def webhook(self, path: str, params: Mapping[str, str]) -> ET.Element:
        status, text = await self.post(self.public_url + path, params)
        assert status == 200, (status, text)
        return ET.fromstring(text)

    async def open_stream(self, url: str, signature: str | None | bool = True) -> aiohttp.ClientWebSocketResponse:
        assert self.session is not None
        headers = {}
        if signature is True:
            headers["X-Twilio-Signature"] = self.validator.compute_signature(url, {})
        elif isinstance(signature, str):
            headers["X-Twilio-Signature"] = signature
        return await self.session.ws_connect(self.local(url), headers=headers, autoping=True)

    # -- a call over Media Streams --------------------------------------------------------
    async def call(
        self, caller_audio: bytes, *, caller: str, called: str, call_sid: str | None = None,
        stream_sid: str | None = None, tail_s: float = 0.0,
        hang_up: bool = True, inject_at_s: dict[float, str] | None = None, max_s: float = 120.0,
    ) -> StreamCall:
        """A whole call: the voice webhook, then ``caller_audio`` (8 kHz PCM16) and ``tail_s`` of silence
        streamed in real time; then ``stop`` (when ``hang_up``) or more silence until the box closes the stream.

        ``inject_at_s``: raw text messages (a DTMF event, garbage) sent at those seconds after ``start``."""
        call_sid = call_sid or new_sid("CA")
        params = self.call_params(call_sid, caller, called)
        twiml = await self.webhook("/twilio/voice", params)
        stream = twiml.find("./Connect/Stream")
        assert stream is not None, ET.tostring(twiml)
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        result = StreamCall(call_sid, stream_sid or new_sid("MZ"), twiml, stream.get("url", ""), parameters)
        ws = await self.open_stream(result.stream_url)
        try:
            await self._converse(ws, result, pcm_to_ulaw(caller_audio) + b"\xff" * int(tail_s * 8000),
                                 hang_up, inject_at_s or {}, max_s)
        finally:
            await ws.close()
        connect = twiml.find("./Connect")
        if result.closed_by_server_at is not None and connect is not None and connect.get("action"):
            result.action_twiml = await self.webhook(
                urlsplit(connect.get("action", "")).path, {**params, "CallStatus": "in-progress",
                                                           "StreamSid": result.stream_sid})
        return result

    async def _converse(
        self, ws: aiohttp.ClientWebSocketResponse, call: StreamCall, audio: bytes, hang_up: bool,
        inject_at_s: dict[float, str], max_s: float,
    ) -> None:
        sequence = 0

        def seq() -> str:
            nonlocal sequence
            sequence += 1
            return str(sequence)

        await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await ws.send_json({
            "event": "start", "sequenceNumber": seq(), "streamSid": call.stream_sid,
            "start": {
                "accountSid": self.account_sid, "streamSid": call.stream_sid, "callSid": call.call_sid,
                "tracks": ["inbound"], "customParameters": call.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        })
        call.started_at = time.monotonic()
        player = _Player()
        receiving = asyncio.create_task(self._receive(ws, call, player))
        try:
            chunk = 0
            pending = sorted(inject_at_s.items())
            while not receiving.done():
                now = time.monotonic() - call.started_at
                if now > max_s:
                    raise AssertionError(f"the box did not end the call within {max_s} s")
                offset = chunk * FRAME_BYTES
                if hang_up and offset >= len(audio):
                    break
                codes = audio[offset:offset + FRAME_BYTES] if offset < len(audio) else b"\xff" * FRAME_BYTES
                chunk += 1
                await ws.send_json({
                    "event": "media", "sequenceNumber": seq(), "streamSid": call.stream_sid,
                    "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                              "payload": base64.b64encode(codes.ljust(FRAME_BYTES, b"\xff")).decode()},
                })
                while pending and now >= pending[0][0]:
                    await ws.send_str(pending.pop(0)[1])
                for name in player.due(time.monotonic()):
                    call.marks_echoed.append((time.monotonic() - call.started_at, name))
                    await ws.send_json({"event": "mark", "sequenceNumber": seq(), "streamSid": call.stream_sid,
                                        "mark": {"name": name}})
                await asyncio.sleep(max(call.started_at + chunk * FRAME_S - time.monotonic(), 0))
            if hang_up and not receiving.done():
                call.client_closed = True
                await ws.send_json({"event": "stop", "sequenceNumber": seq(), "streamSid": call.stream_sid,
                                    "stop": {"accountSid": self.account_sid, "callSid": call.call_sid}})
                call.stop_sent_at = time.monotonic()
        except ConnectionError:
            pass  # the box closed the stream while we were sending
        finally:
            if not receiving.done():
                call.client_closed = True
                await ws.close()  # Twilio closes its side after ``stop``
            await asyncio.wait_for(receiving, 10)

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, call: StreamCall, player: _Player) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            at = time.monotonic() - call.started_at
            kind = event.get("event")
            assert event.get("streamSid") == call.stream_sid, event
            if kind == "media":
                codes = base64.b64decode(event["media"]["payload"])
                call.media.append((at, codes))
                player.queue(len(codes) / 8000, time.monotonic())
            elif kind == "mark":
                call.marks_received.append((at, event["mark"]["name"]))
                player.mark(event["mark"]["name"])
            elif kind == "clear":
                call.clears.append(at)
                player.clear(time.monotonic())
            else:
                call.other.append(event)
        call.close_code = ws.close_code
        if not call.client_closed:
            call.closed_by_server_at = time.monotonic()


class _Player:
    """Twilio's playback of the reply: audio plays in real time; a mark is due once everything before it played."""

    def __init__(self) -> None:
        self.play_until = 0.0
        self.marks: list[tuple[float, str]] = []

    def queue(self, seconds: float, now: float) -> None:
        self.play_until = max(self.play_until, now) + seconds

    def mark(self, name: str) -> None:
        self.marks.append((self.play_until, name))

    def clear(self, now: float) -> None:
        self.play_until = now
        self.marks = [(now, name) for _, name in self.marks]

    def due(self, now: float) -> list[str]:
        ready = [name for at, name in self.marks if at <= now]
        self.marks = [(at, name) for at, name in self.marks if at > now]
        return ready


def dtmf(stream_sid: str, digit: str) -> str:
    return json.dumps({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": "0",
                       "dtmf": {"track": "inbound_track", "digit": digit}})


def is_speech(codes: bytes, threshold: float = 300.0) -> bool:
    samples = ulaw_to_samples(codes)
    return bool(len(samples)) and float(np.sqrt(np.mean(samples ** 2))) > threshold
