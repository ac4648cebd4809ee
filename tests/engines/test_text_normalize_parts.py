"""The building blocks of normalisation: Russian numbers and agreement, phone parsing, Latin → Cyrillic, clean-up."""

from __future__ import annotations

import pytest

from engines.text_normalize import russian_nouns as nouns
from engines.text_normalize.english_numbers import decimal as en_decimal
from engines.text_normalize.english_numbers import year as en_year
from engines.text_normalize.latin_to_cyrillic import spell, transliterate_word
from engines.text_normalize.normalizer import clean_up, normalize
from engines.text_normalize.phone_numbers import parse_phone
from engines.text_normalize.russian import gender_for, roman_value
from engines.text_normalize.russian_numbers import cardinal, decimal, ordinal, plural


@pytest.mark.parametrize(
    ("number", "expected"),
    [(0, "ноль"), (1, "один"), (11, "одиннадцать"), (21, "двадцать один"), (100, "сто"), (1000, "тысяча"),
     (1001, "тысяча один"), (2000, "две тысячи"), (5000, "пять тысяч"), (21000, "двадцать одна тысяча"),
     (1_000_000, "миллион"), (2_500_000, "два миллиона пятьсот тысяч"), (-7, "минус семь")],
)
def test_russian_cardinals_nominative(number: int, expected: str) -> None:
    assert cardinal(number) == expected


def test_russian_cardinal_case_and_gender() -> None:
    assert cardinal(1, gender="f") == "одна"
    assert cardinal(2, gender="f") == "две"
    assert cardinal(1, gender="n") == "одно"
    assert cardinal(5, "g") == "пяти"
    assert cardinal(1500, "g") == "тысячи пятисот"
    assert cardinal(2, "a", "f") == "две"  # inanimate accusative: "на две недели"
    assert cardinal(1, "a", "f") == "одну"
    assert cardinal(40, "i") == "сорока"


def test_russian_ordinals_and_decimals() -> None:
    assert ordinal(25, gender="n") == "двадцать пятое"
    assert ordinal(2026, "g") == "две тысячи двадцать шестого"
    assert ordinal(3, "g", "f") == "третьей"
    assert ordinal(90, "p", plural=True) == "девяностых"
    assert decimal("3", "14") == "три целых четырнадцать сотых"
    assert decimal("1", "1") == "одна целая одна десятая"
    assert decimal("2", "5", "g") == "двух целых пяти десятых"
    assert decimal("0", "125") == "ноль целых сто двадцать пять тысячных"


@pytest.mark.parametrize(
    ("number", "form"),
    [(1, "рубль"), (2, "рубля"), (4, "рубля"), (5, "рублей"), (11, "рублей"), (12, "рублей"), (14, "рублей"),
     (20, "рублей"), (21, "рубль"), (22, "рубля"), (25, "рублей"), (101, "рубль"), (111, "рублей"), (1000, "рублей")],
)
def test_ruble_agreement(number: int, form: str) -> None:
    assert plural(number, ("рубль", "рубля", "рублей")) == form
    assert nouns.agree(number, nouns.RUBLE) == form


def test_noun_agreement_in_other_cases_and_fractions() -> None:
    assert nouns.agree(5, nouns.RUBLE, "d") == "рублям"
    assert nouns.agree(1, nouns.RUBLE, "d") == "рублю"
    assert nouns.agree(21, nouns.MINUTE, "a") == "минуту"
    assert nouns.agree(3, nouns.MINUTE) == "минуты"
    assert nouns.agree(5, nouns.KOPECK) == "копеек"
    assert nouns.agree(None, nouns.PERCENT) == "процента"  # 2,5 процента


def test_gender_guess_from_the_next_word() -> None:
    assert gender_for(1, "минута", "n") == "f"
    assert gender_for(1, "окно", "n") == "n"
    assert gender_for(1, "день", "n") == "m"
    assert gender_for(1, "ночь", "n") == "f"
    assert gender_for(1, "мужчина", "n") == "m"
    assert gender_for(2, "недели", "n") == "f"
    assert gender_for(2, "дня", "n") == "m"
    assert gender_for(1, "недели", "g") == "f"
    assert gender_for(1, "по", "n") == "m"  # a preposition says nothing


def test_roman_numerals() -> None:
    assert roman_value("XXI") == 21
    assert roman_value("XIV") == 14
    assert roman_value("IIII") is None
    assert normalize("Пётр I основал город.", "ru") == "Пётр первый основал город."
    assert normalize("В XIX веке.", "ru") == "В девятнадцатом веке."


@pytest.mark.parametrize(
    ("text", "plus", "groups"),
    [
        ("+7 912 345-67-89", True, ("7", "912", "345", "67", "89")),
        ("+7 (495) 123-45-67", True, ("7", "495", "123", "45", "67")),
        ("8 800 555-35-35", False, ("8", "800", "555", "35", "35")),
        ("89123456789", False, ("8", "912", "345", "67", "89")),
        ("+79123456789", True, ("7", "912", "345", "67", "89")),
        ("+1 (555) 123-4567", True, ("1", "555", "123", "4567")),
        ("(555) 123-4567", False, ("555", "123", "4567")),
        ("1-800-555-0199", False, ("1", "800", "555", "0199")),
        ("123-45-67", False, ("123", "45", "67")),
    ],
)
def test_phone_numbers_are_found_with_their_groups(text: str, plus: bool, groups: tuple[str, ...]) -> None:
    phone = parse_phone(text)
    assert phone is not None and phone.plus == plus and phone.groups == groups


@pytest.mark.parametrize("text", ["2020-2025", "2026-12-25", "10-15", "1 000 000", "12345", "(555 123-4567"])
def test_things_that_are_not_phone_numbers(text: str) -> None:
    assert parse_phone(text) is None


@pytest.mark.parametrize(
    ("word", "spoken"),
    [("Telegram", "телеграм"), ("WhatsApp", "ватсап"), ("iPhone", "айфон"), ("Google", "гугл"), ("Wi-Fi", "вай-фай"),
     ("PDF", "пи-ди-эф"), ("CRM", "си-ар-эм"), ("DHL", "ди-эйч-эл"), ("NASA", "наса"),
     ("Smith", "смит"), ("John", "джон"), ("Docker", "докер"), ("Figma", "фигма"), ("Street", "стрит"),
     ("Cloud", "клауд"), ("Mike", "майк"), ("page", "пейдж"), ("Python", "пайтон"), ("Slack", "слэк")],
)
def test_latin_words_read_in_russian(word: str, spoken: str) -> None:
    assert transliterate_word(word) == spoken


def test_spelling_and_english_helpers() -> None:
    assert spell("usb") == "ю-эс-би"
    assert en_decimal("0", "50") == "zero point five zero"
    assert en_year(2026) == "twenty twenty-six"
    assert en_year(2005) == "two thousand and five"
    assert en_year(1905) == "nineteen oh-five"


def test_clean_up_drops_markdown_and_emoji_and_keeps_lines() -> None:
    text = "# Итоги\n- **Первое**: `код`\n* второе 😀\n> цитата\u00a0тут"
    assert clean_up(text) == "Итоги\nПервое: код\nвторое \nцитата тут"
    assert normalize("Hi!\n\n\nBye  now .", "en") == "Hi!\nBye now."
