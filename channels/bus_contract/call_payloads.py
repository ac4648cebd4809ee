"""Calls on the bus: retained ``call/state`` and the ``call/event`` stream, one class per event type.

A call's events, in order: ``ringing`` (GSM calls), ``answered``, then
``utterance`` and ``dtmf`` while it is live, and exactly one ``ended``; a
caller who gives up before the answer brings ``missed`` before ``ended``.
Calls that came through a channel (the web page's test call, Twilio) say so
in ``channel``. ``decode_call_event`` reads any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from channels.bus_contract import fields as wire
from channels.bus_contract.fields import Payload, by_type, decode_by_type

NOT_READY = "not_ready"  # a missed call's reason: the box let it ring, unable to speak yet, until it gave up

CALL_STATES = ("idle", "ringing", "active", "ending")
DIRECTIONS = ("incoming", "outgoing")
ROLES = ("caller", "secretary")


@dataclass(frozen=True)
class CallState(Payload):
    """``call/state``: retained ``{state, call_id, caller, since}``; ``channel`` too for a call not on the modem."""

    what: ClassVar[str] = "call/state"
    state: str = wire.choice(CALL_STATES, required=True)
    call_id: str | None = wire.text()
    caller: str | None = wire.text()
    since: float | None = wire.number()
    channel: str | None = wire.text(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class CallEventBase(Payload):
    """What every ``call/event`` has: the call it is about and when it happened (then the type's own fields)."""

    call_id: str = wire.text(required=True)
    ts: float | None = wire.number()


@dataclass(frozen=True, kw_only=True)
class RingingEvent(CallEventBase):
    what: ClassVar[str] = "call/event ringing"
    type: ClassVar[str] = "ringing"
    caller: str | None = wire.text()
    withheld: bool | None = wire.flag()
    direction: str | None = wire.choice(DIRECTIONS)


@dataclass(frozen=True, kw_only=True)
class AnsweredEvent(CallEventBase):
    what: ClassVar[str] = "call/event answered"
    type: ClassVar[str] = "answered"
    caller: str | None = wire.text()
    direction: str | None = wire.choice(DIRECTIONS)
    channel: str | None = wire.text(omit_none=True)  # only for a call that did not come through the modem


@dataclass(frozen=True, kw_only=True)
class DtmfEvent(CallEventBase):
    what: ClassVar[str] = "call/event dtmf"
    type: ClassVar[str] = "dtmf"
    digit: str = wire.text(required=True)


@dataclass(frozen=True, kw_only=True)
class MissedEvent(CallEventBase):
    """The call was not answered: the caller gave up first, or the box could not speak yet (an ``ended`` follows)."""

    what: ClassVar[str] = "call/event missed"
    type: ClassVar[str] = "missed"
    caller: str | None = wire.text()
    reason: str | None = wire.text(omit_none=True)  # NOT_READY, or None


@dataclass(frozen=True, kw_only=True)
class UtteranceEvent(CallEventBase):
    """One line of the conversation as it happens; a secretary turn says how long each stage took."""

    what: ClassVar[str] = "call/event utterance"
    type: ClassVar[str] = "utterance"
    role: str = wire.choice(ROLES, required=True)
    text: str = wire.text(required=True)
    start_s: float | None = wire.number()  # from the call's start
    end_s: float | None = wire.number()
    interrupted: bool | None = wire.flag()
    source: str | None = wire.text()  # greeting, llm, scripted, filler, ... (where a secretary line came from)
    latency_ms: dict[str, Any] | None = wire.mapping(omit_none=True)  # {stage_ms: ms, ...}
    heard_by: str | None = wire.text()  # a cut secretary line: how ``text`` was found ("audio_share")


@dataclass(frozen=True, kw_only=True)
class EndedEvent(CallEventBase):
    """Every call's last event. The modem's own ending (a call no flow took: missed, blocked, dialled out)
    has no ``outcome``; a call the secretary took also says ``outcome``, ``message``, ``persona``,
    ``started_at``, ``record_dir`` and ``channel`` (those keys are on the wire exactly when ``outcome`` is).
    """

    what: ClassVar[str] = "call/event ended"
    type: ClassVar[str] = "ended"
    only_with: ClassVar[dict[str, tuple[str, ...]]] = {
        "outcome": ("outcome", "message", "persona", "started_at", "record_dir", "channel"),
    }
    caller: str | None = wire.text()
    direction: str | None = wire.choice(DIRECTIONS)
    answered: bool | None = wire.flag()
    duration_s: float | None = wire.number()
    reason: str | None = wire.text()  # remote_hangup, local_hangup, missed, rejected, modem_lost, dtmf_end, ...
    outcome: str | None = wire.text()  # message_taken, no_message, failed, ...
    message: dict[str, Any] | None = wire.mapping()  # what the caller left (name, reason, callback number)
    summary: str | None = wire.text()
    persona: str | None = wire.text()
    started_at: float | None = wire.number()
    record_dir: str | None = wire.text()
    channel: str | None = wire.text()  # gsm, browser, twilio

    @property
    def taken(self) -> bool:
        """Whether the secretary took the call (the flow's ending rather than the modem's)."""
        return self.outcome is not None


CallEvent = RingingEvent | AnsweredEvent | DtmfEvent | MissedEvent | UtteranceEvent | EndedEvent
CALL_EVENTS = by_type(RingingEvent, AnsweredEvent, DtmfEvent, MissedEvent, UtteranceEvent, EndedEvent)


def decode_call_event(payload: Any) -> CallEvent:
    """Any ``call/event``, by its ``type``; ``PayloadError`` names the field that does not fit."""
    return decode_by_type(payload, "call/event", CALL_EVENTS)
