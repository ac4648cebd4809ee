"""Russian counted nouns (currencies, units, "тысяча"/"миллион") and their agreement with numbers.

A ``CountedNoun`` knows its gender and its singular and plural forms in the
six cases. ``agree`` picks the form a number takes, by the usual rule: in the
nominative/accusative 1 → singular ("один рубль", "одну минуту"), 2–4 →
genitive singular ("два рубля"), 5–20 → genitive plural ("пять рублей"),
decided by the last two digits; in the other cases 1 → singular and anything
else → plural of that case ("к пяти рублям"); a fraction takes the genitive
singular ("две целых пять десятых процента").
"""

from __future__ import annotations

from dataclasses import dataclass

CASE_ORDER = "ngdaip"  # nominative, genitive, dative, accusative, instrumental, prepositional


@dataclass(frozen=True)
class CountedNoun:
    gender: str
    singular: tuple[str, str, str, str, str, str]
    plural: tuple[str, str, str, str, str, str]

    def form(self, case: str, many: bool) -> str:
        return (self.plural if many else self.singular)[CASE_ORDER.index(case)]


def agree(number: int | None, noun: CountedNoun, case: str = "n") -> str:
    """The form of ``noun`` after ``number`` in ``case``; ``None`` means a fraction."""
    if number is None:
        return noun.form("g", many=False)
    last_two = abs(number) % 100
    last = last_two % 10
    one = last == 1 and last_two != 11
    if case in ("n", "a"):
        if one:
            return noun.form(case, many=False)
        if 2 <= last <= 4 and not 12 <= last_two <= 14:
            return noun.form("g", many=False)
        return noun.form("g", many=True)
    return noun.form(case, many=not one)


def _hard_masc(stem: str, gen_plural: str | None = None) -> CountedNoun:
    return CountedNoun(
        "m",
        (stem, stem + "а", stem + "у", stem, stem + "ом", stem + "е"),
        (stem + "ы", gen_plural or stem + "ов", stem + "ам", stem + "ы", stem + "ами", stem + "ах"),
    )


def _soft_masc(stem: str, instrumental: str = "ём") -> CountedNoun:
    return CountedNoun(
        "m",
        (stem + "ь", stem + "я", stem + "ю", stem + "ь", stem + instrumental, stem + "е"),
        (stem + "и", stem + "ей", stem + "ям", stem + "и", stem + "ями", stem + "ях"),
    )


def _fem_a(stem: str, gen_plural: str, soft_after: bool = False) -> CountedNoun:
    y = "и" if soft_after else "ы"
    instrumental = "ей" if stem.endswith(("ч", "щ", "ш", "ж", "ц")) else "ой"
    return CountedNoun(
        "f",
        (stem + "а", stem + y, stem + "е", stem + "у", stem + instrumental, stem + "е"),
        (stem + y, gen_plural, stem + "ам", stem + y, stem + "ами", stem + "ах"),
    )


def _indeclinable(word: str, gender: str) -> CountedNoun:
    return CountedNoun(gender, (word,) * 6, (word,) * 6)


RUBLE = _soft_masc("рубл")
KOPECK = _fem_a("копейк", "копеек", soft_after=True)
DOLLAR = _hard_masc("доллар")
CENT = _hard_masc("цент")
EURO = _indeclinable("евро", "m")
POUND = _hard_masc("фунт")
PENNY = _indeclinable("пенс", "m")
YUAN = _soft_masc("юан", instrumental="ем")
TENGE = _indeclinable("тенге", "m")
HRYVNIA = CountedNoun(
    "f",
    ("гривна", "гривны", "гривне", "гривну", "гривной", "гривне"),
    ("гривны", "гривен", "гривнам", "гривны", "гривнами", "гривнах"),
)
PERCENT = _hard_masc("процент")
THOUSAND = CountedNoun(
    "f",
    ("тысяча", "тысячи", "тысяче", "тысячу", "тысячей", "тысяче"),
    ("тысячи", "тысяч", "тысячам", "тысячи", "тысячами", "тысячах"),
)
MILLION = _hard_masc("миллион")
BILLION = _hard_masc("миллиард")
KILOMETRE = _hard_masc("километр")
METRE = _hard_masc("метр")
CENTIMETRE = _hard_masc("сантиметр")
MILLIMETRE = _hard_masc("миллиметр")
KILOGRAM = _hard_masc("килограмм")
GRAM = _hard_masc("грамм")
TONNE = _fem_a("тонн", "тонн")
LITRE = _hard_masc("литр")
MILLILITRE = _hard_masc("миллилитр")
HOUR = _hard_masc("час")
MINUTE = _fem_a("минут", "минут")
SECOND = _fem_a("секунд", "секунд")
DEGREE = _hard_masc("градус")
PIECE = _fem_a("штук", "штук", soft_after=True)
KMH = CountedNoun(
    "m",
    tuple(f + " в час" for f in KILOMETRE.singular),  # type: ignore[arg-type]
    tuple(f + " в час" for f in KILOMETRE.plural),  # type: ignore[arg-type]
)
