"""What reaches the owner besides calls: ``sms/event`` (a text to the box) and ``callback/event`` ("call me back")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from channels.bus_contract.fields import FieldReader


@dataclass(frozen=True)
class SmsReceivedEvent:
    """``sms/event`` ``received``: ``{type, from, text, ts}``."""

    type: ClassVar[str] = "received"
    sender: str | None  # "from" on the wire
    text: str
    ts: float | None = None

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "from": self.sender, "text": self.text, "ts": self.ts}

    @classmethod
    def decode(cls, payload: Any) -> SmsReceivedEvent:
        r = FieldReader(payload, "sms/event")
        r.choice("type", (cls.type,), required=True)
        return cls(sender=r.text("from"), text=r.required_text("text"), ts=r.number("ts"))


@dataclass(frozen=True)
class CallbackRequestEvent:
    """``callback/event`` ``callback_request``: a visitor left a number to be called back through ``channel``."""

    type: ClassVar[str] = "callback_request"
    id: str
    number: str
    channel: str
    ts: float | None = None
    widget: str | None = None
    name: str | None = None
    note: str | None = None
    page: str | None = None
    session: str | None = None

    def encode(self) -> dict[str, Any]:
        return {
            "type": self.type, "id": self.id, "number": self.number, "ts": self.ts, "channel": self.channel,
            "widget": self.widget, "name": self.name, "note": self.note, "page": self.page, "session": self.session,
        }

    @classmethod
    def decode(cls, payload: Any) -> CallbackRequestEvent:
        r = FieldReader(payload, "callback/event")
        r.choice("type", (cls.type,), required=True)
        return cls(
            id=r.required_text("id"), number=r.required_text("number"), channel=r.required_text("channel"),
            ts=r.number("ts"), widget=r.text("widget"), name=r.text("name"), note=r.text("note"), page=r.text("page"),
            session=r.text("session"),
        )
