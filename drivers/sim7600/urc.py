"""Unsolicited result codes as typed events, and the parser that makes them.

One dataclass per URC the driver acts on (sim7600.md §3, §4, §6).  ``parse_urc``
returns None for any line that is not a URC, so callers can treat the line as
part of a command response instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from drivers.sim7600.fields import param_int, param_str, split_params
from drivers.sim7600.parsers import (
    CallerId,
    CallListEntry,
    Registration,
    SimStatus,
    decode_number,
    parse_clcc_entry,
    parse_clip,
    parse_cpin,
    parse_registration,
)


@dataclass(frozen=True, slots=True)
class Ring:
    """``RING``: an incoming call is alerting (repeats every few seconds)."""


@dataclass(frozen=True, slots=True)
class CRing:
    """``+CRING: VOICE`` (replaces RING after ``AT+CRC=1``)."""

    call_type: str


@dataclass(frozen=True, slots=True)
class CallerIdUrc:
    """``+CLIP: "<number>",<type>,,,,<validity>`` after each RING."""

    caller: CallerId


@dataclass(frozen=True, slots=True)
class CallListUrc:
    """``+CLCC: ...`` at every call state change (after ``AT+CLCC=1``)."""

    entry: CallListEntry


@dataclass(frozen=True, slots=True)
class VoiceCallBegin:
    """``VOICE CALL: BEGIN``: the call is connected."""


@dataclass(frozen=True, slots=True)
class VoiceCallEnd:
    """``VOICE CALL: END[: dddddd]``; the six digits are a duration field (read as seconds)."""

    duration_s: int | None


@dataclass(frozen=True, slots=True)
class NoCarrier:
    """``NO CARRIER`` that no command was waiting for (remote hang-up)."""


@dataclass(frozen=True, slots=True)
class Busy:
    """``BUSY`` outside a command (an outgoing call met a busy line)."""


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """``NO ANSWER`` outside a command (an outgoing call was not answered)."""


@dataclass(frozen=True, slots=True)
class MissedCall:
    """``MISSED_CALL: 11:01AM 07712345678``: the caller gave up before an answer."""

    time_text: str
    number: str | None


@dataclass(frozen=True, slots=True)
class NewSms:
    """``+CMTI: "SM",<index>``."""

    storage: str
    index: int


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """``+RXDTMF: <c>``."""

    digit: str


@dataclass(frozen=True, slots=True)
class ModemReady:
    """``RDY``: the module (re)booted."""


@dataclass(frozen=True, slots=True)
class SimStatusUrc:
    """``+CPIN: READY`` / ``+CPIN: SIM PIN`` ..."""

    status: SimStatus


@dataclass(frozen=True, slots=True)
class SmsReady:
    """``SMS DONE``: SMS functions are usable."""


@dataclass(frozen=True, slots=True)
class PhonebookReady:
    """``PB DONE``: phonebook loaded (last boot URC)."""


@dataclass(frozen=True, slots=True)
class RegistrationUrc:
    """``+CREG: <stat>[,...]`` / ``+CEREG: ...`` (only with n >= 1)."""

    technology: str  # "CREG" | "CEREG" | "CGREG"
    registration: Registration


Urc = (
    Ring
    | CRing
    | CallerIdUrc
    | CallListUrc
    | VoiceCallBegin
    | VoiceCallEnd
    | NoCarrier
    | Busy
    | NoAnswer
    | MissedCall
    | NewSms
    | DtmfReceived
    | ModemReady
    | SimStatusUrc
    | SmsReady
    | PhonebookReady
    | RegistrationUrc
)

#: Prefixes of lines that are URCs when no command claims them.
URC_PREFIXES: Final = (
    "+CRING:",
    "+CLIP:",
    "+CLCC:",
    "VOICE CALL:",
    "MISSED_CALL:",
    "+CMTI:",
    "+RXDTMF:",
    "+CPIN:",
    "+CREG:",
    "+CEREG:",
    "+CGREG:",
)

_EXACT: Final[dict[str, Urc]] = {
    "RING": Ring(),
    "NO CARRIER": NoCarrier(),
    "BUSY": Busy(),
    "NO ANSWER": NoAnswer(),
    "RDY": ModemReady(),
    "SMS DONE": SmsReady(),
    "PB DONE": PhonebookReady(),
}

_VOICE_CALL: Final = re.compile(r"^VOICE CALL:\s*([A-Z]+)(?::\s*(\d+))?\s*$")
_MISSED_CALL: Final = re.compile(r"^MISSED_CALL:\s*(\S+)(?:\s+(\S+))?\s*$")
_DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


def parse_urc(line: str) -> Urc | None:
    exact = _EXACT.get(line)
    if exact is not None:
        return exact
    head, sep, payload = line.partition(":")
    if not sep:
        return None
    payload = payload.strip()
    if head == "+CLIP":
        caller = parse_clip(payload)
        return None if caller is None else CallerIdUrc(caller)
    if head == "+CLCC":
        entry = parse_clcc_entry(payload)
        return None if entry is None else CallListUrc(entry)
    if head == "VOICE CALL":
        return _voice_call(line)
    if head == "+RXDTMF":
        digit = payload.strip('"').upper()
        return DtmfReceived(digit) if len(digit) == 1 and digit in _DTMF_DIGITS else None
    if head == "+CMTI":
        params = split_params(payload)
        storage, index = param_str(params, 0), param_int(params, 1)
        return None if storage is None or index is None else NewSms(storage=storage, index=index)
    if head == "MISSED_CALL":
        match = _MISSED_CALL.match(line)
        return None if match is None else MissedCall(time_text=match.group(1), number=decode_number(match.group(2)))
    if head == "+CRING":
        return CRing(call_type=payload)
    if head == "+CPIN":
        status = parse_cpin(payload)
        return None if status is SimStatus.UNKNOWN else SimStatusUrc(status)
    if head in ("+CREG", "+CEREG", "+CGREG"):
        params = split_params(payload)
        # A URC has <stat> first; two unquoted leading numbers is a query answer.
        if len(params) >= 2 and not params[1].quoted:
            return None
        registration = parse_registration(payload)
        return None if registration is None else RegistrationUrc(head[1:], registration)
    return None


def _voice_call(line: str) -> Urc | None:
    match = _VOICE_CALL.match(line)
    if match is None:
        return None
    word = match.group(1)
    if word == "BEGIN":
        return VoiceCallBegin()
    if word == "END":
        digits = match.group(2)
        return VoiceCallEnd(duration_s=int(digits) if digits else None)
    return None


__all__ = [
    "URC_PREFIXES",
    "Busy",
    "CRing",
    "CallListUrc",
    "CallerIdUrc",
    "DtmfReceived",
    "MissedCall",
    "ModemReady",
    "NewSms",
    "NoAnswer",
    "NoCarrier",
    "PhonebookReady",
    "RegistrationUrc",
    "Ring",
    "SimStatusUrc",
    "SmsReady",
    "Urc",
    "VoiceCallBegin",
    "VoiceCallEnd",
    "parse_urc",
]
