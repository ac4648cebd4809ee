"""English text made speakable: digits and symbols become the words a person would say.

Passes, in order (each removes its pattern before the next can misread it):

1. phone numbers, digit by digit in their groups ("+1 (555) 123-4567" →
   "plus one, five five five, one two three, four five six seven");
2. dates ("2026-12-25", "25.12.2026", "12/25/2026", "December 25, 2026" →
   "December twenty-fifth, twenty twenty-six");
3. times ("14:30" → "fourteen thirty", "9:05 am" → "nine oh five a m",
   "9:00" → "nine o'clock");
4. ordinals ("21st"), decades ("1990s"), years after "in/since/by...";
5. money ("$1,234.50", "€20", "500 ₽", "$2.5 million"), percentages, units;
6. abbreviations ("Dr.", "etc.", "e.g.");
7. ranges ("5-7" → "five to seven"), decimals, negatives, cardinals;
8. leftover symbols ("&" → "and").
"""

from __future__ import annotations

import datetime
import re

from engines.text_normalize.abbreviations import ENGLISH as ENGLISH_ABBREVIATIONS
from engines.text_normalize.abbreviations import expand_abbreviations
from engines.text_normalize.english_numbers import cardinal, decimal, digits, ordinal, year
from engines.text_normalize.leftover_digits import replace_leftover_digits
from engines.text_normalize.phone_numbers import PhoneNumber, replace_phones
from engines.text_normalize.sentence_end import keep_period

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_MONTH_ABBREVIATIONS = {m[:3].lower(): i for i, m in enumerate(MONTHS)} | {"sept": 8}


# -- 1. phones ------------------------------------------------------------------------


def speak_phone(phone: PhoneNumber) -> str:
    groups = [digits(g) for g in phone.groups]
    if phone.plus:
        groups[0] = "plus " + groups[0]
    return ", ".join(groups)


# -- 2. dates -------------------------------------------------------------------------

_ISO = re.compile(r"(?<![\d\-])(\d{4})-(\d{2})-(\d{2})(?![\d]|-\d)")
_DMY = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\d]|\.\d)")
_SLASHED = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d]|/\d)")
_MONTH_NAME = r"(?P<month>" + "|".join(MONTHS) + r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?)"
_MONTH_DAY = re.compile(_MONTH_NAME + r"\s(?P<day>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s(?P<year>\d{4})\b)?")
_DAY_MONTH = re.compile(r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s(?:of\s)?" + _MONTH_NAME + r"(?:,?\s(?P<year>\d{4})\b)?")


def _date_words(day: int, month: int, year_number: int | None) -> str | None:
    try:
        datetime.date(year_number or 2000, month, day)
    except ValueError:
        return None
    words = f"{MONTHS[month - 1]} {ordinal(day)}"
    return words + (f", {year(year_number)}" if year_number is not None else "")


def _month_index(name: str) -> int:
    name = name.rstrip(".")
    if name in MONTHS:
        return MONTHS.index(name) + 1
    return _MONTH_ABBREVIATIONS[name[:4].lower() if name.lower().startswith("sept") else name[:3].lower()] + 1


def _dates(text: str) -> str:
    def numeric(day: str, month: str, year_text: str, match: re.Match[str]) -> str:
        spoken = _date_words(int(day), int(month), int(year_text))
        return spoken if spoken is not None else match.group(0)

    text = _ISO.sub(lambda m: numeric(m[3], m[2], m[1], m), text)
    text = _DMY.sub(lambda m: numeric(m[1], m[2], m[3], m), text)

    def slashed(match: re.Match[str]) -> str:
        first, second = int(match[1]), int(match[2])
        month, day = (first, second) if first <= 12 else (second, first)  # US order unless impossible
        spoken = _date_words(day, month, int(match[3]))
        return spoken if spoken is not None else match.group(0)

    text = _SLASHED.sub(slashed, text)

    def named(match: re.Match[str]) -> str:
        spoken = _date_words(int(match["day"]), _month_index(match["month"]), int(match["year"]) if match["year"] else None)
        return spoken if spoken is not None else match.group(0)

    text = _MONTH_DAY.sub(named, text)
    return _DAY_MONTH.sub(named, text)


# -- 3. times ---------------------------------------------------------------------------

_TIME = re.compile(
    r"(?<![\d:.,])([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?![\d:]|[.,]\d)(?:\s?(?P<half>[AaPp])\.?[Mm]\.?(?![\w]))?"
)
_HOUR_HALF = re.compile(r"(?<![\d:.,])(1[0-2]|[1-9])\s?(?P<half>[AaPp])\.?[Mm]\.?(?![\w])")


def _times(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        hours, minutes = int(match[1]), int(match[2])
        if minutes == 0:
            spoken = f"{cardinal(hours)} o'clock" if hours <= 12 or match["half"] else f"{cardinal(hours)} hundred"
        elif minutes < 10:
            spoken = f"{cardinal(hours)} oh {cardinal(minutes)}"
        else:
            spoken = f"{cardinal(hours)} {cardinal(minutes)}"
        if match["half"]:
            spoken = spoken.replace(" o'clock", "") + f" {match['half'].lower()} m"
            return keep_period(match, spoken)
        return spoken

    text = _TIME.sub(one, text)
    return _HOUR_HALF.sub(lambda m: keep_period(m, f"{cardinal(int(m[1]))} {m['half'].lower()} m"), text)


# -- 4. money, percent, units -------------------------------------------------------------

_NUM = r"(?P<sign>[-−+])?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
_SCALE = r"(?:\s?(?P<scale>thousand|million|billion|trillion|k|K|M|bn|B)\b)?"
_SCALE_WORDS = {"k": "thousand", "K": "thousand", "M": "million", "bn": "billion", "B": "billion"}
_CURRENCY_SYMBOLS = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
                     "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", ""),
                     "₽": ("ruble", "rubles", "kopeck", "kopecks")}
_CURRENCY_SUFFIXES = {
    "USD": "$", "dollars": "$", "EUR": "€", "euros": "€", "GBP": "£", "JPY": "¥", "RUB": "₽", "₽": "₽",
    "руб.": "₽", "руб": "₽", "р.": "₽", "rubles": "₽", "roubles": "₽",
}
_UNITS = {
    "%": ("percent", "percent"), "km/h": ("kilometer per hour", "kilometers per hour"), "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"), "mi": ("mile", "miles"),
    "ft": ("foot", "feet"), "l": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "min": ("minute", "minutes"),
    "sec": ("second", "seconds"), "s": ("second", "seconds"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_PREFIX_MONEY = re.compile(r"(?<![\w])(?P<cur>[$€£¥₽])\s?" + _NUM + _SCALE)
_SUFFIX_MONEY = re.compile(r"(?<![\w.,])" + _NUM + _SCALE + r"\s?(?P<cur>" + _alternation(list(_CURRENCY_SUFFIXES)) + r")(?![\w])")
_UNIT_QUANTITY = re.compile(r"(?<![\w.,])" + _NUM + r"\s?(?P<unit>" + _alternation(list(_UNITS)) + r")(?![\w])")


def _number_words(match: re.Match[str]) -> tuple[str, float]:
    whole_text = match["int"].replace(",", "")
    sign = {"-": "minus ", "−": "minus ", "+": "plus "}.get(match["sign"] or "", "")
    value = float(f"{whole_text}.{match['frac']}" if match["frac"] else whole_text)
    return sign + decimal(whole_text, match["frac"] or ""), value


def _money(match: re.Match[str], symbol: str) -> str:
    one, many, sub_one, sub_many = _CURRENCY_SYMBOLS[symbol]
    scale = match["scale"]
    whole = int(match["int"].replace(",", ""))
    sign = "minus " if match["sign"] in ("-", "−") else ""
    if scale:
        words, _ = _number_words(match)
        return f"{words} {_SCALE_WORDS.get(scale, scale)} {many}"
    fraction = match["frac"]
    if fraction and len(fraction) == 2 and sub_one:
        cents = int(fraction)
        parts = []
        if whole or not cents:
            parts.append(f"{cardinal(whole)} {one if whole == 1 else many}")
        if cents:
            parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
        return sign + " and ".join(parts)
    words, value = _number_words(match)
    return f"{words} {one if value == 1 and not fraction else many}"


def _quantities(text: str) -> str:
    text = _PREFIX_MONEY.sub(lambda m: _money(m, m["cur"]), text)
    text = _SUFFIX_MONEY.sub(lambda m: keep_period(m, _money(m, _CURRENCY_SUFFIXES[m["cur"]])), text)

    def unit(match: re.Match[str]) -> str:
        words, value = _number_words(match)
        one, many = _UNITS[match["unit"]]
        return f"{words} {one if value == 1 and not match['frac'] else many}"

    return _UNIT_QUANTITY.sub(unit, text)


# -- 5. ordinals, decades, years -----------------------------------------------------------

_ORDINAL = re.compile(r"(?<![\w.,])(\d+)(st|nd|rd|th)\b")
_DECADE = re.compile(r"(?<![\w.,'’])(?:(\d{2})(\d)0|['’](\d)0)s\b")
_YEAR_AFTER = re.compile(r"\b(in|since|by|of|until|till|from|before|after|during|year|around|circa)\s(1[1-9]\d\d|20\d\d)(?![\w]|[.,]\d)", re.IGNORECASE)
_DECADE_WORDS = {1: "tens", 2: "twenties", 3: "thirties", 4: "forties", 5: "fifties", 6: "sixties", 7: "seventies",
                 8: "eighties", 9: "nineties"}


def _ordinals_and_years(text: str) -> str:
    text = _ORDINAL.sub(lambda m: ordinal(int(m[1])), text)

    def decade(match: re.Match[str]) -> str:
        if match[3]:
            return _DECADE_WORDS.get(int(match[3]), "hundreds") if int(match[3]) else "two thousands"
        century, tens = int(match[1]), int(match[2])
        if tens == 0:
            return f"{cardinal(century)} hundreds" if century != 20 else "two thousands"
        return f"{cardinal(century)} {_DECADE_WORDS[tens]}"

    text = _DECADE.sub(decade, text)
    return _YEAR_AFTER.sub(lambda m: f"{m[1]} {year(int(m[2]))}", text)


# -- 7. ranges, decimals, negatives, cardinals ---------------------------------------------

_RANGE = re.compile(r"(?<![\w.,\-])(\d+)\s?[-–—]\s?(\d+)(?![\w]|[.,]\d)")
_NUMBER = re.compile(r"(?<![\w.,\-])(?P<sign>[-−])?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?![\w]|[.,]\d)")


def _numbers(text: str) -> str:
    def a_range(match: re.Match[str]) -> str:
        low, high = int(match[1]), int(match[2])
        if low >= high or match[1].startswith("0") or match[2].startswith("0"):
            return match.group(0)
        return f"{cardinal(low)} to {cardinal(high)}"

    text = _RANGE.sub(a_range, text)

    def one(match: re.Match[str]) -> str:
        raw = match["int"].replace(",", "")
        sign = "minus " if match["sign"] else ""
        if match["frac"]:
            return sign + decimal(raw, match["frac"])
        if raw.startswith("0") and len(raw) > 1 or len(raw) > 12:
            return sign + digits(raw)
        if not sign and "," not in match["int"] and len(raw) == 4 and 1900 <= int(raw) <= 2099:
            return year(int(raw))  # a bare 4-digit number in 1900-2099 is almost always a year
        return sign + cardinal(int(raw))

    text = _NUMBER.sub(one, text)
    return replace_leftover_digits(text, cardinal, digits, "point")


_SYMBOLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(?<=[A-Za-z])/(?=[A-Za-z])"), " or "),
    (re.compile(r"(?<=\s)\+(?=\s)"), "plus"),
    (re.compile(r"\s=\s"), " equals "),
    (re.compile(r"%"), " percent"),
    (re.compile(r"°"), " degrees"),
    (re.compile(r"#(?=\s?\w)"), "number "),
    (re.compile(r"~"), "about "),
)


_AROUND_THE_CLOCK = re.compile(r"(?<![\d/])24/7(?![\d/])")


def normalize_english(text: str) -> str:
    text = _AROUND_THE_CLOCK.sub("twenty-four seven", text)
    text = replace_phones(text, speak_phone)
    text = _dates(text)
    text = _times(text)
    text = _ordinals_and_years(text)
    text = _quantities(text)
    text = expand_abbreviations(text, ENGLISH_ABBREVIATIONS)
    text = _numbers(text)
    for pattern, replacement in _SYMBOLS:
        text = pattern.sub(replacement, text)
    return text
