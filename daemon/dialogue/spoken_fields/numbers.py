"""Phone numbers and digits in an utterance: written ("+7 916 123-45-67") or said as words in English or Russian.

Number words, digits, punctuation and fillers continue a spoken number; any other word ends it.
Whisper writes what it hears as digits, words or both: commas, dots and hyphens inside a number
are dictation pauses ("8,916,123-45-67"), not decimals; a group can be half words, half digits
("8 девятьсот 16", "сорок 5"); a number said twice in one breath counts once. The parsers say
`None` (or "") rather than guess when nothing fits. `digit_groups` is how people of each language
dictate a number (8 916 123 45 67 in Russian, 555 123 4567 in English): the read-back says it so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from daemon.dialogue.spoken_fields.words import check_language, fold

MIN_PHONE_DIGITS = 5
MAX_PHONE_DIGITS = 15

_WRITTEN_NUMBER_RE = re.compile(r"\+?\d+")
_WRITTEN_SEPARATORS_RE = re.compile(r"[\s\-‐‑–—.()\[\]/]+")


def normalize_phone_number(text: str) -> str | None:
    """'+7 (916) 123-45-67' -> '+79161234567'. Spaces, dashes, dots, brackets go; a leading '+' stays.

    Anything else in the text (letters, a '+' in the middle) or a digit count outside 5..15 gives None.
    """
    compact = _WRITTEN_SEPARATORS_RE.sub("", text.strip())
    if not _WRITTEN_NUMBER_RE.fullmatch(compact):
        return None
    if not MIN_PHONE_DIGITS <= len(compact.lstrip("+")) <= MAX_PHONE_DIGITS:
        return None
    return compact


# Number words. Both languages are always recognised (whisper sometimes answers in the other
# language's words); Latin and Cyrillic spellings never collide.
_EN_ZERO = ("zero", "oh", "o", "nought")
_EN_UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EN_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
_EN_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_RU_ZERO = ("ноль", "нуль", "ноля", "нуля", "нолем", "нулем")
_RU_UNITS: tuple[tuple[str, ...], ...] = (
    ("один", "одна", "одно", "одного", "одной", "одну", "одним", "одном"),
    ("два", "две", "двух", "двум", "двумя"),
    ("три", "трех", "трем", "тремя"),
    ("четыре", "четырех", "четырем", "четырьмя"),
    ("пять", "пяти", "пятью"),
    ("шесть", "шести", "шестью"),
    ("семь", "семи", "семью"),
    ("восемь", "восьми", "восемью", "восьмью"),
    ("девять", "девяти", "девятью"),
)
_RU_TEEN_STEMS = (
    "десят", "одиннадцат", "двенадцат", "тринадцат", "четырнадцат",
    "пятнадцат", "шестнадцат", "семнадцат", "восемнадцат", "девятнадцат",
)
_RU_TENS: tuple[tuple[str, ...], ...] = (
    ("двадцать", "двадцати", "двадцатью"),
    ("тридцать", "тридцати", "тридцатью"),
    ("сорок", "сорока"),
    ("пятьдесят", "пятидесяти", "пятьюдесятью"),
    ("шестьдесят", "шестидесяти", "шестьюдесятью"),
    ("семьдесят", "семидесяти", "семьюдесятью"),
    ("восемьдесят", "восьмидесяти", "восемьюдесятью"),
    ("девяносто", "девяноста"),
)
_RU_HUNDREDS: tuple[tuple[str, ...], ...] = (
    ("сто", "ста"),
    ("двести", "двухсот", "двумстам"),
    ("триста", "трехсот", "тремстам"),
    ("четыреста", "четырехсот", "четыремстам"),
    ("пятьсот", "пятисот", "пятистам"),
    ("шестьсот", "шестисот", "шестистам"),
    ("семьсот", "семисот", "семистам"),
    ("восемьсот", "восьмисот", "восьмистам"),
    ("девятьсот", "девятисот", "девятистам"),
)


def _number_words() -> dict[str, tuple[str, int]]:
    words: dict[str, tuple[str, int]] = {}
    for word in (*_EN_ZERO, *_RU_ZERO):
        words[word] = ("zero", 0)
    for value, word in enumerate(_EN_UNITS, start=1):
        words[word] = ("unit", value)
    for value, word in enumerate(_EN_TEENS, start=10):
        words[word] = ("teen", value)
    for value, word in enumerate(_EN_TENS, start=2):
        words[word] = ("tens", value * 10)
    for value, forms in enumerate(_RU_UNITS, start=1):
        words.update({form: ("unit", value) for form in forms})
    for value, stem in enumerate(_RU_TEEN_STEMS, start=10):
        words.update({stem + ending: ("teen", value) for ending in ("ь", "и", "ью")})
    for value, forms in enumerate(_RU_TENS, start=2):
        words.update({form: ("tens", value * 10) for form in forms})
    for value, forms in enumerate(_RU_HUNDREDS, start=1):
        words.update({form: ("hundreds", value * 100) for form in forms})
    words["hundred"] = ("hundred", 100)
    for word in ("thousand", "тысяча", "тысячи", "тысяч", "тысячу"):
        words[word] = ("thousand", 1000)
    words["double"] = ("repeat", 2)
    words["triple"] = ("repeat", 3)
    return words


NUMBER_WORDS = _number_words()
PLUS_WORDS = frozenset({"plus", "плюс"})
# Words that may sit between the groups of one spoken number without ending it.
_NUMBER_JOINERS = frozenset({
    "and", "dash", "hyphen", "then", "space", "uh", "um", "umm", "er", "erm", "ah", "hmm", "mm",
    "и", "тире", "дефис", "потом", "затем", "э", "ээ", "эм", "мм", "ну",
})
_NUMBER_TOKEN_RE = re.compile(r"\+|\d+|[^\W\d_]+(?:'[^\W\d_]+)*")

# One token of a spoken number: (kind, text, value), kind being "digits", "zero", "unit", "teen",
# "tens", "hundred", "hundreds", "thousand", "repeat" ("double"), "a" ("a hundred") or "and".
_NumberToken = tuple[str, str, int]


@dataclass
class _Run:
    """One stretch of number tokens: a candidate phone number."""

    plus: bool = False
    tokens: list[_NumberToken] = field(default_factory=list)

    def digits(self) -> str:
        return _spoken_digits(self.tokens)


def _number_runs(text: str) -> list[_Run]:
    words = _NUMBER_TOKEN_RE.findall(fold(text))
    runs: list[_Run] = []
    current: _Run | None = None
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        kind = _token_kind(word, following)
        if kind == "plus":
            current = _Run(plus=True)
            runs.append(current)
        elif kind == "joiner":
            if current is not None and word == "and":
                current.tokens.append(("and", word, 0))  # "one hundred and five"
            continue
        elif kind == "other":
            current = None
        else:
            if current is None:
                current = _Run()
                runs.append(current)
            value = int(word) if kind == "digits" else NUMBER_WORDS.get(word, ("", 1))[1]
            current.tokens.append((kind, word, value))
    return runs


def _token_kind(word: str, following: str) -> str:
    if word == "+" or word in PLUS_WORDS:
        return "plus"
    if word.isdigit():
        return "digits"
    if word == "a" and NUMBER_WORDS.get(following, ("",))[0] in ("hundred", "thousand"):
        return "a"  # "a hundred"
    if word in NUMBER_WORDS:
        return NUMBER_WORDS[word][0]
    if word in _NUMBER_JOINERS:
        return "joiner"
    return "other"


def _spoken_digits(tokens: list[_NumberToken]) -> str:
    out: list[str] = []
    index = 0
    while index < len(tokens):
        kind, text, value = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "", 0)
        if kind == "digits" and following[0] == "thousand" and len(text) <= 3:
            rest, index = _below_thousand(tokens, index + 2)  # whisper's mix: "из 4 тысяч" is 4000
            out.append(str(value * 1000 + (rest or 0)))
        elif kind == "digits" and _is_written_tens(text) and following[0] == "digits" and _is_small_written(
                following[1], 1):
            out.append(str(value + following[2]))  # "двадцать один" written "20, 1" is 21, as the words are
            index += 2
        elif kind == "digits":
            out.append(text)
            index += 1
        elif kind == "zero":
            out.append("0")
            index += 1
        elif kind == "and":
            index += 1
        elif kind == "repeat":
            digit = _single_digit(tokens[index + 1]) if index + 1 < len(tokens) else None
            if digit is None:
                index += 1  # "double" with no digit after it says nothing
            else:
                out.append(digit * value)
                index += 2
        else:
            number, index = _cardinal(tokens, index)
            if number is not None:
                out.append(str(number))
    return "".join(out)


def _single_digit(token: _NumberToken) -> str | None:
    kind, text, value = token
    if kind == "zero":
        return "0"
    if kind == "unit":
        return str(value)
    if kind == "digits" and len(text) == 1:
        return text
    return None


def _cardinal(tokens: list[_NumberToken], index: int) -> tuple[int | None, int]:
    """A number said as a number ("nine hundred sixteen", "сорок пять", "two thousand") -> its value."""
    value, index = _below_thousand(tokens, index)
    if index < len(tokens) and tokens[index][0] == "thousand":
        value, index = (value or 1) * 1000, index + 1
        if index + 1 < len(tokens) and tokens[index][0] == "and" and tokens[index + 1][0] in ("unit", "teen", "tens"):
            index += 1
        rest, index = _below_thousand(tokens, index)
        value += rest or 0
    return value, index


def _below_thousand(tokens: list[_NumberToken], index: int) -> tuple[int | None, int]:
    def kind_at(i: int) -> str:
        return tokens[i][0] if i < len(tokens) else ""

    if kind_at(index) in ("unit", "teen", "a") and kind_at(index + 1) == "hundred":
        multiplier = 1 if kind_at(index) == "a" else tokens[index][2]
        hundreds, index = multiplier * 100, index + 2
    elif kind_at(index) == "hundred":
        hundreds, index = 100, index + 1
    elif kind_at(index) == "hundreds":  # Russian: "девятьсот пять" is 905
        hundreds, index = tokens[index][2], index + 1
        if kind_at(index) == "digits" and _is_small_written(tokens[index][1], 2):
            return hundreds + tokens[index][2], index + 1  # whisper's mix: "девятьсот 16" is 916
        rest, index = _below_hundred(tokens, index)
        return hundreds + (rest or 0), index
    elif kind_at(index) == "a":
        return None, index + 1
    else:
        return _below_hundred(tokens, index)
    # English: "nine hundred sixteen" is 916 and "one hundred and five" is 105, but "eight hundred,
    # five five five ..." dictates 800 and then digits, so a bare unit after "hundred" stays apart.
    if kind_at(index) == "and" and kind_at(index + 1) in ("unit", "teen", "tens"):
        index += 1
    elif kind_at(index) not in ("teen", "tens"):
        return hundreds, index
    rest, index = _below_hundred(tokens, index)
    return hundreds + (rest or 0), index


def _below_hundred(tokens: list[_NumberToken], index: int) -> tuple[int | None, int]:
    kind = tokens[index][0] if index < len(tokens) else ""
    if kind == "tens":
        value = tokens[index][2]
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "", 0)
        if following[0] == "unit" or following[0] == "digits" and _is_small_written(following[1], 1):
            return value + following[2], index + 2  # "сорок пять", whisper's mix "сорок 5"
        return value, index + 1
    if kind in ("teen", "unit"):
        return tokens[index][2], index + 1
    return None, index


def _is_written_tens(text: str) -> bool:
    """20, 30, ... 90 written as digits: whisper's way of writing the first word of "двадцать один"."""
    return len(text) == 2 and text[1] == "0" and text[0] in "23456789"


def _is_small_written(text: str, max_digits: int) -> bool:
    """Digits that finish a group said partly in words: "16" after "девятьсот", "5" after "сорок"."""
    return len(text) <= max_digits and not text.startswith("0")


def _said_twice(digits: str) -> str:
    """A number said twice in one breath ("8 916 123 45 67, 8 916 123 45 67") -> once.

    Only when the two together are too long for one number: "555 1234 555 1234" stays 14 digits.
    """
    half = len(digits) // 2
    if len(digits) > MAX_PHONE_DIGITS and len(digits) % 2 == 0 and digits[:half] == digits[half:]:
        return digits[:half]
    return digits


def spoken_numbers(text: str) -> list[str]:
    """Every number in an utterance, in order, as digits (a said or written '+' kept).

    "нет, не сорок пять, а сорок шесть" -> ["45", "46"]; "no, 5 5 6" -> ["556"].
    """
    return [("+" if run.plus else "") + digits for run in _number_runs(text) if (digits := _said_twice(run.digits()))]


def digit_groups(digits: str, language: str) -> list[str]:
    """The groups a number is said in, as people of `language` dictate it.

    Russian: 8 916 123 45 67, +7 916 123 45 67, 916 123 45 67, 123 45 67 (pairs at the end);
    English: 1 555 123 4567, 555 123 4567, 555 0134 (four at the end). Other lengths: threes,
    with the last four as two pairs in Russian.
    """
    language = check_language(language)
    if len(digits) == 11 and (digits[0] in "78" or language == "ru"):
        return [digits[0], digits[1:4], digits[4:7], digits[7:9], digits[9:]]
    if len(digits) == 11 and digits[0] == "1":
        return [digits[0], digits[1:4], digits[4:7], digits[7:]]
    if language == "ru" and len(digits) == 6:
        return [digits[0:2], digits[2:4], digits[4:]]
    head, tail = (digits[:-4], [digits[-4:-2], digits[-2:]]) if language == "ru" and len(digits) >= 7 else (digits, [])
    groups: list[str] = []
    while len(head) > 4:
        groups.append(head[:3])
        head = head[3:]
    if tail and len(head) == 4:
        groups, head = [*groups, head[:2]], head[2:]
    return [*groups, *([head] if head else []), *tail]


def extract_phone_number(text: str, language: str) -> str | None:
    """The phone number spoken or written in an utterance, as digits with an optional leading '+'.

    "+7 916 123-45-67" -> "+79161234567"; "five five five, oh one three four" -> "5550134";
    "double five five one two three four" -> "5551234"; "восемь девятьсот шестнадцать сто двадцать
    три сорок пять шестьдесят семь" -> "89161234567". Number words, digits, punctuation and
    fillers ("and", "dash", "и", "тире", "um") continue a number; any other word ends it. When an
    utterance holds several numbers, the longest one of 5..15 digits wins (the last of equals).
    """
    check_language(language)
    best: str | None = None
    best_length = 0
    for run in _number_runs(text):
        digits = _said_twice(run.digits())
        if MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS and len(digits) >= best_length:
            best, best_length = ("+" if run.plus else "") + digits, len(digits)
    return best


def extract_digits(text: str, language: str) -> str:
    """The digits of the longest number said in an utterance, however short ("" when none).

    For a number dictated across two STT finals: "восемь девятьсот шестнадцать" -> "8916".
    """
    check_language(language)
    best = ""
    for run in _number_runs(text):
        digits = _said_twice(run.digits())
        if digits and len(digits) >= len(best.lstrip("+")):
            best = ("+" if run.plus else "") + digits
    return best
