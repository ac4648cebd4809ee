"""Events the driver emits (the daemon maps them to ``call/state``, ``call/event``, ``modem/state``).

Every event is a frozen dataclass with a ``type`` class attribute and a unix
timestamp ``ts``.  Call events carry the ``call_id`` that names the call
record; every call ends with exactly one ``CallEnded``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, ClassVar

from drivers.sim7600.call_model import CallDirection, CallSnapshot, CallState, EndReason
from drivers.sim7600.modem_state import ModemState
from drivers.sim7600.parsers import ModemInfo, SmsMessage
from drivers.sim7600.pcm_port import PcmSession
from drivers.sim7600.ports import ModemPorts


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged:
    """Every transition (and a caller ID learned while ringing): the ``call/state`` snapshot."""

    type: ClassVar[str] = "call_state"
    call: CallSnapshot
    previous: CallState
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging:
    type: ClassVar[str] = "ringing"
    call_id: str
    caller: str | None
    withheld: bool
    direction: CallDirection
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered:
    type: ClassVar[str] = "answered"
    call_id: str
    caller: str | None
    direction: CallDirection
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAudioReady:
    """The answered call's PCM audio is flowing (``AT+CPCMREG=1`` succeeded): its session, for the call flow.

    Pushed once per connected call, right after ``CallAnswered``; when PCM cannot
    be enabled a ``PcmAlarm(kind="enable_failed")`` comes instead. The session is
    a live object of this process, so it never goes on the wire.
    """

    type: ClassVar[str] = "audio_ready"
    call_id: str
    session: PcmSession = field(repr=False, compare=False, metadata={"local": True})
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDtmf:
    type: ClassVar[str] = "dtmf"
    call_id: str
    digit: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallMissed:
    """The caller gave up before the call was answered (followed by ``CallEnded(reason=missed)``)."""

    type: ClassVar[str] = "missed"
    call_id: str
    caller: str | None
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    type: ClassVar[str] = "ended"
    call_id: str
    caller: str | None
    direction: CallDirection
    reason: EndReason
    duration_s: float  # connected time measured by the driver; 0 if never connected
    answered: bool
    modem_duration_s: int | None  # from VOICE CALL: END: dddddd, if the modem said
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemConnected:
    type: ClassVar[str] = "modem_connected"
    ports: ModemPorts
    info: ModemInfo
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemDisconnected:
    type: ClassVar[str] = "modem_disconnected"
    reason: str
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemStateChanged:
    """The ``modem/state`` snapshot changed (the daemon's modem service maps it to the retained payload)."""

    type: ClassVar[str] = "modem_state"
    state: ModemState
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsReceived:
    """A message was read and deleted from the modem's storage."""

    type: ClassVar[str] = "sms_received"
    message: SmsMessage
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PcmAlarm:
    """Voice audio trouble: ``enable_failed``, ``downlink_silent`` or ``uplink_stalled``."""

    type: ClassVar[str] = "pcm_alarm"
    call_id: str | None
    kind: str
    detail: str
    ts: float


CallEvent = CallStateChanged | CallRinging | CallAnswered | CallDtmf | CallMissed | CallEnded
ModemEvent = CallEvent | CallAudioReady | ModemConnected | ModemDisconnected | ModemStateChanged | SmsReceived | PcmAlarm


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if not f.metadata.get("local")}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def event_payload(event: ModemEvent) -> dict[str, Any]:
    """JSON-ready dict ``{type, ..., ts}`` of any event (enums as their values, datetimes ISO 8601).

    For ``call/event`` the call events already carry the contract's fields
    (``type``, ``call_id``, ``ts``; ``ended`` has ``duration_s`` and ``reason``).
    """
    payload = {"type": event.type}
    payload.update(_plain(event))
    return payload


__all__ = [
    "CallAnswered",
    "CallAudioReady",
    "CallDtmf",
    "CallEnded",
    "CallEvent",
    "CallMissed",
    "CallRinging",
    "CallStateChanged",
    "ModemConnected",
    "ModemDisconnected",
    "ModemEvent",
    "ModemStateChanged",
    "PcmAlarm",
    "SmsReceived",
    "event_payload",
]
