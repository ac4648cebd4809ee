"""Russian number words with case and gender, on top of num2words(lang="ru").

``cardinal`` and ``ordinal`` take a grammatical case (n, g, d, a, i, p) and a
gender (m, f, n); counting is inanimate ("на две недели", not "на двух").
Spoken Russian says "тысяча", "миллион" rather than "одна тысяча", "один
миллион" at the start of a number, so that leading "one" is dropped.
``plural`` picks the noun form that agrees with a number: рубль / рубля /
рублей (a fraction takes the genitive singular: "2,5 рубля").
"""

from __future__ import annotations

from num2words import num2words

CASES = frozenset("ngdaip")
GENDERS = frozenset("mfn")

_ONE_FORMS = frozenset({"один", "одна", "одно", "одного", "одной", "одному", "одну", "одним", "одном"})


def cardinal(number: int, case: str = "n", gender: str = "m") -> str:
    """A whole number in words: cardinal(21, gender="f") == "двадцать одна"."""
    _check(case, gender)
    words = num2words(number, lang="ru", case=case, gender=gender, animate=False)
    return _drop_leading_one(words, abs(number))


def ordinal(number: int, case: str = "n", gender: str = "m", plural: bool = False) -> str:
    """An ordinal: ordinal(25, gender="n") == "двадцать пятое", ordinal(90, "g", plural=True) == "девяностых"."""
    _check(case, gender)
    if number < 0:
        return "минус " + ordinal(-number, case, gender, plural)
    return num2words(number, lang="ru", to="ordinal", case=case, gender=gender, plural=plural, animate=False)


def decimal(integer: str, fraction: str, case: str = "n") -> str:
    """"3,14" -> "три целых четырнадцать сотых" (digits as strings: trailing zeros count)."""
    _check(case, "f")
    whole = int(integer or "0")
    if not fraction:
        return cardinal(whole, case)
    fraction = fraction[:9]
    numerator = int(fraction)
    return " ".join(
        (
            cardinal(whole, case, "f"),
            _fraction_word("цел", whole, case),
            cardinal(numerator, case, "f"),
            _fraction_word(_FRACTION_STEMS[len(fraction)], numerator, case),
        )
    )


_FRACTION_STEMS = {
    1: "десят", 2: "сот", 3: "тысячн", 4: "десятитысячн", 5: "стотысячн",
    6: "миллионн", 7: "десятимиллионн", 8: "стомиллионн", 9: "миллиардн",
}
_SINGULAR_ENDINGS = {"n": "ая", "a": "ую", "g": "ой", "d": "ой", "i": "ой", "p": "ой"}
_PLURAL_ENDINGS = {"n": "ых", "a": "ых", "g": "ых", "d": "ым", "i": "ыми", "p": "ых"}


def _fraction_word(stem: str, count: int, case: str) -> str:
    """"целая"/"целых", "десятая"/"десятых" agreeing with ``count`` in ``case``."""
    one = count % 10 == 1 and count % 100 != 11
    return stem + (_SINGULAR_ENDINGS if one else _PLURAL_ENDINGS)[case]


def plural(number: int, forms: tuple[str, str, str]) -> str:
    """The noun form agreeing with ``number``: forms are (1, 2–4, 5–20): ("рубль", "рубля", "рублей")."""
    n = abs(number) % 100
    if 11 <= n <= 14:
        return forms[2]
    if n % 10 == 1:
        return forms[0]
    if 2 <= n % 10 <= 4:
        return forms[1]
    return forms[2]


def digits(text: str) -> str:
    """Each digit as a word: "05" -> "ноль пять"."""
    return " ".join(cardinal(int(d)) for d in text if d.isdigit())


def _drop_leading_one(words: str, number: int) -> str:
    first, _, rest = words.partition(" ")
    if first in _ONE_FORMS and rest and (1000 <= number < 2000 or 10**6 <= number < 2 * 10**6 or 10**9 <= number < 2 * 10**9):
        return rest
    return words


def _check(case: str, gender: str) -> None:
    if case not in CASES:
        raise ValueError(f"unknown case {case!r} (one of {''.join(sorted(CASES))})")
    if gender not in GENDERS:
        raise ValueError(f"unknown gender {gender!r} (one of m, f, n)")
