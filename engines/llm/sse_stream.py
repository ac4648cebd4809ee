"""Server-sent events (the streaming wire of OpenAI and Anthropic) from an HTTP body.

``SseDecoder`` is the incremental parser: bytes in any chunking, lines ended
by CRLF, LF or CR (a CR at a chunk's end waits for a possible LF), UTF-8 split
anywhere, ``:`` comments (keep-alives) skipped, several ``data:`` lines joined
with newlines, a blank line dispatching the event. A line that is not an SSE
field (``event``, ``data``, ``id``, ``retry``) is a protocol error, so a
server that answers with something else fails clearly instead of hanging.

``read_sse_events`` reads a response with an idle deadline between events:
keep-alive comments do not extend it.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from engines.llm.http_errors import LlmHttpError, LlmProtocolError, LlmTimeout

_EOL = re.compile(r"\r\n|\r|\n")
_FIELDS = frozenset({"event", "data", "id", "retry"})


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SseDecoder:
    """Incremental SSE parser; ``source`` names the server in error messages."""

    def __init__(self, source: str, *, max_event_chars: int = 4 * 1024 * 1024) -> None:
        self._source = source
        self._max = max_event_chars
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buffer = ""
        self._started = False
        self._data: list[str] = []
        self._data_chars = 0
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        try:
            text = self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise LlmProtocolError(f"{self._source}: the event stream is not UTF-8 ({exc.reason})") from None
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._buffer += text
        return self._drain(final=False)

    def close(self) -> list[SseEvent]:
        """End of body: parse the last line and dispatch an event left without its blank line."""
        try:
            self._buffer += self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise LlmProtocolError(f"{self._source}: the event stream ends inside a UTF-8 character ({exc.reason})") from None
        events = self._drain(final=True)
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = ""
            if event is not None:
                events.append(event)
        if self._data:
            events.append(self._dispatch())
        return events

    def _drain(self, *, final: bool) -> list[SseEvent]:
        events: list[SseEvent] = []
        start = 0
        buffer = self._buffer
        while True:
            match = _EOL.search(buffer, start)
            if match is None:
                break
            if match.group() == "\r" and match.end() == len(buffer) and not final:
                break  # the LF of a CRLF may be in the next chunk
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = buffer[start:]
        if len(self._buffer) > self._max:
            raise LlmProtocolError(f"{self._source}: an event-stream line exceeds {self._max} characters")
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name not in _FIELDS:
            raise LlmProtocolError(f"{self._source}: malformed event-stream line {line[:120]!r}")
        if name == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > self._max:
                raise LlmProtocolError(f"{self._source}: an event exceeds {self._max} characters")
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SseEvent:
        event = SseEvent(data="\n".join(self._data), event=self._event or "message", id=self._id)
        self._data = []
        self._data_chars = 0
        self._event = ""
        return event


async def read_sse_events(
    response: aiohttp.ClientResponse, *, source: str, idle_timeout_s: float
) -> AsyncIterator[SseEvent]:
    """Yield the events of ``response``; LlmTimeout when no event comes within ``idle_timeout_s``."""
    loop = asyncio.get_running_loop()
    decoder = SseDecoder(source)
    deadline = loop.time() + idle_timeout_s
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await response.content.readany()
        except TimeoutError:
            raise LlmTimeout(f"{source}: no event for {idle_timeout_s:g} s (stream stalled)") from None
        except aiohttp.ClientError as exc:
            raise LlmHttpError(f"{source}: connection lost mid-stream: {exc or type(exc).__name__}") from None
        if not chunk:
            for event in decoder.close():
                yield event
            return
        events = decoder.feed(chunk)
        for event in events:
            yield event
        if events:
            deadline = loop.time() + idle_timeout_s
