"""What the call is about, read out of STT text."""

from __future__ import annotations

import pytest

from daemon.dialogue.spoken_fields.reasons import extract_reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, this is John Peters, I'm calling about the invoice", "the invoice"),
        ("I'm calling because my boiler broke.", "my boiler broke"),
        ("It's about the invoice from May.", "the invoice from May"),
        ("Regarding the contract renewal", "the contract renewal"),
        ("I’m calling regarding the contract renewal", "the contract renewal"),
        ("I'm calling to ask about the price", "the price"),
        ("I'm calling to book a table", "book a table"),
        ("I'm calling about my boiler, it's broken", "my boiler, it's broken"),
        ("I'm calling about the invoice, my number is 555 0134", "the invoice"),
        ("Hi, I'm calling about the invoice, thank you", "the invoice"),
        ("Hello, John Peters speaking, it's about the delivery", "the delivery"),
        ("Hi, this is John Peters, I need a quote for a new roof.", "I need a quote for a new roof"),
        ("This is John and I need a quote", "I need a quote"),
        ("This is John from Acme and we need a quote", "we need a quote"),
        ("I'm calling about invoice 45210", "invoice 45210"),
        ("The car, please call me back", "The car"),
        ("I wanted to talk about the contract", "the contract"),
        ("The invoice.", "The invoice"),
        ("It's urgent", "It's urgent"),
        ("I'm calling about...", None),
        ("um", None),
        ("yes", None),
        ("hello?", None),
        ("no thanks, bye", None),
        ("five five five oh one three four", None),
        ("My number is 555, 0134", None),
        ("This is John Peters.", None),
    ],
)
def test_extract_reason_english(text: str, expected: str | None) -> None:
    assert extract_reason(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Я звоню по поводу счёта", "по поводу счёта"),
        ("Здравствуйте, меня зовут Иван, звоню насчёт доставки", "насчёт доставки"),
        ("Это Иван Петров, насчет оплаты", "насчет оплаты"),
        ("По поводу договора аренды.", "По поводу договора аренды"),
        ("Я звоню, чтобы узнать цены", "узнать цены"),
        ("у меня вопрос по оплате", "по оплате"),
        ("Хочу записаться на приём", "Хочу записаться на приём"),
        ("Насчёт машины, перезвоните мне", "Насчёт машины"),
        ("Эээ, ммм", None),
        ("Добрый день, это Мария, хочу записаться на приём, мой номер 8 916 123 45 67", "хочу записаться на приём"),
        ("Нет, спасибо", None),
        ("Да", None),
        ("Меня зовут Иван.", None),
        ("Я звоню по поводу...", None),
        ("Звоню по поводу, э-э, счёта.", "по поводу счёта"),
        ("Я из-за протечки в ванной", "из-за протечки в ванной"),
        ("восемь девятьсот шестнадцать сто двадцать три", None),
    ],
)
def test_extract_reason_russian(text: str, expected: str | None) -> None:
    assert extract_reason(text, "ru") == expected


def test_extract_reason_can_require_a_lead_in() -> None:
    assert extract_reason("The delivery was late", "en", require_lead_in=True) is None
    assert extract_reason("The delivery was late", "en") == "The delivery was late"
    assert extract_reason("John, calling about the delivery", "en", require_lead_in=True) == "the delivery"
    assert extract_reason("Иван, насчёт доставки", "ru", require_lead_in=True) == "насчёт доставки"


def test_extract_reason_keeps_a_long_reason_short() -> None:
    text = "I'm calling about " + " ".join(f"word{i}" for i in range(50))
    reason = extract_reason(text, "en")
    assert reason is not None
    assert reason.split() == [f"word{i}" for i in range(30)]
