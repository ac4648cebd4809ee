"""Byte stream -> AT lines.

The SIM7600 frames every line as ``\\r\\n<text>\\r\\n`` but some URCs carry a
doubled ``\\r`` and echo lines end in a bare ``\\r`` (sim7600.md §2), so any run
of CR/LF ends a line and empty lines are dropped.  The only frame that does not
end in a line terminator is the ``> `` prompt of ``AT+CMGS``; it is reported only
while the channel says it is waiting for one.

Garbage never raises: lines that are too long or are not UTF-8 are logged and
skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE_BYTES: Final = 2048
_TERMINATORS: Final = b"\r\n"
_STRIP: Final = b" \t\x00"


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``> `` text-entry prompt (no line terminator follows it)."""


PROMPT: Final = Prompt()

Frame = str | Prompt


class LineFramer:
    """Incremental splitter: feed bytes, get complete lines (and prompts)."""

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 16:
            raise ValueError("max_line_bytes must be at least 16")
        self.max_line_bytes = max_line_bytes
        self.expect_prompt = False
        self._buffer = bytearray()
        self._discarding = False
        self.rejected_lines = 0

    def reset(self) -> None:
        self._buffer.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self._buffer += data
        buffer = self._buffer
        start = 0
        end = len(buffer)
        while start < end:
            cut = _find_terminator(buffer, start, end)
            if cut < 0:
                break
            if cut > start:
                raw = bytes(buffer[start:cut])
                if self._discarding:
                    self._discarding = False
                elif self.expect_prompt and raw.strip(_STRIP) == b">":
                    # the prompt with something (a URC) already right behind it
                    self.expect_prompt = False
                    frames.append(PROMPT)
                else:
                    line = self._decode(raw)
                    if line is not None:
                        frames.append(line)
            start = cut + 1
        del buffer[:start]
        self._check_partial(frames)
        return frames

    def _check_partial(self, frames: list[Frame]) -> None:
        buffer = self._buffer
        if not buffer:
            return
        if self.expect_prompt and not self._discarding and buffer.strip(_STRIP) == b">":
            buffer.clear()
            self.expect_prompt = False
            frames.append(PROMPT)
            return
        if len(buffer) > self.max_line_bytes:
            if not self._discarding:
                self.rejected_lines += 1
                log.warning("AT line longer than %d bytes skipped: %r...", self.max_line_bytes, bytes(buffer[:40]))
            self._discarding = True
            buffer.clear()

    def _decode(self, raw: bytes) -> str | None:
        stripped = raw.strip(_STRIP)
        if not stripped:
            return None
        if len(stripped) > self.max_line_bytes:
            self.rejected_lines += 1
            log.warning("AT line longer than %d bytes skipped: %r...", self.max_line_bytes, stripped[:40])
            return None
        try:
            return stripped.decode("utf-8")
        except UnicodeDecodeError:
            self.rejected_lines += 1
            log.warning("non-UTF-8 AT line skipped: %r", stripped[:80])
            return None


def _find_terminator(buffer: bytearray, start: int, end: int) -> int:
    cr = buffer.find(b"\r", start, end)
    lf = buffer.find(b"\n", start, end)
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


__all__ = ["DEFAULT_MAX_LINE_BYTES", "PROMPT", "Frame", "LineFramer", "Prompt"]
