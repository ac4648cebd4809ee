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

from channels.bus_contract.fields import FieldReader, by_type, decode_by_type

CALL_STATES = ("idle", "ringing", "active", "ending")
DIRECTIONS = ("incoming", "outgoing")
ROLES = ("caller", "secretary")


@dataclass(frozen=True)
class CallState:
    """``call/state``: retained ``{state, call_id, caller, since}``; ``channel`` too for a call not on the modem."""

    state: str  # one of CALL_STATES
    call_id: str | None = None
    caller: str | None = None
    since: float | None = None
    channel: str | None = None

    def encode(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"state": self.state, "call_id": self.call_id, "caller": self.caller,
                                   "since": self.since}
        if self.channel is not None:
            payload["channel"] = self.channel
        return payload

    @classmethod
    def decode(cls, payload: Any) -> CallState:
        r = FieldReader(payload, "call/state")
        state = r.choice("state", CALL_STATES, required=True)
        assert state is not None
        return cls(state=state, call_id=r.text("call_id"), caller=r.text("caller"), since=r.number("since"),
                   channel=r.text("channel"))


def _reader(payload: Any, kind: str) -> tuple[FieldReader, str, float | None]:
    """The reader of one event type, and the ``call_id`` and ``ts`` every call event has."""
    r = FieldReader(payload, f"call/event {kind}")
    return r, r.required_text("call_id"), r.number("ts")


@dataclass(frozen=True)
class RingingEvent:
    type: ClassVar[str] = "ringing"
    call_id: str
    ts: float | None = None
    caller: str | None = None
    withheld: bool | None = None
    direction: str | None = None  # one of DIRECTIONS

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "call_id": self.call_id, "ts": self.ts, "caller": self.caller,
                "withheld": self.withheld, "direction": self.direction}

    @classmethod
    def decode(cls, payload: Any) -> RingingEvent:
        r, call_id, ts = _reader(payload, cls.type)
        return cls(call_id=call_id, ts=ts, caller=r.text("caller"), withheld=r.flag("withheld"),
                   direction=r.choice("direction", DIRECTIONS))


@dataclass(frozen=True)
class AnsweredEvent:
    type: ClassVar[str] = "answered"
    call_id: str
    ts: float | None = None
    caller: str | None = None
    direction: str | None = None
    channel: str | None = None  # only for a call that did not come through the modem

    def encode(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": self.type, "call_id": self.call_id, "ts": self.ts, "caller": self.caller,
                                   "direction": self.direction}
        if self.channel is not None:
            payload["channel"] = self.channel
        return payload

    @classmethod
    def decode(cls, payload: Any) -> AnsweredEvent:
        r, call_id, ts = _reader(payload, cls.type)
        return cls(call_id=call_id, ts=ts, caller=r.text("caller"), direction=r.choice("direction", DIRECTIONS),
                   channel=r.text("channel"))


@dataclass(frozen=True)
class DtmfEvent:
    type: ClassVar[str] = "dtmf"
    call_id: str
    digit: str
    ts: float | None = None

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "call_id": self.call_id, "ts": self.ts, "digit": self.digit}

    @classmethod
    def decode(cls, payload: Any) -> DtmfEvent:
        r, call_id, ts = _reader(payload, cls.type)
        return cls(call_id=call_id, ts=ts, digit=r.required_text("digit"))


@dataclass(frozen=True)
class MissedEvent:
    """The caller gave up before the answer (an ``ended`` follows)."""

    type: ClassVar[str] = "missed"
    call_id: str
    ts: float | None = None
    caller: str | None = None

    def encode(self) -> dict[str, Any]:
        return {"type": self.type, "call_id": self.call_id, "ts": self.ts, "caller": self.caller}

    @classmethod
    def decode(cls, payload: Any) -> MissedEvent:
        r, call_id, ts = _reader(payload, cls.type)
        return cls(call_id=call_id, ts=ts, caller=r.text("caller"))


@dataclass(frozen=True)
class UtteranceEvent:
    """One line of the conversation as it happens; a secretary turn says how long each stage took."""

    type: ClassVar[str] = "utterance"
    call_id: str
    role: str  # one of ROLES
    text: str
    ts: float | None = None
    start_s: float | None = None  # from the call's start
    end_s: float | None = None
    interrupted: bool | None = None
    source: str | None = None  # greeting, llm, scripted, filler, ... (where a secretary line came from)
    latency_ms: dict[str, Any] | None = None  # {stage_ms: ms, ...}; absent on the wire when None

    def encode(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": self.type, "call_id": self.call_id, "ts": self.ts, "role": self.role, "text": self.text,
            "start_s": self.start_s, "end_s": self.end_s, "interrupted": self.interrupted, "source": self.source,
        }
        if self.latency_ms is not None:
            payload["latency_ms"] = self.latency_ms
        return payload

    @classmethod
    def decode(cls, payload: Any) -> UtteranceEvent:
        r, call_id, ts = _reader(payload, cls.type)
        role = r.choice("role", ROLES, required=True)
        assert role is not None
        return cls(
            call_id=call_id, ts=ts, role=role, text=r.required_text("text"), start_s=r.number("start_s"),
            end_s=r.number("end_s"), interrupted=r.flag("interrupted"), source=r.text("source"),
            latency_ms=r.mapping("latency_ms"),
        )


@dataclass(frozen=True)
class EndedEvent:
    """Every call's last event. The modem's own ending (a call no flow took: missed, blocked, dialled out)
    has no ``outcome``; a call the secretary took also says ``outcome``, ``message``, ``persona``,
    ``started_at``, ``record_dir`` and ``channel`` (those keys are on the wire exactly when ``outcome`` is).
    """

    type: ClassVar[str] = "ended"
    call_id: str
    ts: float | None = None
    caller: str | None = None
    direction: str | None = None
    answered: bool | None = None
    duration_s: float | None = None
    reason: str | None = None  # remote_hangup, local_hangup, missed, rejected, modem_lost, dtmf_end, ...
    outcome: str | None = None  # message_taken, no_message, failed, ...
    message: dict[str, Any] | None = None  # what the caller left (name, reason, callback number)
    summary: str | None = None
    persona: str | None = None
    started_at: float | None = None
    record_dir: str | None = None
    channel: str | None = None  # gsm, browser, twilio

    @property
    def taken(self) -> bool:
        """Whether the secretary took the call (the flow's ending rather than the modem's)."""
        return self.outcome is not None

    def encode(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": self.type, "call_id": self.call_id, "ts": self.ts, "caller": self.caller,
            "direction": self.direction, "answered": self.answered, "duration_s": self.duration_s,
            "reason": self.reason,
        }
        if self.taken:
            payload.update(outcome=self.outcome, message=self.message)
        payload["summary"] = self.summary
        if self.taken:
            payload.update(persona=self.persona, started_at=self.started_at, record_dir=self.record_dir,
                           channel=self.channel)
        return payload

    @classmethod
    def decode(cls, payload: Any) -> EndedEvent:
        r, call_id, ts = _reader(payload, cls.type)
        return cls(
            call_id=call_id, ts=ts, caller=r.text("caller"), direction=r.choice("direction", DIRECTIONS),
            answered=r.flag("answered"), duration_s=r.number("duration_s"), reason=r.text("reason"),
            outcome=r.text("outcome"), message=r.mapping("message"), summary=r.text("summary"),
            persona=r.text("persona"), started_at=r.number("started_at"), record_dir=r.text("record_dir"),
            channel=r.text("channel"),
        )


CallEvent = RingingEvent | AnsweredEvent | DtmfEvent | MissedEvent | UtteranceEvent | EndedEvent
CALL_EVENTS = by_type(RingingEvent, AnsweredEvent, DtmfEvent, MissedEvent, UtteranceEvent, EndedEvent)


def decode_call_event(payload: Any) -> CallEvent:
    """Any ``call/event``, by its ``type``; ``PayloadError`` names the field that does not fit."""
    return decode_by_type(payload, "call/event", CALL_EVENTS)
