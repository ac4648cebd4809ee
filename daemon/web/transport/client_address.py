"""Which client a request comes from, for the login throttle: its address, or the one a trusted proxy names.

``X-Forwarded-For`` is believed only when the peer is in ``web.trusted_proxies``
(none by default), and then only from the right: the last entry not itself a
trusted proxy is the client, so a client cannot choose its address by sending
the header. Throttling counts per *bucket*: an IPv4 address, or the /64 an
IPv6 address belongs to (one subscriber's network hands out addresses from a
whole /64). :class:`LoginThrottle` adds a cap over all clients together, so a
guesser spread over many addresses still meets a limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import hdrs, web

from daemon.web.auth import LoginLimiter

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_BUCKET_PREFIX = 64
OVERALL_KEY = "*"
# Over all clients together: 100 failures pass freely (the owner's typos, a few guessers), then each further
# failed login waits 1 s, doubling to at most 30 s: a distributed guesser gets about two guesses a minute.
OVERALL_FREE_ATTEMPTS = 100
OVERALL_BASE_DELAY_S = 1.0
OVERALL_MAX_DELAY_S = 30.0


def _parse(value: str) -> IPAddress | None:
    """An address from a peer or a forwarded entry: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(request: web.Request, proxies: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, or (from a trusted proxy) the nearest untrusted X-Forwarded-For hop."""
    peer = _parse(request.remote or "")
    if peer is None:
        return request.remote or "unknown"
    candidate = peer
    if not _trusted(peer, proxies):
        return str(peer)
    hops = [h for header in request.headers.getall(hdrs.X_FORWARDED_FOR, []) for h in header.split(",")]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # garbage from here on: the last proxy we trust is all we know
        candidate = address
        if not _trusted(address, proxies):
            break
    return str(candidate)


def bucket(address: str) -> str:
    """The throttle's key for an address: IPv4 as it is, IPv6 as its /64."""
    parsed = _parse(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_BUCKET_PREFIX), strict=False))
    return str(parsed)


class LoginThrottle:
    """Failed logins per client bucket (``LoginLimiter``'s doubling delays) and over all clients together."""

    def __init__(self, per_client: LoginLimiter | None = None, overall: LoginLimiter | None = None) -> None:
        self.per_client = per_client or LoginLimiter()
        self.overall = overall or LoginLimiter(free_attempts=OVERALL_FREE_ATTEMPTS, base_delay_s=OVERALL_BASE_DELAY_S,
                                               max_delay_s=OVERALL_MAX_DELAY_S)

    def retry_after(self, key: str) -> float | None:
        """Seconds this client must wait before trying again, or None when it may try now."""
        waits = [w for w in (self.per_client.retry_after(key), self.overall.retry_after(OVERALL_KEY)) if w is not None]
        return max(waits) if waits else None

    def failed(self, key: str) -> None:
        self.per_client.failed(key)
        self.overall.failed(OVERALL_KEY)

    def succeeded(self, key: str) -> None:
        self.per_client.succeeded(key)
        self.overall.forgive(OVERALL_KEY)  # the owner's own logins do not use up the overall allowance
