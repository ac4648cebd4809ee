"""Which pages may use a widget: the request's ``Origin`` against the widget's ``allowed_origins``.

Origins compare by scheme, host (case-insensitive) and port, with the
scheme's default port filled in, so ``https://Example.com`` and
``https://example.com:443`` are the same origin. A missing Origin, the
opaque ``null`` origin and anything that does not parse are never allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` as a comparable triple; None if it is not such an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    if not origin:
        return False
    key = origin_key(origin)
    return key is not None and any(origin_key(a) == key for a in allowed)
