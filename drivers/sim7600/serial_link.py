"""Opening and closing a tty as an asyncio transport (pyserial-asyncio-fast).

pyserial's ``write()`` with ``write_timeout=0`` spins forever in a retry loop
when the kernel buffer is full (``EAGAIN`` is swallowed and retried), which
would freeze the event loop the moment the modem stops draining the audio
port (sim7600.md §4.4).  ``NonBlockingSerial`` writes once and lets
``BlockingIOError`` through, which pyserial-asyncio-fast's transport handles
by buffering and waiting for writability.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

import serial
import serial_asyncio_fast

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115200


class PortOpenError(OSError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot open {path}: {reason}")
        self.path = path
        self.reason = reason


class NonBlockingSerial(serial.Serial):  # type: ignore[misc]  # pyserial ships no type hints
    """pyserial's POSIX port with a write that never loops on EAGAIN."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if not self.is_open:
            raise serial.PortNotOpenError()
        try:
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            raise serial.SerialException(f"write failed: {exc}") from exc


def _open_blocking(path: str, baudrate: int, exclusive: bool) -> NonBlockingSerial:
    try:
        return NonBlockingSerial(path, baudrate=baudrate, timeout=0, write_timeout=0, exclusive=exclusive)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortOpenError(path, str(exc)) from exc


def _close_opened_quietly(future: asyncio.Future[NonBlockingSerial]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    try:
        future.result().close()
    except Exception:  # pragma: no cover - best effort on a cancelled open
        log.debug("closing a port opened after cancellation failed", exc_info=True)


async def open_serial_transport(
    path: str,
    protocol: asyncio.Protocol,
    *,
    baudrate: int = DEFAULT_BAUDRATE,
    exclusive: bool = True,
) -> serial_asyncio_fast.SerialTransport:
    """Open ``path`` (off the loop) and attach ``protocol`` to it."""
    loop = asyncio.get_running_loop()
    opening = loop.run_in_executor(None, functools.partial(_open_blocking, path, baudrate, exclusive))
    try:
        port = await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened_quietly)
        raise
    transport, _ = await serial_asyncio_fast.connection_for_serial(loop, lambda: protocol, port)
    return transport


async def close_serial_transport(
    transport: serial_asyncio_fast.SerialTransport, lost: asyncio.Future[Any], timeout_s: float = 2.0
) -> None:
    """Abort the transport (dropping unsent output) and wait for ``connection_lost``."""
    if not transport.is_closing():
        port = transport.serial
        if port is not None:
            try:
                port.reset_output_buffer()  # a stalled device must not make close() wait
            except Exception:
                log.debug("reset_output_buffer failed", exc_info=True)
        transport.abort()
    if lost.done():
        return
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(lost)
    except TimeoutError:
        log.warning("serial transport did not report connection_lost within %.1f s", timeout_s)


class SerialPortProtocol(asyncio.Protocol):
    """What every tty protocol of the driver shares: the once-only "port lost" signal and closing.

    Subclasses handle their own data and call ``_report_lost(exc)`` from
    ``connection_lost`` after their own cleanup.
    """

    port_kind = "port"

    def __init__(self, name: str) -> None:
        self.name = name
        self._transport: asyncio.BaseTransport | None = None
        self._closed = False
        self._lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        #: Called once from ``connection_lost`` (EOF, read error, close).
        self.on_lost: Callable[[BaseException | None], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_closed(self) -> BaseException | None:
        return await asyncio.shield(self._lost)

    def _report_lost(self, exc: BaseException | None) -> None:
        if not self._lost.done():
            self._lost.set_result(exc)
        callback, self.on_lost = self.on_lost, None
        if callback is not None:
            try:
                callback(exc)
            except Exception:
                log.exception("%s: on_lost callback failed", self.name)
        if exc is not None:
            log.warning("%s: %s lost: %s", self.name, self.port_kind, exc)

    async def _close_transport(self, timeout_s: float) -> None:
        transport = self._transport
        if transport is None:
            self._closed = True
            return
        if isinstance(transport, serial_asyncio_fast.SerialTransport):
            await close_serial_transport(transport, self._lost, timeout_s)
            return
        if not transport.is_closing():
            transport.close()
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._lost)
        except TimeoutError:
            self.connection_lost(None)


__all__ = [
    "DEFAULT_BAUDRATE",
    "NonBlockingSerial",
    "PortOpenError",
    "SerialPortProtocol",
    "close_serial_transport",
    "open_serial_transport",
]
