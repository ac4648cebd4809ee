"""Message text for Telegram: splitting to the 4096 limit and HTML escaping.

Lengths are counted in UTF-16 code units, as Telegram does (an emoji outside
the Basic Multilingual Plane counts 2), so a part that fits here fits there;
for text without such characters this is plain ``len``.

``split_text`` cuts only at whitespace, preferring (in this order) a blank
line (paragraph), a line break, the space after a sentence end (``.``,
``!``, ``?``, ``…``, optionally followed by closing quotes/brackets) and any
space, taking the latest such boundary that still leaves the part at least
half full (or, if there is none, the best one anywhere); a single word longer
than the limit is the only thing ever hard-cut. The whitespace at each cut
and around the whole text is dropped (Telegram trims messages anyway), so
the parts, joined with that whitespace, give back the text.

For HTML parse mode the limit applies to the text after entity parsing;
``split_html_lines`` conservatively counts the raw HTML.
"""

from __future__ import annotations

import html
import re
from typing import Final

TELEGRAM_TEXT_LIMIT: Final = 4096

_WHITESPACE: Final = re.compile(r"\s+")
_SENTENCE_END: Final = re.compile(r"[.!?…][\"'»”’)\]]*$")
_WRAPPED_LINE: Final = re.compile(r"<(b|i|u|s|code)>([^<>]*)</\1>")
_TAG: Final = re.compile(r"<[^>]*>")

_PARAGRAPH, _LINE, _SENTENCE, _WORD = 3, 2, 1, 0


def text_units(text: str) -> int:
    """Telegram's length of ``text``: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _fitting_prefix(text: str, limit: int) -> int:
    """The largest ``n`` with ``text_units(text[:n]) <= limit``."""
    if text_units(text[:limit]) <= limit:
        return min(len(text), limit)
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _boundary_level(text: str, start: int, end: int) -> int:
    gap = text[start:end]
    newlines = gap.count("\n")
    if newlines >= 2:
        return _PARAGRAPH
    if newlines == 1:
        return _LINE
    if _SENTENCE_END.search(text, max(0, start - 8), start):
        return _SENTENCE
    return _WORD


def _cut(text: str, fit: int) -> tuple[int, int]:
    """Where to cut ``text`` (longer than ``fit`` chars): (end of this part, start of the rest)."""
    candidates: list[tuple[int, int, int]] = []  # (level, start, end) of a whitespace run
    for match in _WHITESPACE.finditer(text, 1, fit + 1):
        start = match.start()
        end = _WHITESPACE.match(text, start).end()  # type: ignore[union-attr]  # the run may go past the window
        candidates.append((_boundary_level(text, start, end), start, end))
    if not candidates:
        return fit, fit  # one over-long word: the only hard cut
    full_enough = [c for c in candidates if c[1] >= fit // 2]
    _, start, end = max(full_enough or candidates)
    return start, end


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split ``text`` into non-empty parts of at most ``limit`` UTF-16 units each (see module doc).

    Whitespace-only text gives ``[]``. ``limit`` must be at least 2 (one
    character can take 2 units).
    """
    if limit < 2:
        raise ValueError(f"limit must be at least 2, got {limit}")
    parts: list[str] = []
    rest = text.strip()
    while rest:
        fit = _fitting_prefix(rest, limit)
        if fit >= len(rest):
            parts.append(rest)
            break
        end, resume = _cut(rest, fit)
        parts.append(rest[:end])
        rest = rest[resume:]
    return parts


def html_escape(text: str) -> str:
    """Escape text for Telegram's HTML parse mode (only ``&``, ``<`` and ``>`` need it)."""
    return html.escape(text, quote=False)


def _split_long_html_line(line: str, limit: int) -> list[str]:
    """Split one over-long line of escaped HTML into pieces that are each valid HTML within ``limit``.

    A line wrapped whole in one simple tag (``<b>…</b>``, ``<i>``, ``<u>``,
    ``<s>``, ``<code>``) keeps the tag on every piece; any other markup is
    dropped and the line is split as escaped plain text.
    """
    wrapped = _WRAPPED_LINE.fullmatch(line)
    if wrapped:
        opening, closing = f"<{wrapped.group(1)}>", f"</{wrapped.group(1)}>"
        plain = html.unescape(wrapped.group(2))
    else:
        opening, closing = "", ""
        plain = html.unescape(_TAG.sub("", line))
    budget = limit - len(opening) - len(closing)
    if budget < 5:  # room for the longest escape, "&amp;"
        opening, closing, budget = "", "", limit
    pieces: list[str] = []
    pending = split_text(plain, budget)
    while pending:
        piece = pending.pop(0)
        escaped = html_escape(piece)
        if text_units(escaped) <= budget:
            pieces.append(f"{opening}{escaped}{closing}")
        else:  # escaping made it longer: split the plain piece finer, in proportion
            units = text_units(piece)
            finer = min(units - 1, max(2, budget * units // text_units(escaped)))
            pending[:0] = split_text(piece, finer) if finer >= 2 else list(piece)
    return pieces


def split_html_lines(lines: list[str], limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Pack already-escaped HTML lines into messages of at most ``limit`` raw UTF-16 units.

    Lines are joined with ``"\\n"`` and never broken, except a single line
    longer than the limit (see ``_split_long_html_line``). Each line must be
    complete HTML on its own (tags closed on the same line). Empty lines at
    the start or end of a message are dropped; no message is blank.
    """
    if limit < 5:
        raise ValueError(f"limit must be at least 5, got {limit}")
    messages: list[str] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        body = "\n".join(current).strip("\n")
        if body.strip():
            messages.append(body)
        current, size = [], 0

    for line in lines:
        units = text_units(line)
        if units > limit:
            flush()
            messages.extend(_split_long_html_line(line, limit))
            continue
        if current and size + 1 + units > limit:
            flush()
        if not current and not line.strip():
            continue  # no blank line at the top of a message
        size += units + (1 if current else 0)
        current.append(line)
    flush()
    return messages
