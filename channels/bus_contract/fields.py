"""How a payload's fields go on the wire and are read back: one encode, one decode, for every payload type.

A payload type is a frozen dataclass deriving from ``Payload`` whose fields
are declared with the helpers here (``text``, ``choice``, ``number``,
``count``, ``flag``, ``mapping``, ``texts``, ``nested``): each says how its
value is checked on the way in and how it is written on the way out, so the
one ``encode`` and the one ``decode`` in ``Payload`` serve every type.

A decoder requires the keys that make the message what it is (an event's
``type`` and ``call_id``, a state's ``state``) and checks the type of every
other key it knows when it is there; a key that is absent reads as None, and
keys it does not know are left alone, so an older reader keeps working when
the writer adds one. Values the contract enumerates (call states, event types,
directions, roles) are checked; free vocabularies (end reasons, outcomes,
engine and service states) are text. Every problem is a ``PayloadError``
naming the topic and the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, Self, TypeVar


class PayloadError(ValueError):
    """A payload that does not fit the contract; the message says which topic and which field."""


class FieldReader:
    """One payload's fields, read for a decoder; every problem raises ``PayloadError`` naming ``what`` and the key."""

    def __init__(self, payload: Any, what: str) -> None:
        if not isinstance(payload, dict):
            raise PayloadError(f"{what}: the payload must be a JSON object, got {type(payload).__name__}")
        self.data: dict[str, Any] = payload
        self.what = what

    def value(self, key: str, *, required: bool, expected: str, fits: Callable[[Any], bool],
              options: tuple[str, ...] = ()) -> Any:
        """The key's value if it fits (and is one of ``options``, when given); None when absent and not required."""
        value = self.data.get(key)
        if value is None:
            if required:
                raise PayloadError(f"{self.what}: {key} is missing")
            return None
        if not fits(value):
            raise PayloadError(f"{self.what}: {key} must be {expected}, got {value!r}")
        if options and value not in options:
            raise PayloadError(f"{self.what}: {key} must be one of {', '.join(options)}, got {value!r}")
        return value

    def choice(self, key: str, options: tuple[str, ...], *, required: bool = False) -> str | None:
        return self.value(key, required=required, expected="a string", fits=_is_text, options=options)


# -- what a field's value may be -------------------------------------------------------------


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    """A finite JSON number (an int stays an int, so a payload reads back as it was)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclasses.dataclass(frozen=True)
class WireField:
    """How one field is checked when read and written when sent."""

    expected: str  # what the error says it must be
    fits: Callable[[Any], bool]
    required: bool = False
    options: tuple[str, ...] = ()  # the values the contract allows, for an enumerated field
    key: str | None = None  # the wire key, when it is not the field's name ("from")
    omit_none: bool = False  # absent on the wire while None
    read: Callable[[Any], Any] = lambda value: value  # wire value -> field value
    write: Callable[[Any], Any] = lambda value: value  # field value -> wire value


def _field(spec: WireField) -> Any:
    if spec.required:
        return dataclasses.field(metadata={"wire": spec})
    return dataclasses.field(default=None, metadata={"wire": spec})


def text(*, required: bool = False, key: str | None = None, omit_none: bool = False) -> Any:
    return _field(WireField("a string", _is_text, required, key=key, omit_none=omit_none))


def choice(options: tuple[str, ...], *, required: bool = False) -> Any:
    return _field(WireField("a string", _is_text, required, options=options))


def number() -> Any:
    return _field(WireField("a number", _is_number))


def count() -> Any:
    return _field(WireField("a whole number from 0", _is_count))


def flag() -> Any:
    return _field(WireField("true or false", lambda v: isinstance(v, bool)))


def mapping(*, omit_none: bool = False) -> Any:
    return _field(WireField("an object", lambda v: isinstance(v, dict), omit_none=omit_none))


def texts() -> Any:
    """A list of strings on the wire, a tuple in the payload."""
    return _field(WireField("a list of strings", _is_texts, read=tuple, write=list))


def nested(kind: type[Payload]) -> Any:
    """Another payload type inside this one (``ports`` in ``modem/state``)."""
    return _field(WireField("an object", lambda v: isinstance(v, dict), read=kind.decode,
                            write=lambda value: value.encode()))


# -- the payload types' one encode and one decode ----------------------------------------------


class Payload:
    """Base of the contract's JSON payload types (frozen dataclasses whose fields say how they go on the wire).

    ``what`` names the topic (and the event type) in error messages; an event
    type sets ``type``, which is the first key on the wire, and ``type_checked``
    when its topic has no other kind (so a decoder checks the ``type`` itself).
    ``only_with`` names fields that are on the wire exactly when another one is
    set (``{"outcome": ("message", ...)}``).
    """

    what: ClassVar[str]
    type: ClassVar[str | None] = None
    type_checked: ClassVar[bool] = False
    only_with: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def encode(self) -> dict[str, Any]:
        payload: dict[str, Any] = {} if self.type is None else {"type": self.type}
        dropped = {name for gate, names in self.only_with.items() if getattr(self, gate) is None for name in names}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            spec: WireField = f.metadata["wire"]
            value = getattr(self, f.name)
            if f.name in dropped or (value is None and spec.omit_none):
                continue
            payload[spec.key or f.name] = None if value is None else spec.write(value)
        return payload

    @classmethod
    def decode(cls, payload: Any) -> Self:
        reader = FieldReader(payload, cls.what)
        if cls.type_checked and cls.type is not None:
            reader.choice("type", (cls.type,), required=True)
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            spec: WireField = f.metadata["wire"]
            value = reader.value(spec.key or f.name, required=spec.required, expected=spec.expected, fits=spec.fits,
                                 options=spec.options)
            values[f.name] = None if value is None else spec.read(value)
        return cls(**values)


class Decodable(Protocol):
    type: ClassVar[str | None]

    @classmethod
    def decode(cls, payload: Any) -> Self: ...


_D = TypeVar("_D", bound=Decodable)


def decode_by_type(payload: Any, what: str, kinds: Mapping[str, type[_D]]) -> _D:
    """The payload decoded by the class its ``type`` names (one topic, several kinds of event)."""
    kind = FieldReader(payload, what).choice("type", tuple(kinds), required=True)
    assert kind is not None
    return kinds[kind].decode(payload)


def by_type(*kinds: type[_D]) -> dict[str, type[_D]]:
    """``{kind.type: kind}``: the table ``decode_by_type`` reads."""
    return {str(kind.type): kind for kind in kinds}
