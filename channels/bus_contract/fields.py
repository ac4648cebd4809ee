"""How a payload's fields are read and checked: one reader, one error that names the topic and the field.

A decoder requires the keys that make the message what it is (an event's
``type`` and ``call_id``, a state's ``state``) and checks the type of every
other key it knows when it is there; a key that is absent reads as None, and
keys it does not know are left alone, so an older reader keeps working when
the writer adds one. Values the contract enumerates (call states, event types,
directions, roles) are checked; free vocabularies (end reasons, outcomes,
engine and service states) are text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self, TypeVar


class PayloadError(ValueError):
    """A payload that does not fit the contract; the message says which topic and which field."""


class Decodable(Protocol):
    type: ClassVar[str]

    @classmethod
    def decode(cls, payload: Any) -> Self: ...


_D = TypeVar("_D", bound=Decodable)


class FieldReader:
    """One payload's fields, read for a decoder; every problem raises ``PayloadError`` naming ``what`` and the key."""

    def __init__(self, payload: Any, what: str) -> None:
        if not isinstance(payload, dict):
            raise PayloadError(f"{what}: the payload must be a JSON object, got {type(payload).__name__}")
        self.data: dict[str, Any] = payload
        self.what = what

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise PayloadError(f"{self.what}: {key} is missing")
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> PayloadError:
        return PayloadError(f"{self.what}: {key} must be {expected}, got {value!r}")

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def choice(self, key: str, options: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None and value not in options:
            raise self._wrong(key, f"one of {', '.join(options)}", value)
        return value

    def number(self, key: str) -> float | None:
        """A finite JSON number (an int stays an int, so a payload reads back as it was)."""
        value = self._get(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise self._wrong(key, "a number", value)
        return value

    def count(self, key: str) -> int | None:
        value = self._get(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise self._wrong(key, "a whole number from 0", value)
        return value

    def flag(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, dict):
            raise self._wrong(key, "an object", value)
        return value

    def texts(self, key: str) -> tuple[str, ...] | None:
        value = self._get(key, False)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise self._wrong(key, "a list of strings", value)
        return tuple(value) if value is not None else None


def decode_by_type(payload: Any, what: str, kinds: Mapping[str, type[_D]]) -> _D:
    """The payload decoded by the class its ``type`` names (one topic, several kinds of event)."""
    kind = FieldReader(payload, what).choice("type", tuple(kinds), required=True)
    assert kind is not None
    return kinds[kind].decode(payload)


def by_type(*kinds: type[_D]) -> dict[str, type[_D]]:
    """``{kind.type: kind}``: the table ``decode_by_type`` reads."""
    return {kind.type: kind for kind in kinds}
