"""The line socket service: calls whose audio arrives from a channel (Twilio) run on the same call flow.

It listens on ``data_dir/run/lines.sock`` (mode 0660: the daemon's user and
group only). Each connection is one call, framed as ``channels.line_protocol``
describes: a hello, then audio both ways and the call's events back, until
either side hangs up. The call itself is ``CallService.line_call``.

A hello that is not a JSON object we accept (bad UTF-8, bad or too deeply
nested JSON, over ``MAX_JSON_PAYLOAD``) is refused with the reason; a bad
event during the call is logged (once per call per interval) and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from channels import line_protocol as lp
from channels.peer_log import BadPayloadLog
from daemon.bus.commands import CommandError
from daemon.call.stream_line import StreamLineSession
from daemon.records.call_record import is_valid_call_id
from daemon.runtime.service import Service, ServiceStatus

log = logging.getLogger("secretary.lines")
HELLO_TIMEOUT_S = 5.0
DTMF_KEYS = frozenset("0123456789*#ABCD")


class LineCallRunner(Protocol):
    def __call__(
        self, session: StreamLineSession, on_event: Callable[[dict[str, Any]], None], *, caller: str | None,
        channel: str, persona: str | None,
    ) -> Awaitable[str]: ...


class LineSocketService(Service):
    name = "lines"

    def __init__(self, data_dir: Path, runner: Callable[[], LineCallRunner | None]) -> None:
        self.path = lp.socket_path(data_dir)
        self._runner = runner
        self.calls: set[str] = set()
        self.bad_payloads = BadPayloadLog(log, "line socket")

    def config_slice(self) -> Any:
        return self.path

    async def run(self, status: ServiceStatus) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a killed daemon
        server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o660)
        status.ready(f"listening on {self.path}")
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one_call(reader, writer)
        except lp.LineProtocolError as exc:  # garbage instead of the framing: once per interval, however often
            self.bad_payloads.bad("framing", f"line call dropped: {exc}")
        except ConnectionError as exc:
            log.warning("line call dropped", extra={"error": str(exc)})
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await writer.wait_closed()

    async def _one_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def refuse(message: str, *, bad_hello: bool = False) -> None:
            if bad_hello:  # a peer's garbage: logged once per interval, however often it comes
                self.bad_payloads.bad("hello", message)
            else:
                log.warning("line call refused", extra={"reason": message})
            writer.write(lp.encode_json(lp.EVENT, {"type": "refused", "message": message}))
            await writer.drain()

        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                first = await lp.read_message(reader)
        except TimeoutError:
            return await refuse("no hello within 5 s")
        if first is None:
            return
        if first[0] != lp.HELLO:
            return await refuse("the first message must be a hello")
        try:
            hello = lp.decode_json(first[1])
        except lp.LineProtocolError as exc:
            return await refuse(f"the hello is not a JSON object we accept: {exc}", bad_hello=True)
        call_id, caller, channel, persona = (hello.get("call_id"), hello.get("caller"), hello.get("channel"),
                                             hello.get("persona"))
        if not isinstance(call_id, str) or not is_valid_call_id(call_id) or call_id in self.calls:
            return await refuse("call_id must be a new id of letters, digits, '.', '_' or '-'")
        if not isinstance(channel, str) or not channel.isidentifier():
            return await refuse("channel must name the channel, e.g. twilio")
        if caller is not None and not isinstance(caller, str) or persona is not None and not isinstance(persona, str):
            return await refuse("caller and persona must be strings or null")
        runner = self._runner()
        if runner is None:
            return await refuse("the call service is not running")
        session = StreamLineSession(call_id)
        self.calls.add(call_id)
        try:
            await self._bridge(reader, writer, session, runner, caller, channel, persona)
        finally:
            self.calls.discard(call_id)
            session.close()

    @staticmethod
    def _channel_event(session: StreamLineSession, event: dict[str, Any]) -> None:
        """What a channel may tell about its caller: a DTMF key (``{"type": "dtmf", "digit": "5"}``)."""
        digit = event.get("digit")
        if event.get("type") == "dtmf" and isinstance(digit, str) and len(digit) == 1 and digit in DTMF_KEYS:
            if session.on_dtmf is not None:
                session.on_dtmf(digit)
        else:
            log.info("unknown event from the channel ignored", extra={"call_id": session.call_id})

    async def _bridge(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: StreamLineSession,
        runner: LineCallRunner, caller: str | None, channel: str, persona: str | None,
    ) -> None:
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        send_lock = asyncio.Lock()

        peer_gone = False

        async def send(data: bytes) -> None:
            """Never raises: a channel that went away ends the call (the flow finishes its record)."""
            nonlocal peer_gone
            if peer_gone:
                return
            async with send_lock:
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, BrokenPipeError) as exc:
                    peer_gone = True
                    session.close()
                    log.info("line peer went away", extra={"call_id": session.call_id, "error": str(exc)})

        async def receive() -> None:
            try:
                while (message := await lp.read_message(reader)) is not None:
                    kind, payload = message
                    if kind == lp.AUDIO:
                        session.deliver(payload)
                    elif kind == lp.HANGUP:
                        break
                    elif kind == lp.EVENT:
                        try:
                            event = lp.decode_json(payload)
                        except lp.LineProtocolError as exc:
                            self.bad_payloads.bad(f"call {session.call_id}", f"event: {exc}")
                            continue
                        self._channel_event(session, event)
            except (ConnectionError, lp.LineProtocolError) as exc:
                log.info("line closed by the channel", extra={"call_id": session.call_id, "error": str(exc)})
            session.close()  # the caller is gone: the flow sees the line end

        async def send_audio() -> None:
            async for frame in session.outgoing():
                await send(lp.encode(lp.AUDIO, frame))

        async def send_events() -> None:
            while (event := await events.get()) is not None:
                await send(lp.encode_json(lp.EVENT, event))

        async def run_call() -> None:
            try:
                await runner(session, events.put_nowait, caller=caller, channel=channel, persona=persona)
            except CommandError as exc:
                events.put_nowait({"type": "ended", "call_id": session.call_id, "reason": "refused",
                                   "message": exc.message})
            finally:
                session.close()
                events.put_nowait(None)

        await send(lp.encode_json(lp.EVENT, {"type": "ready", "call_id": session.call_id,
                                             "sample_rate": lp.SAMPLE_RATE, "frame_ms": 20}))
        log.info("line call", extra={"call_id": session.call_id, "channel": channel, "caller": caller})
        async with asyncio.TaskGroup() as tasks:
            receiving = tasks.create_task(receive(), name=f"line-rx-{session.call_id}")
            tasks.create_task(send_audio(), name=f"line-tx-{session.call_id}")
            tasks.create_task(send_events(), name=f"line-events-{session.call_id}")
            call = tasks.create_task(run_call(), name=f"line-call-{session.call_id}")
            await asyncio.wait({call})
            receiving.cancel()  # the senders drain what the call left and end
