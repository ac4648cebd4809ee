"""Yes or no in STT text."""

from __future__ import annotations

import pytest

from daemon.dialogue.spoken_fields.yes_no import detect_yes_no


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("Yeah, that's right.", True),
        ("Yep", True),
        ("That's correct.", True),
        ("Sure", True),
        ("Sure, no problem", True),
        ("Uh-huh", True),
        ("Of course", True),
        ("Why not", True),
        ("no", False),
        ("Nope", False),
        ("Wrong.", False),
        ("No, that's not right", False),
        ("That's not right", False),
        ("Not correct", False),
        ("It's incorrect", False),
        ("Yes, but the number is wrong", False),
        ("yes... no, no", False),
        ("I don't know", None),
        ("I don't remember", None),
        ("Not sure", None),
        ("hmm", None),
        ("what?", None),
        ("", None),
    ],
)
def test_detect_yes_no_english(text: str, expected: bool | None) -> None:
    assert detect_yes_no(text, "en") is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Да", True),
        ("Да, всё верно", True),
        ("Верно", True),
        ("Правильно.", True),
        ("Конечно", True),
        ("Ага", True),
        ("Да-да", True),
        ("Почему бы и нет", True),
        ("Без проблем", True),
        ("Нет", False),
        ("Нет, неправильно", False),
        ("Неверно", False),
        ("Неправильно", False),
        ("Да нет, не так", False),
        ("Не совсем", False),
        ("Да, но номер неправильный", False),
        ("Не знаю", None),
        ("Не помню", None),
        ("Что?", None),
        ("ну", None),
    ],
)
def test_detect_yes_no_russian(text: str, expected: bool | None) -> None:
    assert detect_yes_no(text, "ru") is expected
