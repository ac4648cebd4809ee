"""Who is asking: the visitor's IP address, for per-address rate limits and connection caps.

The widget server normally listens on loopback behind the box's reverse proxy
(``channels.widget.listen`` defaults to ``127.0.0.1:8091``), so every request
comes from 127.0.0.1. Only then is ``X-Forwarded-For`` believed, and only its
last entry, the one the proxy itself appended; a request from any other
address is taken at its word, so nobody can pick their own address by
sending the header.
"""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web


def client_address(request: web.Request) -> str:
    remote = request.remote or "unknown"
    if not _is_loopback(remote):
        return remote
    forwarded = request.headers.get(hdrs.X_FORWARDED_FOR, "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    return last if last and _is_address(last) else remote


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_loopback(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False
