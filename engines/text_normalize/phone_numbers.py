"""Find phone numbers in text and cut them into the digit groups people read aloud.

A candidate is a run of digits, spaces, hyphens and parentheses, optionally
after "+". It counts as a phone number when it starts with "+" (8–15 digits),
or is an 11-digit Russian number starting with 7 or 8, or a 10-digit number
written with phone punctuation ("(555) 123-4567"), or a US number written
"1-800-555-0199", or a 7-digit local number
written "123-45-67". Ranges, years and ISO dates ("2020-2025", "2026-12-25")
do not qualify. The groups are the ones written; a number written without
separators is grouped the usual way for its country (+7: 3-3-2-2, +1: 3-3-4).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

PHONE_CANDIDATE = re.compile(r"(?<![\w+\-.,])(?:\+[ \u00a0]?)?\(?\d[\d \u00a0\-()]{5,}\d(?![\w\-]|[.,]\d)")


@dataclass(frozen=True)
class PhoneNumber:
    plus: bool
    groups: tuple[str, ...]


def parse_phone(candidate: str) -> PhoneNumber | None:
    """The phone number ``candidate`` spells, or ``None`` when it is something else."""
    text = candidate.strip()
    if text.count("(") != text.count(")"):
        return None
    plus = text.startswith("+")
    groups = re.findall(r"\d+", text)
    total = sum(len(g) for g in groups)
    punctuated = "-" in text or "(" in text
    if plus:
        if not 8 <= total <= 15:
            return None
    elif total == 11 and groups[0][0] in "78":
        pass
    elif total == 10 and punctuated and len(groups) >= 3:
        pass
    elif total == 11 and groups[0] == "1" and punctuated and len(groups) >= 4:
        pass
    elif total == 7 and re.fullmatch(r"\d{3}-\d{2}-\d{2}", text):
        pass
    else:
        return None
    if len(groups) == 1:
        groups = _regroup(groups[0], plus)
    elif plus and len(groups[0]) > 3:
        return None
    return PhoneNumber(plus=plus, groups=tuple(groups))


def _regroup(number: str, plus: bool) -> list[str]:
    if len(number) == 11 and number[0] in "78":
        return [number[0], number[1:4], number[4:7], number[7:9], number[9:]]
    if len(number) == 11 and number[0] == "1":
        return [number[0], number[1:4], number[4:7], number[7:]]
    head = number[:2] if plus else ""
    rest = number[len(head):]
    pieces = [rest[i : i + 3] for i in range(0, len(rest), 3)]
    if len(pieces) > 1 and len(pieces[-1]) == 1:
        pieces[-2:] = [pieces[-2][:2], pieces[-2][2:] + pieces[-1]]
    return ([head] if head else []) + pieces


def replace_phones(text: str, speak: Callable[[PhoneNumber], str]) -> str:
    """``text`` with every phone number replaced by ``speak(number)``."""

    def one(match: re.Match[str]) -> str:
        phone = parse_phone(match.group(0))
        return match.group(0) if phone is None else speak(phone)

    return PHONE_CANDIDATE.sub(one, text)
