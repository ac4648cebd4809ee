"""The owner's summary made from the message slots alone (no LLM)."""

from __future__ import annotations

import pytest

from daemon.dialogue.call_summary import slots_summary
from daemon.dialogue.message_slots import MessageSlots


@pytest.mark.parametrize(
    ("slots", "language", "expected"),
    [
        (
            MessageSlots("Иван Петров", "по поводу счёта", "89161234567"), "ru",
            "Иван Петров (звонил с номера +79161112233). По поводу счёта. Перезвонить: 89161234567.",
        ),
        (
            MessageSlots("Мария", "Хочу записаться на приём", None), "ru",
            "Мария (звонил с номера +79161112233). Тема: Хочу записаться на приём. "
            "Номер для обратного звонка не оставил.",
        ),
        (
            MessageSlots("John Peters", "the invoice", "5550134"), "en",
            "John Peters (calling from +79161112233). About: the invoice. Call back on 5550134.",
        ),
    ],
)
def test_slots_summary(slots: MessageSlots, language: str, expected: str) -> None:
    assert slots_summary(slots, "+79161112233", language) == expected
