"""Corrections of one part of a read-back value: "нет, не 45, а 46", "не Иван, а Илья", "no, it's 5 5 6"."""

from __future__ import annotations

import pytest

from daemon.dialogue.spoken_fields.corrections import (
    Replacement,
    corrected_name,
    corrected_number,
    corrected_text,
    replacement,
)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("нет, не 45, а 46", "ru", Replacement("45", "46")),
        ("Нет, не сорок пять, а сорок шесть.", "ru", Replacement("сорок пять", "сорок шесть")),
        ("не Иван, а Илья", "ru", Replacement("Иван", "Илья")),
        ("Илья, а не Иван.", "ru", Replacement("Иван", "Илья")),
        ("No, not John, Jon.", "en", Replacement("John", "Jon")),
        ("no, it's Jon, not John", "en", Replacement("John", "Jon")),
        ("not 45 but 46", "en", Replacement("45", "46")),
        ("No, that's not right", "en", None),
        ("Нет, неправильно.", "ru", None),
        ("нет, не так", "ru", None),
        ("не 45, а 45", "ru", None),
    ],
)
def test_replacement(text: str, language: str, expected: Replacement | None) -> None:
    assert replacement(text, language) == expected


@pytest.mark.parametrize(
    ("number", "text", "language", "expected"),
    [
        ("89161234567", "нет, не 45, а 46", "ru", "89161234667"),
        ("89161234567", "Нет, не сорок пять, а сорок шесть.", "ru", "89161234667"),
        ("+79161234567", "не 916, а 926", "ru", "+79261234567"),
        ("89161234567", "нет, в конце шестьдесят восемь", "ru", "89161234568"),  # the one group it is like
        ("5550134", "no, it's 5 5 6", "en", "5560134"),
        ("5550134", "Oh, no, it's five five six.", "en", "5560134"),
        ("89161234567", "не 12, а 13", "ru", "89161334567"),  # no group 12: the one place 12 occurs
        ("89161234567", "нет, не 99, а 98", "ru", None),  # nowhere in the number
        ("89161234567", "нет, 8 916 123 45 68", "ru", None),  # a whole number is not a part
        ("89161234567", "нет", "ru", None),
        ("5551515", "no, it's 16", "en", None),  # no group of two digits in 555 1515
        ("89161234545", "нет, сорок шесть", "ru", None),  # two groups fit as well: ask instead
        ("89161234567", "не Иван, а Илья", "ru", None),
    ],
)
def test_corrected_number(number: str, text: str, language: str, expected: str | None) -> None:
    assert corrected_number(number, text, language) == expected


@pytest.mark.parametrize(
    ("name", "text", "language", "expected"),
    [
        ("Иван Петров", "не Иван, а Илья", "ru", "Илья Петров"),
        ("Иван Петров", "Нет, не Петров, а Петренко.", "ru", "Иван Петренко"),
        ("Иван", "нет, не Иван, а Иван Петрович", "ru", "Иван Петрович"),
        ("John Peters", "No, not John, Jon.", "en", "Jon Peters"),
        ("John Peters", "no, not Mary, Ann", "en", None),
        ("Иван Петров", "нет, не 45, а 46", "ru", None),
    ],
)
def test_corrected_name(name: str, text: str, language: str, expected: str | None) -> None:
    assert corrected_name(name, text, language) == expected


def test_corrected_text() -> None:
    assert corrected_text("по поводу счёта", "нет, не счёта, а договора", "ru") == "по поводу договора"
    assert corrected_text("the invoice", "not the invoice, the quote", "en") == "the quote"
    assert corrected_text("по поводу счёта", "не 45, а 46", "ru") is None
