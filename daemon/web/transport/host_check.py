"""The names the web page answers to: a request for any other ``Host`` is refused (DNS rebinding).

A page on another site can make its own name resolve to the box's address;
the browser then treats the box as that site, and the Origin check passes.
Only the ``Host`` header tells: it must be the listen address, a loopback
name or address, the machine's hostname or hostname.local, one of the box's
own IP addresses (read again, at most every few seconds, when an unknown
address comes: DHCP may have given it a new one) or a name in
``web.allowed_hosts``. Anything else gets 421 with a plain message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable

import psutil
from aiohttp import hdrs, web

from config.schema import WebConfig

ADDRESS_REFRESH_S = 5.0
_SHOWN_HOST_CHARS = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def normalize_host(value: str) -> str:
    """The host of a ``Host`` header or a configured name, lowercased, without port, brackets or trailing dot."""
    text = value.strip().lower()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    text = text.partition("%")[0].rstrip(".")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def own_addresses() -> frozenset[str]:
    """Every IP address on this machine's interfaces (blocks briefly: call it from a thread)."""
    found = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                found.add(normalize_host(entry.address))
    return frozenset(found)


class HostGuard:
    """Whether a ``Host`` header names this box (see the module's docstring)."""

    def __init__(self, web_config: WebConfig, addresses: Callable[[], frozenset[str]] = own_addresses,
                 clock: Callable[[], float] = time.monotonic) -> None:
        hostname = socket.gethostname().lower().rstrip(".")
        short = hostname.split(".")[0]
        names = {"localhost", "127.0.0.1", "::1", hostname, short, f"{short}.local",
                 normalize_host(web_config.host), *(normalize_host(h) for h in web_config.allowed_hosts)}
        names -= {"0.0.0.0", "::", ""}
        self.names = frozenset(names)
        self._addresses_of = addresses
        self._clock = clock
        self._addresses: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    def _static(self, host: str) -> bool:
        if host in self.names or host.endswith(".localhost"):  # RFC 6761: *.localhost is loopback
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    async def allows(self, header: str) -> bool:
        host = normalize_host(header)
        if self._static(host) or host in self._addresses:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False  # an unknown name: no address refresh will make it ours
        async with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= ADDRESS_REFRESH_S:
                self._addresses = await asyncio.to_thread(self._addresses_of)
                self._read_at = now
        return host in self._addresses


def host_middleware(guard: HostGuard) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Refuse requests without a ``Host`` (400) or for a name that is not the box's (421), before anything else."""

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get(hdrs.HOST, "")
        if not header.strip():
            return web.Response(status=400, text="A Host header is required.\n")
        if not await guard.allows(header):
            shown = header[:_SHOWN_HOST_CHARS]
            return web.Response(
                status=421,
                text=f"This box does not answer to the name {shown!r}. Open it by its address or hostname, "
                     "or add the name to web.allowed_hosts in the box's config.\n",
            )
        return await handler(request)

    return check_host
