"""Byte stream -> AT lines.

The SIM7600 frames every line as ``\\r\\n<text>\\r\\n`` but some URCs carry a
doubled ``\\r`` and echo lines end in a bare ``\\r`` (sim7600.md §2), so any run
of CR/LF ends a line and empty lines are dropped.  The only frame that does not
end in a line terminator is the ``> `` prompt of ``AT+CMGS``; it is reported only
while the channel says it is waiting for one.

Garbage never raises: lines that are too long or are not UTF-8 are skipped and
logged through ``SkipLog``: the first of each kind with its details, then one
line per kind per ``SKIP_REPORT_INTERVAL_S`` saying how many it stands for, so
a burst of noise on the port (a loose cable, a modem in trouble) writes a few
lines, not one per bad line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE_BYTES: Final = 2048
SKIP_REPORT_INTERVAL_S: Final = 60.0
_TERMINATORS: Final = b"\r\n"
_STRIP: Final = b" \t\x00"


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``> `` text-entry prompt (no line terminator follows it)."""


PROMPT: Final = Prompt()

Frame = str | Prompt


class SkipLog:
    """At most one log line per kind of skipped input per ``interval_s``, saying how many it stands for."""

    def __init__(self, logger: logging.Logger, interval_s: float = SKIP_REPORT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._log = logger
        self.interval_s = interval_s
        self._clock = clock
        self._reported_at: dict[str, float] = {}  # kinds are the code's own few strings: bounded
        self._unreported: dict[str, int] = {}

    def skipped(self, kind: str, detail: str, level: int = logging.WARNING) -> bool:
        """Note one skipped piece of input of ``kind``; True when it was logged, False when only counted."""
        now = self._clock()
        reported_at = self._reported_at.get(kind)
        if reported_at is not None and now - reported_at < self.interval_s:
            self._unreported[kind] = self._unreported.get(kind, 0) + 1
            return False
        self._reported_at[kind] = now
        more = self._unreported.pop(kind, 0)
        also = f" (and {more} more since the last report, not logged one by one)" if more else ""
        self._log.log(level, "%s skipped: %s%s", kind, detail, also)
        return True


class LineFramer:
    """Incremental splitter: feed bytes, get complete lines (and prompts)."""

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, skips: SkipLog | None = None) -> None:
        if max_line_bytes < 16:
            raise ValueError("max_line_bytes must be at least 16")
        self.max_line_bytes = max_line_bytes
        self.expect_prompt = False
        self._buffer = bytearray()
        self._discarding = False
        self.rejected_lines = 0
        self.skips = skips or SkipLog(log)

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
                self.skips.skipped(f"AT line longer than {self.max_line_bytes} bytes", f"{bytes(buffer[:40])!r}...")
            self._discarding = True
            buffer.clear()

    def _decode(self, raw: bytes) -> str | None:
        stripped = raw.strip(_STRIP)
        if not stripped:
            return None
        if len(stripped) > self.max_line_bytes:
            self.rejected_lines += 1
            self.skips.skipped(f"AT line longer than {self.max_line_bytes} bytes", f"{stripped[:40]!r}...")
            return None
        try:
            return stripped.decode("utf-8")
        except UnicodeDecodeError:
            self.rejected_lines += 1
            self.skips.skipped("non-UTF-8 AT line", repr(stripped[:80]))
            return None


def _find_terminator(buffer: bytearray, start: int, end: int) -> int:
    cr = buffer.find(b"\r", start, end)
    lf = buffer.find(b"\n", start, end)
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


__all__ = ["DEFAULT_MAX_LINE_BYTES", "PROMPT", "SKIP_REPORT_INTERVAL_S", "Frame", "LineFramer", "Prompt", "SkipLog"]
