"""Message slots: what they hold, and the check of every value an LLM tool call puts in them."""

from __future__ import annotations

import pytest

from daemon.dialogue.message_slots import SLOT_NAMES, MessageSlots


def test_slot_names_are_the_dataclass_fields() -> None:
    assert SLOT_NAMES == ("name", "reason", "callback_number")
    assert MessageSlots().as_dict() == {"name": None, "reason": None, "callback_number": None}


def test_missing_follows_the_order_of_asks() -> None:
    slots = MessageSlots(reason="the invoice")
    assert slots.missing() == ["name", "callback_number"]
    assert slots.missing(("callback_number", "name")) == ["callback_number", "name"]
    assert slots.missing(["reason"]) == []
    assert slots.missing(()) == []


def test_missing_rejects_unknown_slot_names() -> None:
    with pytest.raises(ValueError, match="email"):
        MessageSlots().missing(("name", "email"))


def test_as_dict_holds_every_slot() -> None:
    slots = MessageSlots(name="John Peters", reason="the invoice", callback_number="+15551234567")
    assert slots.as_dict() == {"name": "John Peters", "reason": "the invoice", "callback_number": "+15551234567"}


def test_merge_fills_slots_and_reports_the_changed_ones() -> None:
    slots = MessageSlots(name="John")
    changed = slots.merge({"name": "John", "reason": "  the   invoice ", "callback_number": "+7 (916) 123-45-67"})
    assert changed == ["reason", "callback_number"]
    assert slots.as_dict() == {"name": "John", "reason": "the invoice", "callback_number": "+79161234567"}


def test_merge_ignores_unknown_keys_none_and_blank_values() -> None:
    slots = MessageSlots(name="John", reason="the invoice")
    assert slots.merge({"name": None, "reason": "   ", "mood": "angry", "callback_number": ""}) == []
    assert slots.as_dict() == {"name": "John", "reason": "the invoice", "callback_number": None}


def test_merge_accepts_an_integer_callback_number() -> None:
    slots = MessageSlots()
    assert slots.merge({"callback_number": 5550134}) == ["callback_number"]
    assert slots.callback_number == "5550134"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": 42}, "name must be a string"),
        ({"reason": ["a", "b"]}, "reason must be a string"),
        ({"callback_number": True}, "callback_number must be a string"),
        ({"callback_number": "call me maybe"}, "is not a phone number"),
        ({"callback_number": "123"}, "5 to 15 digits"),
    ],
)
def test_merge_rejects_bad_values_and_changes_nothing(arguments: dict[str, object], message: str) -> None:
    slots = MessageSlots()
    with pytest.raises(ValueError, match=message):
        slots.merge({"name": "John", **arguments} if "name" not in arguments else arguments)
    assert slots.as_dict() == {"name": None, "reason": None, "callback_number": None}


def test_merge_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError, match="must be an object"):
        MessageSlots().merge(["name", "John"])  # type: ignore[arg-type]
