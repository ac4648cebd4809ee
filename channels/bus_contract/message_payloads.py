"""What reaches the owner besides calls: ``sms/event`` (a text to the box) and ``callback/event`` ("call me back")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from channels.bus_contract import fields as wire
from channels.bus_contract.fields import Payload


@dataclass(frozen=True)
class SmsReceivedEvent(Payload):
    """``sms/event`` ``received``: ``{type, from, text, ts}``."""

    what: ClassVar[str] = "sms/event"
    type: ClassVar[str] = "received"
    type_checked: ClassVar[bool] = True
    text: str = wire.text(required=True)
    sender: str | None = wire.text(key="from")
    ts: float | None = wire.number()


@dataclass(frozen=True)
class CallbackRequestEvent(Payload):
    """``callback/event`` ``callback_request``: a visitor left a number to be called back through ``channel``."""

    what: ClassVar[str] = "callback/event"
    type: ClassVar[str] = "callback_request"
    type_checked: ClassVar[bool] = True
    id: str = wire.text(required=True)
    number: str = wire.text(required=True)
    channel: str = wire.text(required=True)
    ts: float | None = wire.number()
    widget: str | None = wire.text()
    name: str | None = wire.text()
    note: str | None = wire.text()
    page: str | None = wire.text()
    session: str | None = wire.text()
