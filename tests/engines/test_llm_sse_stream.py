"""SseDecoder: any chunking, any line ending, comments, multi-line data, strictness on garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.llm.http_errors import LlmProtocolError
from engines.llm.sse_stream import SseDecoder, SseEvent

STREAM = (
    "\ufeff: keep-alive comment\n"
    "event: message_start\n"
    "data: {\"a\": 1}\n"
    "\n"
    ": ping\n"
    "\n"
    "data: line one\n"
    "data:line two\n"
    "data:  indented\n"
    "id: 7\n"
    "\n"
    "data: привет ✓\n"
    "\n"
    "retry: 1000\n"
    "data: [DONE]\n"
    "\n"
)
EXPECTED = [
    SseEvent(data='{"a": 1}', event="message_start"),
    SseEvent(data="line one\nline two\n indented", id="7"),
    SseEvent(data="привет ✓", id="7"),
    SseEvent(data="[DONE]", id="7"),
]


def decode(payload: bytes, cuts: list[int]) -> list[SseEvent]:
    decoder = SseDecoder("test")
    events: list[SseEvent] = []
    start = 0
    for cut in sorted(set(cuts)) + [len(payload)]:
        events += decoder.feed(payload[start:cut])
        start = cut
    return events + decoder.close()


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_line_endings(eol: str) -> None:
    payload = STREAM.replace("\n", eol).encode()
    assert decode(payload, []) == EXPECTED


@settings(max_examples=150, deadline=None)
@given(eol=st.sampled_from(["\n", "\r\n", "\r"]), cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=40))
def test_any_chunking_gives_the_same_events(eol: str, cuts: list[int]) -> None:
    payload = STREAM.replace("\n", eol).encode()
    assert decode(payload, [c for c in cuts if c < len(payload)]) == EXPECTED


def test_last_event_without_blank_line_is_dispatched_at_end() -> None:
    assert decode(b"data: [DONE]", []) == [SseEvent(data="[DONE]")]


def test_garbage_line_is_a_clear_protocol_error() -> None:
    decoder = SseDecoder("openai (http://x)")
    with pytest.raises(LlmProtocolError, match=r"openai \(http://x\): malformed event-stream line '<html>"):
        decoder.feed(b"<html><body>502 Bad Gateway</body></html>\n")


def test_invalid_utf8_and_oversized_lines_are_errors() -> None:
    with pytest.raises(LlmProtocolError, match="not UTF-8"):
        SseDecoder("s").feed(b"data: \xff\xfe\n\n")
    decoder = SseDecoder("s", max_event_chars=100)
    with pytest.raises(LlmProtocolError, match="exceeds 100"):
        decoder.feed(b"data: " + b"x" * 200)
