"""The caller's name in STT text."""

from __future__ import annotations

import pytest

from daemon.dialogue.spoken_fields.names import extract_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, this is John Peters, I'm calling about the invoice", "John Peters"),
        ("My name is John Peters.", "John Peters"),
        ("my name is john o'brien and I'm calling about the boiler", "John O'Brien"),
        ("my name's mary", "Mary"),
        ("It's Mary.", "Mary"),
        ("it's mary", "Mary"),
        ("I am John McDonald", "John McDonald"),
        ("I'm Anna from Acme", "Anna"),
        ("Hello, John Peters speaking.", "John Peters"),
        ("This is Jean-Luc Picard calling from the Enterprise", "Jean-Luc Picard"),
        ("this is john peters smith jones", "John Peters Smith"),
        ("I'm calling about the invoice", None),
        ("I'm interested in your services", None),
        ("It's about the invoice", None),
        ("It's urgent", None),
        ("i'm stuck with my order", None),
        ("This is five five five oh one three four", None),
        ("Who's speaking?", None),
        ("yes", None),
        ("The invoice", None),
        ("", None),
    ],
)
def test_extract_name_english(text: str, expected: str | None) -> None:
    assert extract_name(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Меня зовут Иван Петров, звоню по поводу счёта", "Иван Петров"),
        ("меня зовут иван петров и я звоню насчёт доставки", "Иван Петров"),
        ("Это Иван.", "Иван"),
        ("Здравствуйте, я Мария.", "Мария"),
        ("я иван", "Иван"),
        ("Меня зовут Артём", "Артём"),
        ("Здравствуйте, вас беспокоит Мария из банка", "Мария"),
        ("Беспокоит Иван Петров", "Иван Петров"),
        ("Иван Петров беспокоит", "Иван Петров"),
        ("Это Иван Петров компания Ромашка", "Иван Петров"),
        ("Я звоню по поводу счёта", None),
        ("я хочу записаться", None),
        ("Это срочно", None),
        ("это сломалось", None),
        ("нет, это неправильно", None),
        ("Это восемь девятьсот шестнадцать", None),
        ("да", None),
    ],
)
def test_extract_name_russian(text: str, expected: str | None) -> None:
    assert extract_name(text, "ru") == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("John Peters.", "en", "John Peters"),
        ("john peters", "en", "John Peters"),
        ("JOHN PETERS", "en", "John Peters"),
        ("Um, John.", "en", "John"),
        ("Ummm, John.", "en", "John"),
        ("Hmmm", "en", None),
        ("Эээ", "ru", None),
        ("Эээ, Иван", "ru", "Иван"),
        ("Yes, John Peters, from Acme.", "en", "John Peters"),
        ("John, calling about the invoice", "en", "John"),
        ("Иван Петров", "ru", "Иван Петров"),
        ("Да, Иван.", "ru", "Иван"),
        ("Иван, звоню насчёт счёта", "ru", "Иван"),
        ("Peter wants to know about the invoice", "en", None),
        ("The invoice", "en", None),
        ("I don't know", "en", None),
        ("Why?", "en", None),
        ("yes", "en", None),
        ("um", "en", None),
        ("five five five", "en", None),
        ("555 0134", "en", None),
        ("да", "ru", None),
        ("нет", "ru", None),
        ("восемь девять один шесть", "ru", None),
    ],
)
def test_extract_name_when_expecting_a_name(text: str, language: str, expected: str | None) -> None:
    assert extract_name(text, language, expecting_name=True) == expected


def test_a_bare_name_counts_only_when_expecting_one() -> None:
    assert extract_name("John Peters.", "en") is None
    assert extract_name("John Peters.", "en", expecting_name=True) == "John Peters"


def test_weak_lead_in_needs_a_capital_in_cased_text() -> None:
    # Cased output capitalises names; "it's broken" in cased text is not a name...
    assert extract_name("Yes, it's broken", "en") is None
    assert extract_name("Yes, it's Sterling", "en") == "Sterling"
    # ...while caseless output falls back to word lists and suffixes.
    assert extract_name("yes it's sterling", "en") is None
    assert extract_name("my name is sterling", "en") == "Sterling"


# -- what whisper-base really writes ----------------------------------------------------------
# Whisper capitalises or not, puts commas and full stops where the caller paused, writes the
# hesitation ("э-э", "uh") and sometimes the name twice; Latin names come back in Cyrillic.


@pytest.mark.parametrize(
    ("text", "language", "anywhere", "when_asked"),
    [
        ("Меня зовут Иван Петров.", "ru", "Иван Петров", "Иван Петров"),
        ("меня зовут иван петров", "ru", "Иван Петров", "Иван Петров"),
        ("это Ольга", "ru", "Ольга", "Ольга"),
        ("Это, э-э, Сергей.", "ru", "Сергей", "Сергей"),
        ("Это, Ольга.", "ru", "Ольга", "Ольга"),
        ("Здравствуйте, э-э, меня зовут, э-э, Игорь.", "ru", "Игорь", "Игорь"),
        ("Меня Иван зовут.", "ru", "Иван", "Иван"),
        ("Иван меня зовут.", "ru", "Иван", "Иван"),
        ("Это Иван, Иван Петров.", "ru", "Иван Петров", "Иван Петров"),
        ("Сергей, Сергей Иванов.", "ru", None, "Сергей Иванов"),
        ("Ольга. Ольга Петрова.", "ru", None, "Ольга Петрова"),
        ("Меня зовут Джон Смит.", "ru", "Джон Смит", "Джон Смит"),
        ("Алло, это Дмитрий Сергеевич, из ЖЭКа.", "ru", "Дмитрий Сергеевич", "Дмитрий Сергеевич"),
        ("Здравствуйте. Меня зовут Анна. Я по поводу доставки.", "ru", "Анна", "Анна"),
        ("Иван Петров.", "ru", None, "Иван Петров"),
        ("Наталья Сергеевна.", "ru", None, "Наталья Сергеевна"),
        ("my name is John Smith", "en", "John Smith", "John Smith"),
        ("My name is John... John Smith.", "en", "John Smith", "John Smith"),
        ("Hi, this is John. Smith.", "en", "John Smith", "John Smith"),
        ("John. Smith.", "en", None, "John Smith"),
        ("It's, uh, John.", "en", "John", "John"),
        ("John Smith here.", "en", "John Smith", "John Smith"),
        ("This is Anna. Please call me back.", "en", "Anna", "Anna"),
        ("This is Anna. Peter asked me to call.", "en", "Anna", "Anna"),
        ("I'm here", "en", None, None),
        ("Это, ну, по поводу счёта.", "ru", None, None),
        ("Э-э-э.", "ru", None, None),
    ],
)
def test_whisper_style_names(text: str, language: str, anywhere: str | None, when_asked: str | None) -> None:
    assert extract_name(text, language) == anywhere
    assert extract_name(text, language, expecting_name=True) == when_asked
