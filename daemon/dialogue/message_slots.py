"""The message a caller leaves: its three slots, and the check of every value put in them.

The scripted take-a-message policy (daemon/dialogue/take_message_policy.py) and the LLM tool call fill the
same `MessageSlots`. The policy reads the slot values out of speech-to-text results with the
spoken-field parsers (daemon/dialogue/spoken_fields/); the LLM's tool call arguments are checked
here, a callback number with the same rule the parsers use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from daemon.dialogue.spoken_fields.numbers import MAX_PHONE_DIGITS, MIN_PHONE_DIGITS, normalize_phone_number

SLOT_NAMES: tuple[str, ...] = ("name", "reason", "callback_number")


@dataclass
class MessageSlots:
    name: str | None = None
    reason: str | None = None
    callback_number: str | None = None

    def missing(self, asks: Sequence[str] = SLOT_NAMES) -> list[str]:
        """The slots of `asks` (in that order) that are still empty."""
        check_slot_names(asks)
        return [slot for slot in dict.fromkeys(asks) if getattr(self, slot) is None]

    def as_dict(self) -> dict[str, str | None]:
        return {slot: getattr(self, slot) for slot in SLOT_NAMES}

    def merge(self, other: Mapping[str, object]) -> list[str]:
        """Take values from an LLM tool call's arguments; return the names of the slots that changed.

        Unknown keys are ignored; None or a blank string means "not given" and leaves a slot as it
        is. Every value is checked before any slot changes, so a bad value (not a string, or a
        callback number that is not 5..15 digits) raises ValueError and leaves the slots untouched.
        """
        if not isinstance(other, Mapping):
            kind = type(other).__name__
            raise ValueError(f"message slots must be an object of name/reason/callback_number, got {kind}")
        updates: dict[str, str] = {}
        for slot in SLOT_NAMES:
            if slot in other:
                value = _clean_slot_value(slot, other[slot])
                if value is not None:
                    updates[slot] = value
        changed = [slot for slot, value in updates.items() if getattr(self, slot) != value]
        for slot in changed:
            setattr(self, slot, updates[slot])
        return changed


def check_slot_names(names: Sequence[str]) -> None:
    """Raise ValueError naming any entry of `names` that is not one of SLOT_NAMES."""
    unknown = [name for name in names if name not in SLOT_NAMES]
    if unknown:
        raise ValueError(f"unknown message slot(s) {unknown}: expected some of {list(SLOT_NAMES)}")


def _clean_slot_value(slot: str, value: object) -> str | None:
    if value is None:
        return None
    if slot == "callback_number" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{slot} must be a string, got {type(value).__name__} {value!r}")
    text = " ".join(value.split())
    if not text:
        return None
    if slot != "callback_number":
        return text
    number = normalize_phone_number(text)
    if number is None:
        raise ValueError(
            f"callback_number {value!r} is not a phone number: "
            f"expected {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, optionally with a leading '+'"
        )
    return number
