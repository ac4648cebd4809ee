"""What the spoken-field parsers share: the languages they read."""

from __future__ import annotations

import pytest

from daemon.dialogue.spoken_fields.numbers import extract_phone_number
from daemon.dialogue.spoken_fields.words import check_language
from daemon.dialogue.spoken_fields.yes_no import detect_yes_no


@pytest.mark.parametrize(("given_language", "expected"), [("en", "en"), ("RU", "ru"), ("en-US", "en"), ("ru_RU", "ru")])
def test_check_language_accepts_en_and_ru(given_language: str, expected: str) -> None:
    assert check_language(given_language) == expected


@pytest.mark.parametrize("language", ["de", "", "english"])
def test_unknown_languages_are_refused(language: str) -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        check_language(language)
    with pytest.raises(ValueError, match="unsupported language"):
        extract_phone_number("555 0134", language)
    with pytest.raises(ValueError, match="unsupported language"):
        detect_yes_no("yes", language)
