"""The call-back hand-off: "leave your number and we will call you back", checked before it goes to the box.

A visitor gives a phone number (required), a name and a note (both
optional). The number may be written with spaces, dashes and parentheses
and a leading ``+``; what remains must be 5 to 20 digits. The page the
visitor was on is reported too, but only if it is on the origin the chat
connected from (anything else is replaced by that origin). The checked
request becomes the arguments of the bus command
``notify/callback_request``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_NAME_CHARS = 80
MAX_NOTE_CHARS = 500
MAX_PAGE_CHARS = 500
_NUMBER = re.compile(r"^\+?[0-9]{5,20}$")
_SEPARATORS = str.maketrans("", "", " \t-()")


class InvalidHandoff(ValueError):
    """The visitor's call-back request cannot be sent; the message says what to fix."""


def normalize_number(raw: object) -> str:
    """``+1 (555) 010-2030`` -> ``+15550102030``; raises InvalidHandoff for anything that is not a phone number."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidHandoff("Please enter your phone number.")
    number = raw.strip().translate(_SEPARATORS)
    if not _NUMBER.fullmatch(number):
        raise InvalidHandoff(
            "Please enter a valid phone number: digits with an optional leading +, 5 to 20 digits."
        )
    return number


def _clean(value: object, what: str, limit: int, *, multiline: bool) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidHandoff(f"The {what} must be text.")
    kept = "".join(
        ch if ch == "\n" and multiline else " " if ch.isspace() else ch
        for ch in value.replace("\r\n", "\n")
        if ch.isspace() or not unicodedata.category(ch).startswith("C")
    )
    text = kept.strip() if multiline else " ".join(kept.split())
    if len(text) > limit:
        raise InvalidHandoff(f"The {what} is too long: at most {limit} characters.")
    return text


def _page(value: object, origin: str) -> str:
    if isinstance(value, str) and len(value) <= MAX_PAGE_CHARS and (value == origin or value.startswith(origin + "/")):
        return value
    return origin


@dataclass(frozen=True)
class CallbackForm:
    name: str
    number: str
    note: str
    page: str

    @classmethod
    def parse(cls, message: dict[str, Any], origin: str) -> CallbackForm:
        """The visitor's ``{"type": "callback", "name", "number", "note", "page"}``, checked."""
        return cls(
            name=_clean(message.get("name"), "name", MAX_NAME_CHARS, multiline=False),
            number=normalize_number(message.get("number")),
            note=_clean(message.get("note"), "note", MAX_NOTE_CHARS, multiline=True),
            page=_page(message.get("page"), origin),
        )

    def bus_args(self, widget: str, session: str, ts: float) -> dict[str, Any]:
        """The arguments of ``cmd/notify/callback_request``."""
        return {"widget": widget, "name": self.name, "number": self.number, "note": self.note,
                "page": self.page, "session": session, "ts": round(ts, 3)}
