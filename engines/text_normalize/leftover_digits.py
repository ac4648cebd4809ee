"""The last pass over digits no earlier rule claimed: nothing numeric may reach the voice.

Dotted runs like a version number ("1.2.3") are read part by part with the
language's word for the dot; any other digit run becomes a number (very long
ones, or ones with a leading zero, digit by digit). Words are padded with a
space where they touch a letter ("Q3" -> "Q three").
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DOTTED = re.compile(r"\d+(?:\.\d+){2,}")
_DIGITS = re.compile(r"\d+")


def replace_leftover_digits(
    text: str,
    number_words: Callable[[int], str],
    digit_words: Callable[[str], str],
    point_word: str,
) -> str:
    def run(raw: str) -> str:
        if len(raw) > 12 or (raw.startswith("0") and len(raw) > 1):
            return digit_words(raw)
        return number_words(int(raw))

    def padded(match: re.Match[str], words: str) -> str:
        before = match.string[match.start() - 1] if match.start() > 0 else " "
        after = match.string[match.end()] if match.end() < len(match.string) else " "
        return (" " if before.isalpha() else "") + words + (" " if after.isalpha() else "")

    text = _DOTTED.sub(lambda m: padded(m, f" {point_word} ".join(run(p) for p in m.group(0).split("."))), text)
    return _DIGITS.sub(lambda m: padded(m, run(m.group(0))), text)
