"""The modem on the bus: retained ``modem/state`` and the ``modem/event`` health events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from channels.bus_contract.fields import FieldReader, by_type, decode_by_type


@dataclass(frozen=True)
class ModemPorts:
    """``{at, audio}``: the device paths the driver uses."""

    at: str | None = None
    audio: str | None = None

    def encode(self) -> dict[str, str | None]:
        return {"at": self.at, "audio": self.audio}

    @classmethod
    def decode(cls, payload: Any) -> ModemPorts:
        r = FieldReader(payload, "ports")
        return cls(at=r.text("at"), audio=r.text("audio"))


def _ports(r: FieldReader) -> ModemPorts | None:
    value = r.mapping("ports")
    return ModemPorts.decode(value) if value is not None else None


@dataclass(frozen=True)
class ModemState:
    """``modem/state``: design.md's ``{sim, registered, operator, signal_dbm, ports}`` and what else the box knows."""

    sim: str | None = None  # ready, pin_required, absent, ...
    registered: bool | None = None
    operator: str | None = None
    signal_dbm: float | None = None
    ports: ModemPorts | None = None
    connected: bool | None = None
    own_number: str | None = None
    problems: tuple[str, ...] | None = None

    def encode(self) -> dict[str, Any]:
        return {
            "sim": self.sim, "registered": self.registered, "operator": self.operator, "signal_dbm": self.signal_dbm,
            "ports": self.ports.encode() if self.ports is not None else None, "connected": self.connected,
            "own_number": self.own_number, "problems": list(self.problems) if self.problems is not None else None,
        }

    @classmethod
    def decode(cls, payload: Any) -> ModemState:
        r = FieldReader(payload, "modem/state")
        return cls(
            sim=r.text("sim"), registered=r.flag("registered"), operator=r.text("operator"),
            signal_dbm=r.number("signal_dbm"), ports=_ports(r), connected=r.flag("connected"),
            own_number=r.text("own_number"), problems=r.texts("problems"),
        )


@dataclass(frozen=True)
class PcmAlarmEvent:
    """``modem/event`` ``pcm_alarm``: the call audio port misbehaved (``kind`` says how)."""

    type: ClassVar[str] = "pcm_alarm"
    kind: str
    detail: str | None = None
    call_id: str | None = None
    ts: float | None = None

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "kind": self.kind, "detail": self.detail, "call_id": self.call_id, "ts": self.ts}

    @classmethod
    def decode(cls, payload: Any) -> PcmAlarmEvent:
        r = FieldReader(payload, "modem/event pcm_alarm")
        return cls(kind=r.required_text("kind"), detail=r.text("detail"), call_id=r.text("call_id"),
                   ts=r.number("ts"))


@dataclass(frozen=True)
class ModemConnectedEvent:
    """``modem/event`` ``connected``: the modem was found (or came back) on these ports."""

    type: ClassVar[str] = "connected"
    ports: ModemPorts | None = None
    ts: float | None = None

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "ports": self.ports.encode() if self.ports is not None else None, "ts": self.ts}

    @classmethod
    def decode(cls, payload: Any) -> ModemConnectedEvent:
        r = FieldReader(payload, "modem/event connected")
        return cls(ports=_ports(r), ts=r.number("ts"))


@dataclass(frozen=True)
class ModemDisconnectedEvent:
    """``modem/event`` ``disconnected``: the modem went away (unplugged, crashed); ``reason`` says what was seen."""

    type: ClassVar[str] = "disconnected"
    reason: str | None = None
    ts: float | None = None

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason, "ts": self.ts}

    @classmethod
    def decode(cls, payload: Any) -> ModemDisconnectedEvent:
        r = FieldReader(payload, "modem/event disconnected")
        return cls(reason=r.text("reason"), ts=r.number("ts"))


ModemHealthEvent = PcmAlarmEvent | ModemConnectedEvent | ModemDisconnectedEvent
MODEM_EVENTS = by_type(PcmAlarmEvent, ModemConnectedEvent, ModemDisconnectedEvent)


def decode_modem_event(payload: Any) -> ModemHealthEvent:
    return decode_by_type(payload, "modem/event", MODEM_EVENTS)
