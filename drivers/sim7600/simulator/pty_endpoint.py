"""One simulated USB tty: a pty pair whose slave is published as a symlink.

The simulator keeps the slave open itself so that the master never reads EIO
while the host has the port closed; "unplugging" closes both ends and removes
the symlink, which the host sees as EOF/EIO on its open file, exactly like a
USB serial device vanishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

READ_CHUNK = 4096


class PtyEndpoint:
    def __init__(self, link_path: Path, on_data: Callable[[bytes], None], name: str) -> None:
        self.link_path = link_path
        self.name = name
        self._on_data = on_data
        self._master: int | None = None
        self._slave: int | None = None
        self._reading = False
        self.tty_name: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.bytes_dropped = 0

    @property
    def is_open(self) -> bool:
        return self._master is not None

    def open(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, before the host ever opens it
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.tty_name = os.ttyname(slave)
        self.link_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        os.symlink(self.tty_name, self.link_path)
        log.debug("%s: %s -> %s", self.name, self.link_path, self.tty_name)

    def start_reading(self) -> None:
        if self._master is not None and not self._reading:
            asyncio.get_running_loop().add_reader(self._master, self._readable)
            self._reading = True

    def stop_reading(self) -> None:
        if self._master is not None and self._reading:
            asyncio.get_running_loop().remove_reader(self._master)
        self._reading = False

    def discard_input(self) -> int:
        """Read and drop whatever the host has written so far."""
        dropped = 0
        while self._master is not None:
            try:
                chunk = os.read(self._master, READ_CHUNK)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            dropped += len(chunk)
        return dropped

    def write(self, data: bytes) -> int:
        """Write without blocking; what the host's buffer cannot take is dropped (and counted)."""
        if self._master is None:
            self.bytes_dropped += len(data)
            return 0
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            log.debug("%s: write failed: %s", self.name, exc)
            written = 0
        self.bytes_out += written
        self.bytes_dropped += len(data) - written
        return written

    def close(self) -> None:
        self.stop_reading()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError, OSError):
            if self.link_path.is_symlink() and os.readlink(self.link_path) == self.tty_name:
                self.link_path.unlink()
        self.tty_name = None

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            log.debug("%s: read failed: %s", self.name, exc)
            return
        if data:
            self.bytes_in += len(data)
            self._on_data(data)
