"""systemd's notify protocol, spoken directly on the unix datagram socket.

``READY=1`` once start-up is done, ``STATUS=`` with a one-line summary,
``WATCHDOG=1`` only while the event loop keeps time, ``STOPPING=1`` on the
way out. Without ``NOTIFY_SOCKET`` every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

from daemon.runtime.service import Service, ServiceStatus

log = logging.getLogger("secretary.systemd")


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        path = environ.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if path:
            # '@' means the abstract namespace (a leading NUL byte on the wire).
            self._address = "\0" + path[1:] if path.startswith("@") else path
        self._socket: socket.socket | None = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        self.watchdog_s: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        if self._address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            self._socket.sendto(message.encode("utf-8"), self._address)
            return True
        except OSError as exc:
            log.warning("sd_notify failed", extra={"error": str(exc), "notify": message.split("=", 1)[0]})
            return False

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def reloading(self) -> None:
        self.notify("RELOADING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class WatchdogService(Service):
    """Pings the systemd watchdog only while the event loop is responsive.

    It wakes every quarter of the watchdog interval and measures how late it
    woke; a loop that was blocked longer than ``max_lag_s`` does not earn a
    ping (and a loop that stays blocked sends none, so systemd restarts us).
    ``healthy`` lets the owner veto pings, e.g. while the supervisor is wedged.
    """

    name = "watchdog"

    def __init__(self, notifier: SystemdNotifier, healthy: Callable[[], bool] | None = None, max_lag_s: float = 1.0) -> None:
        self.notifier = notifier
        self.healthy = healthy or (lambda: True)
        self.max_lag_s = max_lag_s
        self.last_lag_s = 0.0

    async def run(self, status: ServiceStatus) -> None:
        interval = self.notifier.watchdog_s
        if interval is None:
            status.ready("systemd watchdog not requested")
            await asyncio.Event().wait()
            return
        period = interval / 4
        loop = asyncio.get_running_loop()
        status.ready(f"pinging every {period:.2f} s")
        while True:
            before = loop.time()
            await asyncio.sleep(period)
            self.last_lag_s = loop.time() - before - period
            if self.last_lag_s > self.max_lag_s:
                status.degraded(f"event loop lagged {self.last_lag_s * 1000:.0f} ms; watchdog ping skipped")
                log.warning("event loop lag", extra={"lag_ms": round(self.last_lag_s * 1000)})
                continue
            if not self.healthy():
                status.degraded("daemon unhealthy; watchdog ping withheld")
                continue
            status.ready(f"pinging every {period:.2f} s")
            self.notifier.notify("WATCHDOG=1")
