"""The modem on the bus: retained ``modem/state`` and the ``modem/event`` health events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from channels.bus_contract import fields as wire
from channels.bus_contract.fields import Payload, by_type, decode_by_type


@dataclass(frozen=True)
class ModemPorts(Payload):
    """``{at, audio}``: the device paths the driver uses."""

    what: ClassVar[str] = "ports"
    at: str | None = wire.text()
    audio: str | None = wire.text()


@dataclass(frozen=True)
class ModemState(Payload):
    """``modem/state``: design.md's ``{sim, registered, operator, signal_dbm, ports}`` and what else the box knows."""

    what: ClassVar[str] = "modem/state"
    sim: str | None = wire.text()  # ready, pin_required, absent, ...
    registered: bool | None = wire.flag()
    operator: str | None = wire.text()
    signal_dbm: float | None = wire.number()
    ports: ModemPorts | None = wire.nested(ModemPorts)
    connected: bool | None = wire.flag()
    own_number: str | None = wire.text()
    problems: tuple[str, ...] | None = wire.texts()


@dataclass(frozen=True)
class PcmAlarmEvent(Payload):
    """``modem/event`` ``pcm_alarm``: the call audio port misbehaved (``kind`` says how)."""

    what: ClassVar[str] = "modem/event pcm_alarm"
    type: ClassVar[str] = "pcm_alarm"
    kind: str = wire.text(required=True)
    detail: str | None = wire.text()
    call_id: str | None = wire.text()
    ts: float | None = wire.number()


@dataclass(frozen=True)
class ModemConnectedEvent(Payload):
    """``modem/event`` ``connected``: the modem was found (or came back) on these ports."""

    what: ClassVar[str] = "modem/event connected"
    type: ClassVar[str] = "connected"
    ports: ModemPorts | None = wire.nested(ModemPorts)
    ts: float | None = wire.number()


@dataclass(frozen=True)
class ModemDisconnectedEvent(Payload):
    """``modem/event`` ``disconnected``: the modem went away (unplugged, crashed); ``reason`` says what was seen."""

    what: ClassVar[str] = "modem/event disconnected"
    type: ClassVar[str] = "disconnected"
    reason: str | None = wire.text()
    ts: float | None = wire.number()


ModemHealthEvent = PcmAlarmEvent | ModemConnectedEvent | ModemDisconnectedEvent
MODEM_EVENTS = by_type(PcmAlarmEvent, ModemConnectedEvent, ModemDisconnectedEvent)


def decode_modem_event(payload: Any) -> ModemHealthEvent:
    return decode_by_type(payload, "modem/event", MODEM_EVENTS)
