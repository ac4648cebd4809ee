"""What the caller asks of the secretary: a repeat, the number they call from, no need, no message."""

from __future__ import annotations

import pytest

from daemon.dialogue.spoken_fields.requests import (
    asks_to_repeat,
    checks_the_line,
    declines_message,
    declines_slot,
    means_this_number,
    says_nothing_to_correct,
)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Что?", "ru", True),
        ("Что-что?", "ru", True),
        ("А? Что?", "ru", True),
        ("Повторите, пожалуйста.", "ru", True),
        ("Извините, не расслышал.", "ru", True),
        ("Ещё раз, пожалуйста", "ru", True),
        ("Что вы сказали?", "ru", True),
        ("What?", "en", True),
        ("Sorry, what?", "en", True),
        ("Pardon?", "en", True),
        ("Could you say that again?", "en", True),
        ("Sorry, I didn't catch that.", "en", True),
        ("Что исправить, номер", "ru", False),
        ("Что-то с доставкой", "ru", False),
        ("Иван", "ru", False),
        ("Повторите номер 8 916 123 45 67", "ru", False),  # a number is an answer
        ("what about the invoice from March, it was charged twice and nobody called", "en", False),
        ("Sorry", "en", False),
        ("", "en", False),
    ],
)
def test_asks_to_repeat(text: str, language: str, expected: bool) -> None:
    assert asks_to_repeat(text, language) is expected


@pytest.mark.parametrize(
    ("text", "language", "asked", "expected"),
    [
        ("Перезвоните на этот номер.", "ru", False, True),
        ("перезвоните мне на этот же номер", "ru", False, True),
        ("На этот же номер.", "ru", True, True),
        ("На этот же номер.", "ru", False, False),  # not asked, and no word about calling back
        ("Да, на этот.", "ru", True, True),
        ("Можно на тот же.", "ru", True, True),
        ("С которого звоню.", "ru", True, True),
        ("Call me back on this number.", "en", False, True),
        ("The number I'm calling from.", "en", True, True),
        ("Same number.", "en", True, True),
        ("This number is wrong", "en", False, False),
        ("На этот вопрос", "ru", False, False),
        ("8 916 123 45 67", "ru", True, False),
    ],
)
def test_means_this_number(text: str, language: str, asked: bool, expected: bool) -> None:
    assert means_this_number(text, language, asked_for_number=asked) is expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Не надо", "ru", True),
        ("Не нужно, я сам перезвоню", "ru", True),
        ("Перезванивать не надо.", "ru", True),
        ("No need.", "en", True),
        ("I'd rather not say", "en", True),
        ("Надо срочно", "ru", False),
        ("Нет", "ru", False),
        ("five five five", "en", False),
    ],
)
def test_declines_slot(text: str, language: str, expected: bool) -> None:
    assert declines_slot(text, language) is expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Не надо", "ru", True),
        ("Нет, спасибо, до свидания", "ru", True),
        ("нет", "ru", True),
        ("Ничего", "ru", True),
        ("No thanks, bye", "en", True),
        ("Нет, я хочу оставить сообщение", "ru", False),  # a "no" with more to say is not a refusal
        ("Хочу записаться на приём", "ru", False),
    ],
)
def test_declines_message(text: str, language: str, expected: bool) -> None:
    assert declines_message(text, language) is expected


def test_says_nothing_to_correct() -> None:
    assert says_nothing_to_correct("Ничего, всё правильно")
    assert says_nothing_to_correct("nothing")
    assert not says_nothing_to_correct("Nothing I can put into words")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        asks_to_repeat("what?", "de")


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Алло?", "ru", True),
        ("Алло, алло, вы меня слышите?", "ru", True),
        ("Вы меня слышите?", "ru", True),
        ("Hello? Are you still there?", "en", True),
        ("Can you hear me?", "en", True),
        ("Алло, это Иван", "ru", False),
        ("Hello, this is John", "en", False),
        ("Вы", "ru", False),
    ],
)
def test_checks_the_line(text: str, language: str, expected: bool) -> None:
    assert checks_the_line(text, language) is expected
