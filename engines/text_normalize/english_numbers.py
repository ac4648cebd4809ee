"""English number words on top of num2words(lang="en"), shaped for speech.

num2words writes "one thousand, two hundred and thirty-four"; the comma would
make a TTS voice pause mid-number, so it is dropped. Decimals read the digits
after the point one by one ("three point one four", "point five zero"), years
the way people say them ("twenty twenty-six", "nineteen oh-five").
"""

from __future__ import annotations

from num2words import num2words

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def cardinal(number: int) -> str:
    return num2words(number, lang="en").replace(",", "")


def ordinal(number: int) -> str:
    return num2words(number, lang="en", to="ordinal").replace(",", "")


def decimal(integer: str, fraction: str) -> str:
    whole = cardinal(int(integer or "0"))
    if not fraction:
        return whole
    return f"{whole} point {digits(fraction)}"


def year(number: int) -> str:
    if 2000 <= number <= 2009:
        return cardinal(number)
    return num2words(number, lang="en", to="year").replace(",", "")


def digits(text: str) -> str:
    return " ".join(_DIGITS[int(d)] for d in text if d.isdigit())


def plural(number: float, singular: str, many: str) -> str:
    return singular if number == 1 else many
