"""Russian text made speakable: every digit, symbol and Latin word becomes Russian words.

Passes run in this order, each turning its pattern into words so later passes
cannot misread it:

1. phone numbers ("+7 912 345-67-89" → "плюс семь, девятьсот двенадцать, ...");
2. dates ("25.12.2026", "2026-12-25", "25 декабря 2026 г.", "в 2026 году");
3. times ("14:30" → "четырнадцать тридцать", "9:00" → "девять ноль-ноль");
4. quantities: money ("1 500 ₽", "$20", "1500,50 руб."), percentages, units
   ("5 км", "-5 °C") and "тыс./млн/млрд", with the noun agreeing with the
   number (рубль / рубля / рублей);
5. ordinals written with an ending ("1-й", "5-го", "90-х"), "№", Roman
   numerals before "век" or after a name ("XXI век", "Пётр I");
6. abbreviations ("т.е.", "и т.д.", "ул.", "г. Москва");
7. ranges ("5-7 минут" → "от пяти до семи минут"), decimals, negatives and
   cardinals;
8. Latin words ("Telegram" → "телеграм") and leftover symbols.

Case: a number after a preposition that governs a case takes it ("до 5
минут" → "до пяти минут", "к 25.12" → "к двадцать пятому декабря").
Gender: "1"/"2" before a feminine or neuter word agree with it ("1 минута"
→ "одна минута", "2 недели" → "две недели", "1 окно" → "одно окно"), guessed
from the next word's ending.
"""

from __future__ import annotations

import datetime
import re

from engines.text_normalize import russian_nouns as nouns
from engines.text_normalize.abbreviations import RUSSIAN as RUSSIAN_ABBREVIATIONS
from engines.text_normalize.abbreviations import expand_abbreviations
from engines.text_normalize.latin_to_cyrillic import replace_latin_words
from engines.text_normalize.leftover_digits import replace_leftover_digits
from engines.text_normalize.phone_numbers import PhoneNumber, replace_phones
from engines.text_normalize.russian_numbers import cardinal, decimal, digits, ordinal
from engines.text_normalize.sentence_end import keep_period

MONTHS_GENITIVE = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)

# Prepositions and the case they give a following number.
PREPOSITION_CASE: dict[str, str] = {
    **dict.fromkeys(
        ("до", "от", "с", "со", "из", "около", "после", "без", "для", "у", "кроме", "более", "менее",
         "больше", "меньше", "свыше", "порядка", "вместо", "против", "среди", "начиная", "посреди"),
        "g",
    ),
    **dict.fromkeys(("к", "ко", "согласно", "благодаря", "вопреки"), "d"),
    **dict.fromkeys(("на", "за", "через", "про", "в", "во", "по"), "a"),
    **dict.fromkeys(("между", "перед", "над", "под"), "i"),
    **dict.fromkeys(("о", "об", "обо", "при"), "p"),
}

_WORD_BEFORE = re.compile(r"([А-Яа-яЁё]+)[\s\u00a0]*$")
_WORD_AFTER = re.compile(r"^[\s\u00a0]*([А-Яа-яЁё]+)")

_FEMININE_SOFT = frozenset({
    "ночь", "дверь", "вещь", "площадь", "область", "тетрадь", "лошадь", "мышь", "запись", "очередь",
    "жизнь", "мель", "цель", "связь", "роль", "соль", "боль", "модель", "ночи", "двери",
})
_MASCULINE_A = frozenset({
    "мужчина", "мужчины", "мужчину", "папа", "папы", "дедушка", "дедушки", "дядя", "дяди",
    "судья", "судьи", "юноша", "юноши", "коллега", "коллеги",
})
_CONJUNCTIONS = frozenset({"и", "или", "а", "но", "да", "либо", "то", "ни", "же", "ли"})
_NOT_NEUTER = frozenset({"евро", "кофе", "тенге", "пенсе"})


def case_before(text: str, start: int) -> str:
    """The case a preposition right before ``start`` governs ("n" when there is none)."""
    match = _WORD_BEFORE.search(text, 0, start)
    return "n" if match is None else PREPOSITION_CASE.get(match.group(1).lower(), "n")


def _next_word(text: str, end: int) -> str:
    match = _WORD_AFTER.match(text[end:end + 60])
    return match.group(1).lower() if match else ""


def gender_for(number: int, word: str, case: str) -> str:
    """The gender a number takes before ``word`` (only 1 and 2 show it), guessed from the word's ending."""
    w = word.lower()
    if not w or w in PREPOSITION_CASE or w in _CONJUNCTIONS:
        return "m"
    if w in _MASCULINE_A:
        return "m"
    if w in _FEMININE_SOFT or w.endswith(("ость", "ости", "остью", "есть")):
        return "f"
    last_two, last = number % 100, number % 10
    if case in ("n", "a"):
        if last == 1 and last_two != 11:
            if w.endswith(("а", "я") if case == "n" else ("у", "ю")):
                return "f"
            if w.endswith(("о", "е", "ё")) and w not in _NOT_NEUTER and not w.endswith(("ые", "ие")):
                return "n"
            return "m"
        if last == 2 and last_two != 12:
            return "f" if w.endswith(("ы", "и", "ые", "ие")) else "m"
        return "m"
    if last == 1 and last_two != 11:
        endings = {"g": ("ы", "и", "ой", "ей"), "d": ("е", "и", "ой", "ей"), "i": ("ой", "ей", "ью"), "p": ("ой", "ей")}
        if w.endswith(endings.get(case, ())):
            return "f"
    return "m"


def _looks_accusative_feminine(word: str) -> bool:
    w = word.lower()
    return w.endswith(("у", "ю")) and w not in _MASCULINE_A and w not in PREPOSITION_CASE and len(w) > 2


# -- 1. phone numbers ------------------------------------------------------------


def _group_words(group: str) -> str:
    if group.startswith("0"):
        zeros = len(group) - len(group.lstrip("0"))
        rest = group[zeros:]
        return " ".join(["ноль"] * zeros + ([_group_words(rest)] if rest else []))
    if len(group) == 4:
        return f"{_group_words(group[:2])} {_group_words(group[2:])}"
    if len(group) > 4:
        return " ".join(_group_words(group[i:i + 3]) for i in range(0, len(group), 3))
    return cardinal(int(group))


def speak_phone(phone: PhoneNumber) -> str:
    groups = [_group_words(g) for g in phone.groups]
    if phone.plus:
        groups[0] = "плюс " + groups[0]
    return ", ".join(groups)


# -- 2. dates ----------------------------------------------------------------------

_YEAR_NOUN = r"(?:\s?(?:г\.|года\b|год\b))?"
_DMY = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\d]|\.\d)" + _YEAR_NOUN)
_DM = re.compile(r"(?<![\d.,])(\d{2})\.(\d{2})(?![\d]|[.,]\d)")
_ISO = re.compile(r"(?<![\d\-])(\d{4})-(\d{2})-(\d{2})(?![\d]|-\d)" + _YEAR_NOUN)
_DAY_MONTH = re.compile(
    r"(?<![\d.,])(\d{1,2})\s(" + "|".join(MONTHS_GENITIVE) + r")\b(?:\s(\d{4})" + _YEAR_NOUN + ")?"
)
_DAY_RANGE_MONTH = re.compile(
    r"(?<![\d.,])(\d{1,2})(\s?[-–—]\s?|\s(?:по|до|и)\s)(\d{1,2})\s(" + "|".join(MONTHS_GENITIVE) + r")\b"
)
_YEAR_WITH_NOUN = re.compile(r"(?<![\d.,\-])(\d{4})\s?(гг\.|г\.|годами|годах|годам|годов|годы|году|годом|годе|года|год)(?![\w])")
_YEAR_NOUN_CASE = {"год": "n", "года": "g", "году": "p", "годом": "i", "годе": "p"}


def _date_words(day: int, month: int, year: int | None, case: str) -> str | None:
    try:
        datetime.date(year or 2000, month, day)
    except ValueError:
        return None
    words = f"{ordinal(day, case, 'n')} {MONTHS_GENITIVE[month - 1]}"
    if year is not None:
        words += f" {ordinal(year, 'g')} года"
    return words


def _dates(text: str) -> str:
    def dmy(match: re.Match[str]) -> str:
        spoken = _date_words(int(match[1]), int(match[2]), int(match[3]), case_before(match.string, match.start()))
        return keep_period(match, spoken) if spoken is not None else match.group(0)

    text = _DMY.sub(dmy, text)

    def iso(match: re.Match[str]) -> str:
        spoken = _date_words(int(match[3]), int(match[2]), int(match[1]), case_before(match.string, match.start()))
        return keep_period(match, spoken) if spoken is not None else match.group(0)

    text = _ISO.sub(iso, text)

    def day_month(match: re.Match[str]) -> str:
        month = MONTHS_GENITIVE.index(match[2]) + 1
        spoken = _date_words(int(match[1]), month, int(match[3]) if match[3] else None, case_before(match.string, match.start()))
        return keep_period(match, spoken) if spoken is not None else match.group(0)

    def day_range(match: re.Match[str]) -> str:  # "с 1 по 5 мая", "1-5 мая"
        first, second = int(match[1]), int(match[3])
        if not (1 <= first <= 31 and 1 <= second <= 31):
            return match.group(0)
        joiner = match[2].strip()
        if joiner in ("по", "до", "и"):
            first_case = case_before(match.string, match.start())
            second_case = {"по": "a", "до": "g"}.get(joiner, first_case)
            return f"{ordinal(first, first_case, 'n')} {joiner} {ordinal(second, second_case, 'n')} {match[4]}"
        prefix = match.string[:match.start()].rstrip().lower()
        if prefix.endswith(("с", "со")):
            return f"{ordinal(first, 'g', 'n')} по {ordinal(second, 'a', 'n')} {match[4]}"
        return f"с {ordinal(first, 'g', 'n')} по {ordinal(second, 'a', 'n')} {match[4]}"

    text = _DAY_RANGE_MONTH.sub(day_range, text)
    text = _DAY_MONTH.sub(day_month, text)

    def dm(match: re.Match[str]) -> str:  # "до 31.12": two two-digit parts that make a real date
        day, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            return match.group(0)
        spoken = _date_words(day, month, None, case_before(match.string, match.start()))
        return spoken if spoken is not None else match.group(0)

    text = _DM.sub(dm, text)

    def year(match: re.Match[str]) -> str:
        number, noun = int(match[1]), match[2]
        before = case_before(match.string, match.start())
        if noun in ("гг.", "годы", "годов", "годам", "годами", "годах"):
            plural_case = {"годы": "n", "годов": "g", "годам": "d", "годами": "i", "годах": "p"}.get(noun, before)
            if noun == "гг.":
                plural_case = before if before != "a" else "n"
                noun = {"n": "годы", "g": "годов", "d": "годам", "i": "годами", "p": "годах"}[plural_case]
            return keep_period(match, f"{ordinal(number, plural_case, plural=True)} {noun}")
        if noun == "г.":
            noun_case = {"a": "p", "n": "g"}.get(before, before)
            if before == "a" and match.string[:match.start()].rstrip().lower().endswith(("на", "за", "через", "по", "про")):
                noun_case = "n"
            noun = {"n": "год", "g": "года", "d": "году", "p": "году", "i": "годом"}[noun_case]
        else:
            noun_case = _YEAR_NOUN_CASE[noun]
            if noun == "году" and before == "d":
                noun_case = "d"
        return keep_period(match, f"{ordinal(number, noun_case)} {noun}")

    return _YEAR_WITH_NOUN.sub(year, text)


# -- 3. times ------------------------------------------------------------------------

_TIME = re.compile(r"(?<![\d:.,])([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?![\d:]|[.,]\d)")


def _times(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        case = case_before(match.string, match.start())
        hours, minutes = int(match[1]), match[2]
        spoken = cardinal(hours, case)
        if minutes == "00":
            spoken += " ноль-ноль"
        elif minutes.startswith("0"):
            spoken += " ноль " + cardinal(int(minutes[1]), case, "f")
        else:
            spoken += " " + cardinal(int(minutes), case, "f")
        if match[3]:
            spoken += " и " + cardinal(int(match[3]), case, "f") + " " + nouns.agree(int(match[3]), nouns.SECOND, case)
        return spoken

    return _TIME.sub(one, text)


# -- 4. quantities: money, percent, units ---------------------------------------------

_NUM = r"(?P<sign>[-−+])?(?P<int>\d{1,3}(?:[ \u00a0]\d{3})+|\d+)(?:[.,](?P<frac>\d+))?"
_MULTIPLIERS: dict[str, nouns.CountedNoun] = {
    "тыс.": nouns.THOUSAND, "тыс": nouns.THOUSAND, "тысяч": nouns.THOUSAND, "тысячи": nouns.THOUSAND, "тысяча": nouns.THOUSAND,
    "млн": nouns.MILLION, "млн.": nouns.MILLION, "миллион": nouns.MILLION, "миллиона": nouns.MILLION, "миллионов": nouns.MILLION,
    "млрд": nouns.BILLION, "млрд.": nouns.BILLION, "миллиард": nouns.BILLION, "миллиарда": nouns.BILLION, "миллиардов": nouns.BILLION,
}
_UNITS: dict[str, nouns.CountedNoun] = {
    "₽": nouns.RUBLE, "руб.": nouns.RUBLE, "руб": nouns.RUBLE, "р.": nouns.RUBLE, "RUB": nouns.RUBLE,
    "$": nouns.DOLLAR, "USD": nouns.DOLLAR, "долл.": nouns.DOLLAR,
    "€": nouns.EURO, "EUR": nouns.EURO,
    "£": nouns.POUND, "GBP": nouns.POUND,
    "¥": nouns.YUAN, "CNY": nouns.YUAN,
    "₸": nouns.TENGE, "KZT": nouns.TENGE,
    "₴": nouns.HRYVNIA, "UAH": nouns.HRYVNIA,
    "%": nouns.PERCENT,
    "км/ч": nouns.KMH, "км": nouns.KILOMETRE, "м": nouns.METRE, "см": nouns.CENTIMETRE, "мм": nouns.MILLIMETRE,
    "кг": nouns.KILOGRAM, "г": nouns.GRAM, "л": nouns.LITRE, "мл": nouns.MILLILITRE,
    "ч.": nouns.HOUR, "ч": nouns.HOUR, "мин.": nouns.MINUTE, "мин": nouns.MINUTE, "сек.": nouns.SECOND, "сек": nouns.SECOND,
    "°C": nouns.DEGREE, "°С": nouns.DEGREE, "°": nouns.DEGREE,
    "шт.": nouns.PIECE, "шт": nouns.PIECE,
}
_SUBUNITS: dict[int, nouns.CountedNoun] = {
    id(nouns.RUBLE): nouns.KOPECK, id(nouns.DOLLAR): nouns.CENT, id(nouns.EURO): nouns.CENT,
    id(nouns.POUND): nouns.PENNY, id(nouns.HRYVNIA): nouns.KOPECK,
}
_CELSIUS = frozenset({"°C", "°С"})


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_MULT = r"(?:[\s\u00a0]?(?P<mult>" + _alternation(list(_MULTIPLIERS)) + r")(?![\w]))"
_SUFFIX_QUANTITY = re.compile(
    r"(?<![\w.,])" + _NUM + _MULT + r"?[\s\u00a0]?(?P<unit>" + _alternation(list(_UNITS)) + r")(?![\w]|\.\w)"
)
_PREFIX_QUANTITY = re.compile(
    r"(?<![\w])(?P<unit>[$€£¥₽₸₴])[\s\u00a0]?" + _NUM + _MULT + r"?(?![\w])"
)
_MULT_ONLY = re.compile(r"(?<![\w.,])" + _NUM + r"[\s\u00a0]?(?P<mult>тыс\.|тыс|млн\.?|млрд\.?)(?![\w])")


def _integer(match: re.Match[str]) -> int:
    return int(re.sub(r"[\s\u00a0]", "", match["int"]))


def _sign_words(sign: str | None) -> str:
    return {"-": "минус ", "−": "минус ", "+": "плюс "}.get(sign or "", "")


def _quantity_words(match: re.Match[str], unit_key: str | None) -> str:
    return keep_period(match, _quantity(match, unit_key))


def _quantity(match: re.Match[str], unit_key: str | None) -> str:
    case = case_before(match.string, match.start())
    whole = _integer(match)
    fraction = match["frac"]
    multiplier = _MULTIPLIERS.get(match["mult"]) if match["mult"] else None
    unit = _UNITS.get(unit_key) if unit_key else None
    subunit = _SUBUNITS.get(id(unit)) if unit is not None else None
    words = _sign_words(match["sign"])
    if fraction and subunit is not None and multiplier is None and len(fraction) == 2:
        assert unit is not None
        cents = int(fraction)
        parts = []
        if whole or not cents:
            parts.append(f"{cardinal(whole, case, unit.gender)} {nouns.agree(whole, unit, case)}")
        if cents:
            parts.append(f"{cardinal(cents, case, subunit.gender)} {nouns.agree(cents, subunit, case)}")
        return words + " ".join(parts)
    counted = multiplier or unit
    gender = counted.gender if counted is not None else "m"
    if fraction:
        words += decimal(str(whole), fraction, case)
        number: int | None = None
    else:
        words += cardinal(whole, case, gender)
        number = whole
    if multiplier is not None:
        words += " " + nouns.agree(number, multiplier, case)
        if unit is not None:
            words += " " + unit.form("g", many=True)
    elif unit is not None:
        words += " " + nouns.agree(number, unit, case)
    if unit_key in _CELSIUS:
        words += " Цельсия"
    return words


def _quantities(text: str) -> str:
    text = _PREFIX_QUANTITY.sub(lambda m: _quantity_words(m, m["unit"]), text)
    text = _SUFFIX_QUANTITY.sub(lambda m: _quantity_words(m, m["unit"]), text)
    return _MULT_ONLY.sub(lambda m: _quantity_words(m, None), text)


# -- 5. ordinals with endings, "№" -------------------------------------------------------

_ORDINAL = re.compile(r"(?<![\w.,])(\d+)[-‐–](ый|ий|ой|й|ая|яя|я|ое|ее|е|ого|его|го|ому|ему|му|ым|им|ом|ем|м|ую|юю|ю|ые|ие|ых|их|х|ыми|ими|ми|ей)(?![\w])")
_ORDINAL_FORMS: dict[str, tuple[str, str, bool]] = {
    **dict.fromkeys(("ый", "ий", "ой", "й"), ("n", "m", False)),
    **dict.fromkeys(("ая", "яя", "я"), ("n", "f", False)),
    **dict.fromkeys(("ое", "ее", "е"), ("n", "n", False)),
    **dict.fromkeys(("ого", "его", "го"), ("g", "m", False)),
    **dict.fromkeys(("ому", "ему", "му"), ("d", "m", False)),
    **dict.fromkeys(("ым", "им"), ("i", "m", False)),
    **dict.fromkeys(("ом", "ем", "м"), ("p", "m", False)),
    **dict.fromkeys(("ую", "юю", "ю"), ("a", "f", False)),
    **dict.fromkeys(("ые", "ие"), ("n", "m", True)),
    **dict.fromkeys(("ых", "их", "х"), ("g", "m", True)),
    **dict.fromkeys(("ыми", "ими", "ми"), ("i", "m", True)),
    "ей": ("g", "f", False),
}
_NUMERO = re.compile(r"№[\s\u00a0]?(?=\d)")


def _ordinals(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        number, ending = int(match[1]), match[2]
        case, gender, plural = _ORDINAL_FORMS[ending]
        if ending == "е" and number >= 20 and number % 10 == 0:  # "90-е" are the nineties
            plural = True
        return ordinal(number, case, gender, plural)

    text = _ORDINAL.sub(one, text)
    return _NUMERO.sub("номер ", text)


_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_ROMAN_CENTURY = re.compile(r"\b([IVXLC]{1,7})\s?(век|века|веку|веком|веке|веков|веках|в\.|вв\.)(?![\w])")
_ROMAN_AFTER_NAME = re.compile(r"\b([А-ЯЁ][а-яё]+\s)([IVX]{1,5})\b(?![\w-])")
_NOUN_CASE_PLURAL = {"век": ("n", False), "века": ("g", False), "веку": ("d", False), "веком": ("i", False),
                     "веке": ("p", False), "веков": ("g", True), "веках": ("p", True)}


def roman_value(numeral: str) -> int | None:
    """The value of a well-formed Roman numeral (I..MMMCMXCIX), else ``None``."""
    total, previous = 0, 0
    for ch in reversed(numeral):
        value = _ROMAN_VALUES[ch]
        total += -value if value < previous else value
        previous = max(previous, value)
    return total if total > 0 and _to_roman(total) == numeral else None


def _to_roman(number: int) -> str:
    out = []
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                           (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while number >= value:
            out.append(letters)
            number -= value
    return "".join(out)


def _roman_numerals(text: str) -> str:
    def century(match: re.Match[str]) -> str:
        value = roman_value(match[1])
        if value is None:
            return match.group(0)
        noun = match[2]
        if noun in ("в.", "вв."):
            plural = noun == "вв."
            case = case_before(match.string, match.start())
            case = "p" if case == "a" else case
            noun = {False: {"n": "век", "g": "века", "d": "веку", "i": "веком", "p": "веке"},
                    True: {"n": "века", "g": "веков", "d": "векам", "i": "веками", "p": "веках"}}[plural][case]
            return keep_period(match, f"{ordinal(value, case, plural=plural)} {noun}")
        case, plural = _NOUN_CASE_PLURAL[noun]
        return f"{ordinal(value, case, plural=plural)} {noun}"

    text = _ROMAN_CENTURY.sub(century, text)

    def regnal(match: re.Match[str]) -> str:  # "Пётр I" -> "Пётр первый"
        value = roman_value(match[2])
        return match[1] + ordinal(value) if value is not None else match.group(0)

    return _ROMAN_AFTER_NAME.sub(regnal, text)


# -- 7. ranges, decimals, negatives, cardinals -------------------------------------------

_PLAIN = r"(?P<int>\d{1,3}(?:[ \u00a0]\d{3})+|\d+)"
_RANGE = re.compile(r"(?<![\w.,\-])(\d+)[\s\u00a0]?[-–—][\s\u00a0]?(\d+)(?![\w]|[.,]\d)")
_NUMBER = re.compile(r"(?<![\w.,\-])(?P<sign>(?<![\w])[-−])?" + _PLAIN + r"(?:[.,](?P<frac>\d+))?(?![\w]|[.,]\d)")


def _ranges(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        low, high = int(match[1]), int(match[2])
        if low >= high or match[1].startswith("0") or match[2].startswith("0"):
            return match.group(0)
        word = _next_word(match.string, match.end())
        prefix = match.string[:match.start()].rstrip().lower()
        if prefix.endswith(("от", "с", "со")):
            return match.group(0)
        return f"от {cardinal(low, 'g', gender_for(low, word, 'g'))} до {cardinal(high, 'g', gender_for(high, word, 'g'))}"

    return _RANGE.sub(one, text)


def _numbers(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        raw = re.sub(r"[\s\u00a0]", "", match["int"])
        sign = "минус " if match["sign"] else ""
        if match["frac"]:
            return sign + decimal(raw, match["frac"], case_before(match.string, match.start()))
        if raw.startswith("0") and len(raw) > 1 or len(raw) > 12:
            return sign + digits(raw)
        number = int(raw)
        case = case_before(match.string, match.start())
        word = _next_word(match.string, match.end())
        if case == "n" and number % 10 == 1 and number % 100 != 11 and _looks_accusative_feminine(word):
            case = "a"  # "подождите 1 минуту" -> "одну минуту"
        return sign + cardinal(number, case, gender_for(number, word, case))

    text = _NUMBER.sub(one, text)
    return replace_leftover_digits(text, cardinal, digits, "точка")


# -- 8. symbols -------------------------------------------------------------------------

_SYMBOLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s*&\s*"), " и "),
    (re.compile(r"(?<=[а-яё])/(?=[а-яё])"), " "),
    (re.compile(r"(?<=\s)\+(?=\s)"), "плюс"),
    (re.compile(r"\s=\s"), " равно "),
    (re.compile(r"%"), " процентов"),
    (re.compile(r"°"), " градусов"),
    (re.compile(r"@"), " собака "),
    (re.compile(r"#"), "номер "),
    (re.compile(r"~"), "около "),
)


_AROUND_THE_CLOCK = re.compile(r"(?<![\d/])24/7(?![\d/])")


def normalize_russian(text: str) -> str:
    text = _AROUND_THE_CLOCK.sub("двадцать четыре на семь", text)
    text = replace_phones(text, speak_phone)
    text = _dates(text)
    text = _times(text)
    text = _quantities(text)
    text = _ordinals(text)
    text = _roman_numerals(text)
    text = expand_abbreviations(text, RUSSIAN_ABBREVIATIONS)
    text = _ranges(text)
    text = _numbers(text)
    text = replace_latin_words(text)
    for pattern, replacement in _SYMBOLS:
        text = pattern.sub(replacement, text)
    return text
