"""The AT command channel: one command in flight, URCs dispatched as typed events.

Routing of each received line (sim7600.md §2):

1. the line right after a ``+CMGR:``/``+CMGL:`` header is the message body,
   verbatim (an SMS saying "OK" must not end the command);
2. the echo of the command in flight (echo on) is dropped;
3. a final result code ends the command in flight.  ``NO CARRIER``, ``BUSY``,
   ``NO ANSWER`` are finals only for call-control commands (ATA/ATD/ATH);
   otherwise they are URCs (the caller hung up while we asked for ``+CSQ``);
4. a line with the command's own prefix (``+CLCC:`` for ``AT+CLCC``) belongs
   to the command, even if the same prefix can also be a URC;
5. any other recognised URC is dispatched, even in the middle of a response;
6. anything else is an information line of the command in flight, or, with no
   command in flight, dropped (logged once per interval, with the count).

After a timeout the next command first waits for the line to go quiet so a
late answer to the old command cannot complete the new one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from drivers.sim7600.framing import DEFAULT_MAX_LINE_BYTES, LineFramer, Prompt, SkipLog
from drivers.sim7600.result_codes import (
    CALL_FINALS,
    AtChannelClosedError,
    AtResponse,
    AtTimeoutError,
    FinalKind,
    FinalResult,
    parse_final,
)
from drivers.sim7600.serial_link import DEFAULT_BAUDRATE, SerialPortProtocol, open_serial_transport
from drivers.sim7600.urc import Busy, NoAnswer, NoCarrier, Urc, parse_urc

log = logging.getLogger(__name__)

UrcSink = Callable[[Urc], None]

CTRL_Z: Final = b"\x1a"
ESC: Final = b"\x1b"

#: Set commands (``AT+X=...``) whose answer carries ``+X:`` lines.
_SET_FORMS_WITH_ANSWER: Final = frozenset({"CMGR", "CMGL", "CMGS", "CMGW", "CPMS"})
#: Prefixes whose header line is followed by free text (the SMS body).
_BODY_PREFIXES: Final = frozenset({"+CMGR:", "+CMGL:"})
_EXTENDED_NAME: Final = re.compile(r"^AT\+([A-Z0-9]+)(.*)$")
_ECHO_LIKE: Final = re.compile(r"^AT\S*$", re.IGNORECASE)
_CALL_FINAL_URCS: Final[dict[FinalKind, Urc]] = {
    FinalKind.NO_CARRIER: NoCarrier(),
    FinalKind.BUSY: Busy(),
    FinalKind.NO_ANSWER: NoAnswer(),
    FinalKind.NO_DIALTONE: NoCarrier(),
}


class AutoPrefix:
    """Marker: derive the response prefix from the command text."""


AUTO_PREFIX: Final = AutoPrefix()


class AtCommander(Protocol):
    """What call, state and SMS logic need from an AT channel (fakes implement it in tests)."""

    async def command(
        self,
        command: str,
        *,
        timeout: float | None = None,
        response_prefix: str | AutoPrefix | None = AUTO_PREFIX,
        payload: str | None = None,
    ) -> AtResponse: ...


def default_response_prefix(command: str) -> str | None:
    """``AT+CSQ`` -> ``+CSQ:``; set forms only for commands known to answer with data."""
    match = _EXTENDED_NAME.match(command.upper())
    if match is None:
        return None
    name, rest = match.group(1), match.group(2)
    if rest in ("", "?", "=?") or (rest.startswith("=") and name in _SET_FORMS_WITH_ANSWER):
        return f"+{name}:"
    return None


def accepts_call_finals(command: str) -> bool:
    upper = command.upper()
    return upper == "ATA" or upper.startswith("ATD") or upper.startswith("ATH")


def _validate_command(command: str) -> str:
    text = command.strip()
    if not text.upper().startswith("AT"):
        raise ValueError(f"not an AT command: {command!r}")
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"AT command must be printable ASCII without line breaks: {command!r}")
    return text


@dataclass(slots=True)
class _Pending:
    text: str
    prefix: str | None
    call_finals: bool
    payload: bytes | None
    future: asyncio.Future[AtResponse]
    started: float
    lines: list[str] = field(default_factory=list)
    awaiting_body: bool = False
    echo_seen: bool = False
    prompt_answered: bool = False


@dataclass(slots=True)
class AtChannelStats:
    lines: int = 0
    urcs: int = 0
    commands: int = 0
    timeouts: int = 0
    stale_finals: int = 0
    unknown_lines: int = 0
    sink_errors: int = 0
    internal_errors: int = 0


class AtChannel(SerialPortProtocol):
    """AT command/response over a byte transport; also an ``asyncio.Protocol``."""

    def __init__(
        self,
        *,
        urc_sink: UrcSink | None = None,
        default_timeout_s: float = 5.0,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        resync_quiet_s: float = 0.2,
        resync_max_s: float = 2.0,
        name: str = "at",
    ) -> None:
        super().__init__(name)
        self.default_timeout_s = default_timeout_s
        self.resync_quiet_s = resync_quiet_s
        self.resync_max_s = resync_max_s
        self.stats = AtChannelStats()
        self._urc_sink = urc_sink
        self._framer = LineFramer(max_line_bytes)
        self._skips = SkipLog(log)  # unknown lines: one log line per interval, however many come
        self._lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._needs_resync = False
        self._resync_from = 0.0
        self._last_rx = 0.0
        #: Commands in a row that got no final result (a hung modem); reset by any answer.
        self.consecutive_timeouts = 0

    # ------------------------------------------------------------- opening

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        urc_sink: UrcSink | None = None,
        baudrate: int = DEFAULT_BAUDRATE,
        exclusive: bool = True,
        default_timeout_s: float = 5.0,
    ) -> AtChannel:
        channel = cls(urc_sink=urc_sink, default_timeout_s=default_timeout_s, name=path)
        await open_serial_transport(path, channel, baudrate=baudrate, exclusive=exclusive)
        # connection_made runs via call_soon; make sure it has.
        await asyncio.sleep(0)
        return channel

    def set_urc_sink(self, sink: UrcSink | None) -> None:
        self._urc_sink = sink

    # ------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        try:
            for frame in self._framer.feed(data):
                if isinstance(frame, Prompt):
                    self._on_prompt()
                else:
                    self._on_line(frame)
        except Exception:  # never let modem input kill the transport
            self.stats.internal_errors += 1
            log.exception("%s: unexpected error while handling input %r", self.name, data[:80])

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        pending, self._pending = self._pending, None
        if pending is not None and not pending.future.done():
            pending.future.set_exception(AtChannelClosedError(f"{self.name}: port closed ({exc or 'closed'})"))
        self._report_lost(exc)

    # ----------------------------------------------------------------- API

    @property
    def rejected_lines(self) -> int:
        return self._framer.rejected_lines

    async def command(
        self,
        command: str,
        *,
        timeout: float | None = None,
        response_prefix: str | AutoPrefix | None = AUTO_PREFIX,
        payload: str | None = None,
    ) -> AtResponse:
        """Send one command and wait for its final result code.

        ``payload`` is for ``AT+CMGS``-style commands: it is sent after the
        ``> `` prompt and terminated with Ctrl-Z.  Raises ``AtTimeoutError``,
        ``AtChannelClosedError``; an error final is returned, not raised
        (``response.raise_for_error()`` raises it).
        """
        text = _validate_command(command)
        timeout_s = self.default_timeout_s if timeout is None else timeout
        prefix = default_response_prefix(text) if isinstance(response_prefix, AutoPrefix) else response_prefix
        payload_bytes = None
        if payload is not None:
            if "\x1a" in payload or "\x1b" in payload:
                raise ValueError("payload must not contain Ctrl-Z or ESC")
            payload_bytes = payload.encode("utf-8")
        loop = asyncio.get_running_loop()
        async with self._lock:
            self._ensure_open()
            if self._needs_resync:
                await self._resync()
                self._ensure_open()
            pending = _Pending(
                text=text,
                prefix=prefix,
                call_finals=accepts_call_finals(text),
                payload=payload_bytes,
                future=loop.create_future(),
                started=loop.time(),
            )
            self._pending = pending
            self._framer.expect_prompt = payload_bytes is not None
            self.stats.commands += 1
            log.debug("%s -> %s", self.name, text)
            try:
                self._write(text.encode("ascii") + b"\r")
                async with asyncio.timeout(timeout_s):
                    return await pending.future
            except TimeoutError:
                self.stats.timeouts += 1
                self.consecutive_timeouts += 1
                self._mark_desync(loop)
                if payload_bytes is not None:
                    self._write_quietly(ESC)  # leave text-entry mode if the modem is in it
                raise AtTimeoutError(text, timeout_s) from None
            except asyncio.CancelledError:
                self._mark_desync(loop)
                raise
            finally:
                if self._pending is pending:
                    self._pending = None
                    self._framer.expect_prompt = False

    async def close(self, timeout_s: float = 2.0) -> None:
        await self._close_transport(timeout_s)

    # ------------------------------------------------------------ internals

    def _ensure_open(self) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise AtChannelClosedError(f"{self.name}: port is closed")

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise AtChannelClosedError(f"{self.name}: port is closed")
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(data)

    def _write_quietly(self, data: bytes) -> None:
        try:
            self._write(data)
        except AtChannelClosedError:
            pass

    def _mark_desync(self, loop: asyncio.AbstractEventLoop) -> None:
        self._needs_resync = True
        self._resync_from = loop.time()

    async def _resync(self) -> None:
        """Wait for the line to be quiet so late answers are dropped as stale."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resync_max_s
        while True:
            quiet_at = max(self._last_rx, self._resync_from) + self.resync_quiet_s
            now = loop.time()
            if now >= quiet_at or now >= deadline:
                break
            await asyncio.sleep(min(quiet_at, deadline) - now)
        self._needs_resync = False

    def _on_prompt(self) -> None:
        pending = self._pending
        if pending is None or pending.payload is None or pending.prompt_answered:
            log.warning("%s: unexpected '>' prompt; sending ESC", self.name)
            self._write_quietly(ESC)
            return
        pending.prompt_answered = True
        self._framer.expect_prompt = False
        self._write_quietly(pending.payload + CTRL_Z)

    def _on_line(self, line: str) -> None:
        self.stats.lines += 1
        pending = self._pending
        log.debug("%s <- %s", self.name, line)
        if pending is not None and pending.awaiting_body:
            pending.awaiting_body = False
            pending.lines.append(line)
            return
        if pending is not None and not pending.echo_seen and line.upper() == pending.text.upper():
            pending.echo_seen = True
            return
        if _ECHO_LIKE.match(line):
            log.debug("%s: dropped echo-like line %r", self.name, line)
            return
        final = parse_final(line)
        if final is not None:
            self._on_final(final, pending)
            return
        if pending is not None and pending.prefix is not None and line.startswith(pending.prefix):
            pending.lines.append(line)
            if pending.prefix in _BODY_PREFIXES:
                pending.awaiting_body = True
            return
        urc = parse_urc(line)
        if urc is not None:
            self._dispatch(urc)
            return
        if pending is not None:
            pending.lines.append(line)
            return
        self.stats.unknown_lines += 1
        self._skips.skipped(f"{self.name}: unsolicited line not understood", repr(line[:120]), logging.INFO)

    def _on_final(self, final: FinalResult, pending: _Pending | None) -> None:
        if final.kind in CALL_FINALS and (pending is None or not pending.call_finals):
            self._dispatch(_CALL_FINAL_URCS[final.kind])
            return
        if pending is None:
            self.stats.stale_finals += 1
            log.info("%s: final result %s with no command in flight (late answer?), dropped", self.name, final)
            return
        self._pending = None
        self._framer.expect_prompt = False
        self.consecutive_timeouts = 0
        if not pending.future.done():
            elapsed = asyncio.get_running_loop().time() - pending.started
            pending.future.set_result(AtResponse(pending.text, tuple(pending.lines), final, elapsed))

    def _dispatch(self, urc: Urc) -> None:
        self.stats.urcs += 1
        sink = self._urc_sink
        if sink is None:
            log.debug("%s: URC %r with no sink", self.name, urc)
            return
        try:
            sink(urc)
        except Exception:
            self.stats.sink_errors += 1
            log.exception("%s: URC handler failed for %r", self.name, urc)


__all__ = [
    "AUTO_PREFIX",
    "AtChannel",
    "AtChannelStats",
    "AtCommander",
    "AutoPrefix",
    "UrcSink",
    "accepts_call_finals",
    "default_response_prefix",
]
