"""Keep a sentence's final period when a rule swallows it with an abbreviation or unit.

"Итого 5 руб. Спасибо" -> the "." of "руб." also ended the sentence; after
"руб." becomes "рублей" the period must stay, or the TTS sentence splitter
would run the two sentences together.
"""

from __future__ import annotations

import re

_CAPITAL_NEXT = re.compile(r"\s+[A-ZА-ЯЁ]")


def keep_period(match: re.Match[str], spoken: str) -> str:
    """``spoken``, plus "." if the match ended with one that also ended the sentence."""
    if match.group(0).endswith("."):
        after = match.string[match.end():]
        if not after.strip() or _CAPITAL_NEXT.match(after):
            return spoken + "."
    return spoken
