"""Origins a widget accepts, and the visitor's address behind the box's reverse proxy."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from channels.widget.client_address import client_address
from channels.widget.origins import origin_allowed, origin_key

ALLOWED = ["https://example.com", "http://localhost:8000"]


@pytest.mark.parametrize("origin", ["https://example.com", "https://EXAMPLE.com", "https://example.com:443",
                                    "http://localhost:8000"])
def test_allowed(origin: str) -> None:
    assert origin_allowed(origin, ALLOWED)


@pytest.mark.parametrize("origin", [None, "", "null", "http://example.com", "https://example.com:8443",
                                    "https://sub.example.com", "https://example.com.evil.net", "http://127.0.0.1:8000",
                                    "https://example.com/path", "https://user@example.com", "ftp://example.com"])
def test_refused(origin: str | None) -> None:
    assert not origin_allowed(origin, ALLOWED)


def test_origin_key() -> None:
    assert origin_key("http://Host:80") == ("http", "host", 80)
    assert origin_key("https://host:99999") is None


class _Transport:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def _request(peer: str, forwarded: str | None = None) -> object:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return make_mocked_request("GET", "/", headers=headers, transport=_Transport(peer))


def test_the_address_is_the_peer_unless_a_local_proxy_forwarded_it() -> None:
    assert client_address(_request("203.0.113.9")) == "203.0.113.9"
    # a remote client cannot choose its address
    assert client_address(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    # behind the box's own proxy: the last hop it appended
    assert client_address(_request("127.0.0.1", "10.0.0.1, 198.51.100.7")) == "198.51.100.7"
    assert client_address(_request("::1", "2001:db8::5")) == "2001:db8::5"
    assert client_address(_request("127.0.0.1", "not an address")) == "127.0.0.1"
    assert client_address(_request("127.0.0.1")) == "127.0.0.1"
