"""JSON from a peer: every way it can fail is one BadJson, never a RecursionError that ends the reader."""

from __future__ import annotations

import pytest

from channels.peer_json import BadJson, parse_peer_json


def test_good_json_reads_as_json() -> None:
    assert parse_peer_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_peer_json('"text"') == "text"


@pytest.mark.parametrize(("data", "why"), [
    (b"[" * 5000, "nested too deeply"),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, "nested too deeply"),
    (b"{not json", "not JSON: Expecting property name"),
    (b"\xff\xfe", "not UTF-8"),
    ("", "not JSON: Expecting value at position 0"),
])
def test_what_cannot_be_read_says_why(data: bytes | str, why: str) -> None:
    with pytest.raises(BadJson, match=why):
        parse_peer_json(data)
