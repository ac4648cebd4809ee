"""``/twilio/stream``: a call's live audio over Twilio's bidirectional Media Streams, bridged to the daemon's line.

Twilio sends JSON text messages: ``connected``; ``start`` (``streamSid``,
``callSid``, ``customParameters`` from the TwiML, ``mediaFormat``, which must
be ``audio/x-mulaw`` 8000 Hz mono); ``media`` (20 ms of base64 mu-law on the
``inbound`` track); ``mark`` (the reply audio up to a mark we sent has
played); ``dtmf`` (passed to the call flow); ``stop`` (the caller hung up). A ``start`` is
served only for a call a signed ``/twilio/voice`` opened moments ago and that has not streamed yet
(``stream_grants.py``: the HMAC in ``customParameters``, one use, a short TTL); any other is closed
with 1008 and a log line, and the caller's and called numbers come from that signed grant. On ``start`` the call is
opened on the daemon's line socket (``channels.line_protocol``) and bridged
both ways: caller mu-law -> PCM16 -> the line; the line's reply frames (20 ms,
paced by the daemon) -> mu-law -> one ``media`` message each. After every
secretary utterance a ``mark`` follows its audio; an utterance the caller
barged into sends ``clear`` first, so Twilio drops what it still buffers.
When the daemon ends the call the stream waits for its last audio to play and
closes (Twilio then requests the ``<Connect>`` action); when the caller hangs
up the line is hung up and the daemon finishes the record. The line protocol
carries no DTMF yet: digits are logged only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from channels import line_protocol as lp
from channels.peer_json import BadJson, parse_peer_json
from channels.peer_log import BadPayloadLog
from channels.twilio.calls import CallRegistry, TwilioCall, persona_for
from channels.twilio.stream_grants import GrantRefused, StreamGrant, StreamGrants
from config.schema import SecretaryConfig
from drivers.audio.g711 import ulaw_decode, ulaw_encode

log = logging.getLogger("secretary.channels.twilio")

START_TIMEOUT_S: Final = 10.0
IDLE_TIMEOUT_S: Final = 15.0  # Twilio sends 50 media messages a second: this much quiet means the stream is dead
DRAIN_TIMEOUT_S: Final = 60.0  # after the caller hung up, the daemon saves the record and says ``ended``
LAST_AUDIO_TIMEOUT_S: Final = 5.0  # how long the end of the goodbye may take to play before the stream closes
CLOSE_TIMEOUT_S: Final = 2.0
MAX_MESSAGE_BYTES: Final = 64 * 1024  # Twilio's biggest, ``start``, is about 1 KB; media 20 ms of base64 μ-law
FINAL_MARK: Final = "call-ended"
_CLOSED: Final = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class StreamRefused(Exception):
    """The ``start`` message is not one this bridge can serve (``code``: the WebSocket close code it gets)."""

    def __init__(self, message: str, code: WSCloseCode = WSCloseCode.UNSUPPORTED_DATA) -> None:
        super().__init__(message)
        self.code = code


class MediaStreams:
    """The ``/twilio/stream`` endpoint: one ``StreamBridge`` per WebSocket, all closed when the channel stops."""

    def __init__(self, config: SecretaryConfig, calls: CallRegistry, line_path: Path, grants: StreamGrants) -> None:
        self.config = config
        self.calls = calls
        self.line_path = line_path
        self.grants = grants
        self.bridges: set[StreamBridge] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=CLOSE_TIMEOUT_S, max_msg_size=MAX_MESSAGE_BYTES, autoping=True)
        await ws.prepare(request)
        bridge = StreamBridge(ws, self.config, self.calls, self.line_path, self.grants)
        self.bridges.add(bridge)
        try:
            await bridge.run()
        except Exception:  # one broken stream must not take the channel down
            log.exception("twilio media stream failed", extra={"call_sid": bridge.call_sid})
        finally:
            self.bridges.discard(bridge)
            if not ws.closed:
                await ws.close()
        return ws

    async def close_all(self, reason: str) -> None:
        for bridge in list(self.bridges):
            bridge.end(reason)
        for bridge in list(self.bridges):
            with contextlib.suppress(Exception):
                await bridge.ws.close(code=WSCloseCode.GOING_AWAY, message=b"the secretary is shutting down")


class StreamBridge:
    """One Twilio media stream and its call on the daemon's line socket."""

    def __init__(self, ws: web.WebSocketResponse, config: SecretaryConfig, calls: CallRegistry,
                 line_path: Path, grants: StreamGrants) -> None:
        self.ws = ws
        self.config = config
        self.calls = calls
        self.line_path = line_path
        self.grants = grants
        self.call_sid: str | None = None
        self.stream_sid: str | None = None
        self.started_at: float | None = None
        self.first_reply_s: float | None = None  # ``start`` -> first reply audio sent to Twilio
        self.frames_in = 0
        self.frames_out = 0
        self.marks_sent = 0
        self.marks_played = 0
        self.clears = 0
        self.ended: dict[str, Any] | None = None  # the daemon's ``ended`` event
        self._end_reason: str | None = None
        self._end_requested = asyncio.Event()
        self._last_audio_played = asyncio.Event()
        self._hung_up = False

    def end(self, reason: str) -> None:
        """Hang the call up from this side (Twilio says the call is over; the channel stops)."""
        if self._end_reason is None:
            self._end_reason = reason
        self._end_requested.set()

    # -- the stream's life --------------------------------------------------------------
    async def run(self) -> None:
        try:
            start = await self._wait_for_start()
            grant = None if start is None else self._redeem(start)
        except StreamRefused as exc:
            log.warning("twilio media stream refused", extra={"error": str(exc), "call_sid": self.call_sid,
                                                              "close_code": int(exc.code)})
            await self.ws.close(code=exc.code, message=str(exc).encode()[:120])
            return
        if start is None or grant is None:
            return
        call = self._open_call(start, grant)
        try:
            async with lp.open_line(self.line_path, call_id=call.sid, caller=call.caller, channel="twilio",
                                    persona=call.persona) as (line, _ready):
                call.stream = self
                try:
                    await self._bridge(line, call)
                finally:
                    call.stream = None
        except ConnectionError as exc:
            log.error("twilio call cannot reach the secretary", extra={"call_sid": call.sid, "error": str(exc)})
        if call.stream_outcome is None:
            call.stream_outcome = "failed"
        log.info("twilio media stream over", extra={
            "call_sid": call.sid, "outcome": call.stream_outcome, "reason": (self.ended or {}).get("reason"),
            "first_reply_ms": None if self.first_reply_s is None else round(self.first_reply_s * 1000),
            "frames_in": self.frames_in, "frames_out": self.frames_out, "marks_sent": self.marks_sent,
            "marks_played": self.marks_played, "clears": self.clears,
        })

    async def _wait_for_start(self) -> dict[str, Any] | None:
        """The ``start`` message's body; None when the stream ends or stays silent first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                message = await self.ws.receive(timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                log.warning("twilio media stream sent no start", extra={"timeout_s": START_TIMEOUT_S})
                return None
            if message.type in _CLOSED:
                return None
            event = _parse(message, self.call_sid)
            if event is None:
                continue
            kind = event.get("event")
            if kind == "connected":
                log.debug("twilio media stream connected",
                          extra={"protocol": event.get("protocol"), "version": event.get("version")})
            elif kind == "start":
                return _check_start(event)
            elif kind == "stop":
                return None
            else:
                log.info("twilio stream message before start ignored", extra={"event": kind})

    def _redeem(self, start: dict[str, Any]) -> StreamGrant:
        """The signed grant this ``start`` carries, used up; ``StreamRefused`` (1008) when it has none that holds."""
        self.call_sid = str(start["callSid"])
        try:
            return self.grants.redeem(self.call_sid, start.get("customParameters"))
        except GrantRefused as exc:
            raise StreamRefused(str(exc), WSCloseCode.POLICY_VIOLATION) from None

    def _open_call(self, start: dict[str, Any], grant: StreamGrant) -> TwilioCall:
        """The call opened from the signed grant: its numbers, not the unsigned ``start``'s."""
        self.call_sid = grant.call_sid
        self.stream_sid = str(start["streamSid"])
        self.started_at = time.monotonic()
        caller, called = grant.caller, grant.called
        call = self.calls.open(self.call_sid, persona=persona_for(self.config, called), caller=caller, called=called)
        log.info("twilio media stream started", extra={"call_sid": call.sid, "stream_sid": self.stream_sid,
                                                        "caller": call.caller, "persona": call.persona})
        return call

    async def _bridge(self, line: lp.LineConnection, call: TwilioCall) -> None:
        async with asyncio.TaskGroup() as tasks:
            outbound = tasks.create_task(self._to_twilio(line, call), name=f"twilio-out-{call.sid}")
            inbound = tasks.create_task(self._from_twilio(line), name=f"twilio-in-{call.sid}")
            ending = tasks.create_task(self._end_when_asked(line), name=f"twilio-end-{call.sid}")
            await asyncio.wait({inbound})  # the caller's side is over: stop, close, or we closed the stream
            done, _ = await asyncio.wait({outbound}, timeout=DRAIN_TIMEOUT_S)
            if not done:
                log.warning("the secretary did not end the twilio call in time", extra={"call_sid": call.sid})
                outbound.cancel()
            ending.cancel()

    # -- Twilio -> the line -------------------------------------------------------------
    async def _from_twilio(self, line: lp.LineConnection) -> None:
        reason = "caller hung up"
        while True:
            try:
                message = await self.ws.receive(timeout=IDLE_TIMEOUT_S)
            except TimeoutError:
                reason = "the twilio stream went silent"
                log.warning(reason, extra={"call_sid": self.call_sid, "timeout_s": IDLE_TIMEOUT_S})
                break
            if message.type in _CLOSED:
                break
            event = _parse(message, self.call_sid)
            if event is None:
                continue
            kind = event.get("event")
            if kind == "media":
                await self._caller_audio(line, event)
            elif kind == "mark":
                self._mark_played(event)
            elif kind == "dtmf":
                dtmf = event.get("dtmf")
                digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
                if isinstance(digit, str) and len(digit) == 1:
                    await line.send_dtmf(digit)  # the same keys as on the phone line: 0 message, # goodbye
                log.info("twilio dtmf", extra={"call_sid": self.call_sid, "digit": digit})
            elif kind == "stop":
                log.info("twilio media stream stopped", extra={"call_sid": self.call_sid})
                break
            else:
                log.info("twilio stream message ignored", extra={"call_sid": self.call_sid, "event": kind})
        self._last_audio_played.set()  # nobody is listening any more
        await self._hang_up(line, reason)

    async def _caller_audio(self, line: lp.LineConnection, event: dict[str, Any]) -> None:
        media = event.get("media")
        if not isinstance(media, dict) or media.get("track", "inbound") != "inbound":
            return
        try:
            codes = base64.b64decode(str(media["payload"]), validate=True)
        except (KeyError, binascii.Error, ValueError) as exc:
            log.info("twilio media without a valid payload", extra={"call_sid": self.call_sid, "error": str(exc)})
            return
        self.frames_in += 1
        pcm = ulaw_decode(codes).astype("<i2", copy=False).tobytes()
        with contextlib.suppress(ConnectionError):  # the daemon went away: the reply side closes the stream
            await line.send_audio(pcm)

    def _mark_played(self, event: dict[str, Any]) -> None:
        mark = event.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        self.marks_played += 1
        if name == FINAL_MARK:
            self._last_audio_played.set()
        log.debug("twilio played up to a mark", extra={"call_sid": self.call_sid, "mark": name})

    async def _hang_up(self, line: lp.LineConnection, reason: str) -> None:
        if self._hung_up or self.ended is not None:
            return
        self._hung_up = True
        with contextlib.suppress(ConnectionError):
            await line.hangup(reason)

    async def _end_when_asked(self, line: lp.LineConnection) -> None:
        await self._end_requested.wait()
        log.info("twilio call ended from this side", extra={"call_sid": self.call_sid, "reason": self._end_reason})
        await self._hang_up(line, self._end_reason or "ended")
        self._last_audio_played.set()
        await self.ws.close()

    # -- the line -> Twilio -------------------------------------------------------------
    async def _to_twilio(self, line: lp.LineConnection, call: TwilioCall) -> None:
        try:
            async for kind, payload in line.messages():
                if kind == lp.AUDIO:
                    await self._reply_audio(payload)
                elif kind == lp.EVENT:
                    await self._line_event(lp.decode_json(payload), call)
        except (ConnectionError, lp.LineProtocolError) as exc:
            log.error("the secretary's line broke", extra={"call_sid": call.sid, "error": str(exc)})
        if self.ended is not None and not self._hung_up and not self.ws.closed:
            await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": FINAL_MARK}})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LAST_AUDIO_TIMEOUT_S):
                    await self._last_audio_played.wait()
        await self.ws.close()  # Twilio goes on with the <Connect> action

    async def _reply_audio(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        payload = base64.b64encode(ulaw_encode(samples).tobytes()).decode("ascii")
        if await self._send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}):
            self.frames_out += 1
            if self.first_reply_s is None and self.started_at is not None:
                self.first_reply_s = time.monotonic() - self.started_at

    async def _line_event(self, event: dict[str, Any], call: TwilioCall) -> None:
        kind = event.get("type")
        if kind == "utterance" and event.get("role") == "secretary":
            if event.get("interrupted"):
                self.clears += 1
                await self._send({"event": "clear", "streamSid": self.stream_sid})
            self.marks_sent += 1
            await self._send({"event": "mark", "streamSid": self.stream_sid,
                              "mark": {"name": f"utterance-{self.marks_sent}"}})
        elif kind == "ended":
            self.ended = event
            call.stream_outcome = "refused" if event.get("reason") == "refused" else "ended"
            log.info("the secretary ended the twilio call", extra={"call_sid": call.sid, "reason": event.get("reason"),
                                                                  "outcome": event.get("outcome")})

    async def _send(self, message: dict[str, Any]) -> bool:
        if self.ws.closed:
            return False
        try:
            await self.ws.send_str(json.dumps(message, separators=(",", ":")))
        except ConnectionError:  # the caller is gone; the inbound side notices the close
            return False
        return True


_BAD_MESSAGES = BadPayloadLog(log, "twilio media stream")  # once per stream per interval, not per message


def _parse(message: WSMessage, call_sid: str | None) -> dict[str, Any] | None:
    """The JSON object of one stream message; None (logged, rate-limited) for anything else."""
    peer = f"stream {call_sid or '(before start)'}"
    if message.type != WSMsgType.TEXT:
        _BAD_MESSAGES.bad(peer, f"a non-text message ({message.type.name})")
        return None
    try:
        event = parse_peer_json(message.data)
    except (TypeError, BadJson) as exc:
        _BAD_MESSAGES.bad(peer, f"malformed JSON: {exc}")
        return None
    if not isinstance(event, dict):
        _BAD_MESSAGES.bad(peer, f"a JSON {type(event).__name__}, not an object")
        return None
    return event


def _check_start(event: dict[str, Any]) -> dict[str, Any]:
    start = event.get("start")
    if not isinstance(start, dict):
        raise StreamRefused("start carries no start object")
    start = dict(start)
    start.setdefault("streamSid", event.get("streamSid"))
    for key in ("callSid", "streamSid"):
        if not isinstance(start.get(key), str) or not start[key]:
            raise StreamRefused(f"start.{key} is missing")
    media = start.get("mediaFormat")
    try:
        ok = (isinstance(media, dict) and media.get("encoding") == "audio/x-mulaw"
              and int(media.get("sampleRate", 0)) == lp.SAMPLE_RATE and int(media.get("channels", 0)) == 1)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise StreamRefused(f"media format {media!r} is not audio/x-mulaw 8000 Hz mono")
    return start
