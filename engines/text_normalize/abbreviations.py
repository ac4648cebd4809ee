"""Common abbreviations spelled out, for English and Russian text.

Each entry is a pattern (matched case-sensitively, on word boundaries), its
expansion, and whether it can end a sentence ("etc.", "и т.д."): if such an
abbreviation stands at the end of the text or before a capitalised word, its
period was also the sentence's, so a period is kept after the expansion and
the sentence splitter still sees the boundary. Titles ("Dr.", "г.") never end
a sentence. Context decides a few ambiguous ones: "St." before a capitalised
name is "Saint", else "Street"; "д." before a number is "дом"; "г." before a
capitalised word is "город" (after a year it was already read as "год").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from engines.text_normalize.sentence_end import keep_period


@dataclass(frozen=True)
class Abbreviation:
    pattern: re.Pattern[str]
    expansion: str
    can_end_sentence: bool = False


def _abbr(pattern: str, expansion: str, can_end_sentence: bool = False, *, either_case: bool = False) -> Abbreviation:
    """``either_case``: the first letter may also be a capital (the abbreviation starts a sentence)."""
    if either_case:
        letter = re.search(r"(?<!\\)[a-zа-яё]", pattern)
        assert letter is not None
        ch = letter.group(0)
        pattern = pattern[: letter.start()] + f"[{ch}{ch.upper()}]" + pattern[letter.end():]
    return Abbreviation(re.compile(pattern), expansion, can_end_sentence)


_UPPER_NEXT = r"(?=\s*[A-ZА-ЯЁ])"
_DIGIT_NEXT = r"(?=\s*\d)"

ENGLISH: tuple[Abbreviation, ...] = (
    _abbr(r"\bDr\.", "Doctor"),
    _abbr(r"\bMr\.", "Mister"),
    _abbr(r"\bMrs\.", "Missus"),
    _abbr(r"\bMs\.", "Miz"),
    _abbr(r"\bProf\.", "Professor"),
    _abbr(r"(?<=[a-z] )St\.", "Street", True),
    _abbr(r"\bSt\." + _UPPER_NEXT, "Saint"),
    _abbr(r"\bSt\.", "Street", True),
    _abbr(r"\bAve\.", "Avenue", True),
    _abbr(r"\bRd\.", "Road", True),
    _abbr(r"\bBlvd\.", "Boulevard", True),
    _abbr(r"\bMt\.", "Mount"),
    _abbr(r"\bApt\.", "Apartment"),
    _abbr(r"\bSte\.", "Suite"),
    _abbr(r"\bJr\.", "Junior", True),
    _abbr(r"\bSr\.", "Senior", True),
    _abbr(r"\b[Nn]o\." + _DIGIT_NEXT, "number"),
    _abbr(r"\bvs\.?(?=\s)", "versus"),
    _abbr(r"\betc\.", "et cetera", True),
    _abbr(r"\be\.\s?g\.", "for example", either_case=True),
    _abbr(r"\bi\.\s?e\.", "that is", either_case=True),
    _abbr(r"\bapprox\.", "approximately", either_case=True),
    _abbr(r"\bInc\.", "Incorporated", True),
    _abbr(r"\bLtd\.", "Limited", True),
    _abbr(r"\bCo\.", "Company", True),
    _abbr(r"\bCorp\.", "Corporation", True),
    _abbr(r"\bDept\.", "Department", True),
    _abbr(r"\btel\.", "telephone", either_case=True),
    _abbr(r"\bext\.", "extension"),
    _abbr(r"\bU\.S\.A?\.?", "U S"),
    _abbr(r"\bPh\.D\.", "P H D", True),
    _abbr(r"\ba\.m\.", "a m", True),
    _abbr(r"\bp\.m\.", "p m", True),
    _abbr(r"\bJan\.(?=\s)", "January"),
    _abbr(r"\bFeb\.(?=\s)", "February"),
    _abbr(r"\bAug\.(?=\s)", "August"),
    _abbr(r"\bSept?\.(?=\s)", "September"),
    _abbr(r"\bOct\.(?=\s)", "October"),
    _abbr(r"\bNov\.(?=\s)", "November"),
    _abbr(r"\bDec\.(?=\s)", "December"),
)

RUSSIAN: tuple[Abbreviation, ...] = (
    _abbr(r"\bDr\.", "доктор"),
    _abbr(r"\bMr\.", "мистер"),
    _abbr(r"\bMrs\.", "миссис"),
    _abbr(r"\bMs\.", "мисс"),
    _abbr(r"\bи\s?т\.\s?д\.", "и так далее", True),
    _abbr(r"\bи\s?т\.\s?п\.", "и тому подобное", True),
    _abbr(r"\bи\s?др\.", "и другие", True),
    _abbr(r"\bи\s?пр\.", "и прочее", True),
    _abbr(r"\bв\s?т\.\s?ч\.", "в том числе", either_case=True),
    _abbr(r"\bт\.\s?е\.", "то есть", either_case=True),
    _abbr(r"\bт\.\s?к\.", "так как", either_case=True),
    _abbr(r"\bт\.\s?н\.", "так называемый", either_case=True),
    _abbr(r"\bнапр\.", "например", either_case=True),
    _abbr(r"\bсм\.(?=\s)", "смотри", either_case=True),
    _abbr(r"\bул\.", "улица", either_case=True),
    _abbr(r"\bпросп\.|\bпр-т\b", "проспект"),
    _abbr(r"\bпер\.", "переулок"),
    _abbr(r"\bпл\.", "площадь"),
    _abbr(r"\bнаб\.", "набережная"),
    _abbr(r"\bобл\.", "область", True),
    _abbr(r"\bр-н\b", "район"),
    _abbr(r"\bг\." + _UPPER_NEXT, "город"),
    _abbr(r"\bд\." + _DIGIT_NEXT, "дом"),
    _abbr(r"\bкв\." + _DIGIT_NEXT, "квартира"),
    _abbr(r"\bкорп\." + _DIGIT_NEXT, "корпус"),
    _abbr(r"\bстр\." + _DIGIT_NEXT, "строение"),
    _abbr(r"\bоф\." + _DIGIT_NEXT, "офис"),
    _abbr(r"\bтел\.", "телефон", either_case=True),
    _abbr(r"\bдоб\.", "добавочный"),
    _abbr(r"\bим\." + _UPPER_NEXT, "имени"),
    _abbr(r"\bг-н\b", "господин"),
    _abbr(r"\bг-жа\b", "госпожа"),
    _abbr(r"\bд-р\b", "доктор"),
    _abbr(r"\bдр\." + _UPPER_NEXT, "доктор"),
    _abbr(r"\bпроф\.", "профессор"),
    _abbr(r"\bприм\.", "примечание", either_case=True),
    _abbr(r"\bок\." + _DIGIT_NEXT, "около"),
    _abbr(r"\bвкл\.", "включительно", True),
    _abbr(r"\bчел\.", "человек", True),
    _abbr(r"\bруб\.", "рублей", True),
    _abbr(r"\bкоп\.", "копеек", True),
    _abbr(r"\bтыс\.", "тысяч", True),
    _abbr(r"\bмлн\b\.?", "миллионов", True),
    _abbr(r"\bмлрд\b\.?", "миллиардов", True),
    _abbr(r"\bмин\.", "минут", True),
    _abbr(r"\bсек\.", "секунд", True),
)

def expand_abbreviations(text: str, table: tuple[Abbreviation, ...]) -> str:
    for abbreviation in table:
        text = abbreviation.pattern.sub(_replacer(abbreviation), text)
    return text


def _replacer(abbreviation: Abbreviation) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        expansion = abbreviation.expansion
        if match.group(0)[0].isupper() and expansion[0].islower():
            expansion = expansion[0].upper() + expansion[1:]
        return keep_period(match, expansion) if abbreviation.can_end_sentence else expansion

    return replace
