"""A correction of one part of a value just read back: "нет, не 45, а 46", "не Иван, а Илья", "no, it's 5 5 6".

`replacement` finds "not X but Y" in either order ("не X, а Y", "Y, а не X", "not X, Y", "Y, not
X"); `corrected_number`, `corrected_name` and `corrected_text` apply it to a slot's value, and
`corrected_number` also takes a bare fragment that has the shape of one of the number's spoken
groups ("5 5 6" for the group "555"). Each says `None` when the correction does not fit the
value, so the policy can ask instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.dialogue.spoken_fields.names import extract_name
from daemon.dialogue.spoken_fields.numbers import (
    MAX_PHONE_DIGITS,
    MIN_PHONE_DIGITS,
    digit_groups,
    spoken_numbers,
)
from daemon.dialogue.spoken_fields.words import check_language, fold

_PART = r"[^,.!?;:…]+?"
_REPLACEMENT_RES: dict[str, tuple[re.Pattern[str], ...]] = {
    "ru": (
        re.compile(rf"(?<!\w)не\s+(?P<old>{_PART})\s*[,—–-]?\s+а\s+(?P<new>{_PART})\s*(?:[,.!?;:…]|$)", re.I),
        re.compile(rf"(?P<new>{_PART})\s*[,—–-]?\s+а\s+не\s+(?P<old>{_PART})\s*(?:[,.!?;:…]|$)", re.I),
    ),
    "en": (
        re.compile(
            rf"(?<!\w)not\s+(?P<old>{_PART})\s*(?:,\s*(?:but\s+|it'?s\s+|it\s+is\s+)?|\s+but\s+)(?P<new>{_PART})"
            r"\s*(?:[,.!?;:…]|$)",
            re.I,
        ),
        re.compile(rf"(?P<new>{_PART})\s*,?\s+not\s+(?P<old>{_PART})\s*(?:[,.!?;:…]|$)", re.I),
    ),
}
# Words before the new value that are not part of it: "no, it's Jon, not John".
_LEADING_NOISE_RE = re.compile(
    r"^(?:(?:no|nope|yes|well|so|sorry|it'?s|it\s+is|that'?s|the\s+\w+\s+is|нет|да|ну|извините|это)[\s,]+)+",
    re.I,
)


@dataclass(frozen=True)
class Replacement:
    old: str  # as said: "45", "Иван", "сорок пять"
    new: str


def replacement(text: str, language: str) -> Replacement | None:
    """"не 45, а 46" / "46, а не 45" / "not John, Jon" / "Jon, not John" -> (old, new); None if absent."""
    language = check_language(language)
    for pattern in _REPLACEMENT_RES[language]:
        match = pattern.search(text)
        if match is None:
            continue
        old = match.group("old").strip(" ,")
        new = _LEADING_NOISE_RE.sub("", match.group("new").strip(" ,") + " ").strip()
        if old and new and fold(old) != fold(new):
            return Replacement(old, new)
    return None


def corrected_number(number: str, text: str, language: str) -> str | None:
    """`number` with the part the caller corrects in `text` changed, or None when nothing fits.

    "не 45, а 46" replaces the group 45 (or, failing a group, the one place the digits 45 occur);
    a bare fragment shorter than a phone number ("no, it's 5 5 6") replaces the one group of its
    length that differs least from it. A whole number is not a correction of a part: None.
    """
    language = check_language(language)
    plus, digits = ("+", number[1:]) if number.startswith("+") else ("", number)
    change = replacement(text, language)
    if change is not None:
        old, new = _only_number(change.old), _only_number(change.new)
        if old is None or new is None:
            return None
        corrected = _replace_group(digits, language, old, new) or _replace_unique(digits, old, new)
    else:
        fragments = spoken_numbers(text)
        fragments = [f for f in fragments if len(f.lstrip("+")) > 1] or fragments  # "Oh, no, it's 5 5 6"
        if len(fragments) != 1 or fragments[0].startswith("+") or len(fragments[0]) >= MIN_PHONE_DIGITS:
            return None
        corrected = _closest_group(digits, language, fragments[0])
    if corrected is None or not MIN_PHONE_DIGITS <= len(corrected) <= MAX_PHONE_DIGITS:
        return None
    return plus + corrected


def _only_number(part: str) -> str | None:
    numbers = spoken_numbers(part)
    return numbers[0].lstrip("+") if len(numbers) == 1 else None


def _replace_group(digits: str, language: str, old: str, new: str) -> str | None:
    groups = digit_groups(digits, language)
    places = [index for index, group in enumerate(groups) if group == old]
    if len(places) != 1:
        return None
    groups[places[0]] = new
    return "".join(groups)


def _replace_unique(digits: str, old: str, new: str) -> str | None:
    return digits.replace(old, new) if digits.count(old) == 1 else None


def _closest_group(digits: str, language: str, fragment: str) -> str | None:
    groups = digit_groups(digits, language)
    scored = [
        (sum(a != b for a, b in zip(group, fragment)), index)
        for index, group in enumerate(groups)
        if len(group) == len(fragment) and group != fragment
    ]
    if not scored:
        return None
    best = min(score for score, _ in scored)
    places = [index for score, index in scored if score == best]
    if len(places) != 1 or best > (len(fragment) + 1) // 2:
        return None  # two groups fit as well, or the fragment is not like any group
    groups[places[0]] = fragment
    return "".join(groups)


def corrected_name(name: str, text: str, language: str) -> str | None:
    """"не Иван, а Илья" on "Иван Петров" -> "Илья Петров"; None when the old part is not in the name."""
    language = check_language(language)
    change = replacement(text, language)
    if change is None:
        return None
    old_words = [fold(word) for word in change.old.split()]
    new_name = extract_name(change.new, language, expecting_name=True)
    if new_name is None:
        return None
    words = name.split()
    folded = [fold(word) for word in words]
    for start in range(len(words) - len(old_words) + 1):
        if folded[start:start + len(old_words)] == old_words:
            return " ".join([*words[:start], new_name, *words[start + len(old_words):]])
    return None


def corrected_text(value: str, text: str, language: str) -> str | None:
    """"не счёта, а договора" on "по поводу счёта" -> "по поводу договора"; None when it does not occur."""
    change = replacement(text, check_language(language))
    if change is None:
        return None
    match = re.search(rf"(?<!\w){re.escape(change.old)}(?!\w)", value, re.I)
    if match is None or spoken_numbers(change.old):
        return None
    return value[:match.start()] + change.new + value[match.end():]
