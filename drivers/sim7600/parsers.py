"""Typed parsers for the answers of status, call-list and SMS queries.

Every function takes the payload after the ``+XXX:`` prefix (or the response
lines) and returns a typed value, or None when the text does not fit: the
modem's answers are data, not trusted input, so nothing here raises on odd
text.  Formats: sim7600.md §4.3, §5, §6.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Final

from drivers.sim7600.fields import param_int, param_str, split_params, to_int
from drivers.sim7600.result_codes import FinalKind, FinalResult
from drivers.sim7600.text_encoding import ucs2_hex_decode

_PHONE_CHARS: Final = frozenset("0123456789*#+")


def decode_number(text: str | None) -> str | None:
    """A phone number as the modem gave it, un-hexed if it came as UCS-2 (``AT+CSCS="UCS2"``).

    ``002B0037...`` decodes to ``+7...``; a plain number never decodes to phone
    characters (``1234`` would be U+1234), so plain numbers pass through.
    """
    if not text:
        return None
    decoded = ucs2_hex_decode(text)
    if decoded and all(ch in _PHONE_CHARS for ch in decoded):
        return decoded
    return text


# --------------------------------------------------------------------- SIM


class SimStatus(StrEnum):
    READY = "ready"
    PIN_REQUIRED = "pin_required"
    PUK_REQUIRED = "puk_required"
    LOCKED = "locked"  # PH-SIM / network personalisation locks
    ABSENT = "absent"
    ERROR = "error"
    BUSY = "busy"
    UNKNOWN = "unknown"


_CPIN_CODES: Final = {
    "READY": SimStatus.READY,
    "SIM PIN": SimStatus.PIN_REQUIRED,
    "SIM PUK": SimStatus.PUK_REQUIRED,
    # PIN2/PUK2 only matter for PIN2-protected operations; the SIM is usable.
    "SIM PIN2": SimStatus.READY,
    "SIM PUK2": SimStatus.READY,
    "NOT INSERTED": SimStatus.ABSENT,
    "NOT READY": SimStatus.BUSY,
}

_SIM_CME_CODES: Final = {
    10: SimStatus.ABSENT,
    11: SimStatus.PIN_REQUIRED,
    12: SimStatus.PUK_REQUIRED,
    13: SimStatus.ERROR,
    14: SimStatus.BUSY,
    15: SimStatus.ERROR,
}
_SIM_CME_TEXTS: Final = {
    "sim not inserted": SimStatus.ABSENT,
    "sim pin required": SimStatus.PIN_REQUIRED,
    "sim puk required": SimStatus.PUK_REQUIRED,
    "sim failure": SimStatus.ERROR,
    "sim busy": SimStatus.BUSY,
    "sim wrong": SimStatus.ERROR,
}


def parse_cpin(payload: str) -> SimStatus:
    code = payload.strip().strip('"').upper()
    if code in _CPIN_CODES:
        return _CPIN_CODES[code]
    if code.startswith("PH-") or code.endswith(" PIN") or code.endswith(" PUK"):
        return SimStatus.LOCKED
    return SimStatus.UNKNOWN


def sim_status_from_error(final: FinalResult) -> SimStatus | None:
    """The SIM status an error to ``AT+CPIN?`` (or any command) reveals, if any."""
    if final.kind is not FinalKind.CME_ERROR:
        return None
    if final.code is not None:
        return _SIM_CME_CODES.get(final.code)
    if final.text is not None:
        return _SIM_CME_TEXTS.get(final.text.strip().lower())
    return None


# ------------------------------------------------------------------ signal


@dataclass(frozen=True, slots=True)
class SignalQuality:
    rssi: int
    ber: int | None
    dbm: int | None


def rssi_to_dbm(rssi: int) -> int | None:
    """``+CSQ`` rssi -> dBm: 0..31 -> -113 + 2*rssi; 99 (and anything else) -> unknown.

    The SIMCom AT manual also defines 100..191 for TD-SCDMA (-116..-25 dBm);
    that range is mapped the same way.
    """
    if 0 <= rssi <= 31:
        return -113 + 2 * rssi
    if 100 <= rssi <= 191:
        return -116 + (rssi - 100)
    return None


def parse_csq(payload: str) -> SignalQuality | None:
    params = split_params(payload)
    rssi = param_int(params, 0)
    if rssi is None:
        return None
    ber = param_int(params, 1)
    return SignalQuality(rssi=rssi, ber=None if ber == 99 else ber, dbm=rssi_to_dbm(rssi))


# ------------------------------------------------------------ registration


class RegistrationStatus(StrEnum):
    NOT_REGISTERED = "not_registered"
    HOME = "home"
    SEARCHING = "searching"
    DENIED = "denied"
    ROAMING = "roaming"
    EMERGENCY_ONLY = "emergency_only"
    UNKNOWN = "unknown"

    @property
    def registered(self) -> bool:
        return self in (RegistrationStatus.HOME, RegistrationStatus.ROAMING)


_REG_STAT: Final = {
    0: RegistrationStatus.NOT_REGISTERED,
    1: RegistrationStatus.HOME,
    2: RegistrationStatus.SEARCHING,
    3: RegistrationStatus.DENIED,
    4: RegistrationStatus.UNKNOWN,
    5: RegistrationStatus.ROAMING,
    6: RegistrationStatus.HOME,  # home, SMS only
    7: RegistrationStatus.ROAMING,  # roaming, SMS only
    8: RegistrationStatus.EMERGENCY_ONLY,
    9: RegistrationStatus.HOME,  # home, CSFB not preferred
    10: RegistrationStatus.ROAMING,  # roaming, CSFB not preferred
}


@dataclass(frozen=True, slots=True)
class Registration:
    status: RegistrationStatus
    area_code: str | None = None
    cell_id: str | None = None
    access_technology: int | None = None

    @property
    def registered(self) -> bool:
        return self.status.registered


def parse_registration(payload: str) -> Registration | None:
    """``+CREG``/``+CEREG``/``+CGREG`` in both shapes.

    Query answer: ``<n>,<stat>[,<lac>,<ci>[,<AcT>]]``; URC: ``<stat>[,<lac>,<ci>[,<AcT>]]``.
    A single field, or a quoted second field, means the URC shape.
    """
    params = split_params(payload)
    if not params:
        return None
    if len(params) == 1 or params[1].quoted:
        stat_index = 0
    else:
        stat_index = 1
    stat = param_int(params, stat_index)
    if stat is None:
        return None
    return Registration(
        status=_REG_STAT.get(stat, RegistrationStatus.UNKNOWN),
        area_code=param_str(params, stat_index + 1) or None,
        cell_id=param_str(params, stat_index + 2) or None,
        access_technology=param_int(params, stat_index + 3),
    )


# ---------------------------------------------------------------- operator

ACCESS_TECHNOLOGIES: Final = {
    0: "GSM",
    1: "GSM compact",
    2: "UTRAN",
    3: "GSM/EGPRS",
    4: "UTRAN/HSDPA",
    5: "UTRAN/HSUPA",
    6: "UTRAN/HSPA",
    7: "LTE",
}


@dataclass(frozen=True, slots=True)
class Operator:
    mode: int | None
    name: str | None
    access_technology: int | None

    @property
    def access_technology_name(self) -> str | None:
        if self.access_technology is None:
            return None
        return ACCESS_TECHNOLOGIES.get(self.access_technology, str(self.access_technology))


def parse_cops(payload: str) -> Operator | None:
    params = split_params(payload)
    if not params:
        return None
    mode = param_int(params, 0)
    name = param_str(params, 2)
    return Operator(mode=mode, name=name or None, access_technology=param_int(params, 3))


# -------------------------------------------------------------- own number


@dataclass(frozen=True, slots=True)
class OwnNumber:
    number: str
    number_type: int | None
    alpha: str | None


def parse_cnum(payloads: Sequence[str]) -> list[OwnNumber]:
    found: list[OwnNumber] = []
    for payload in payloads:
        params = split_params(payload)
        number = param_str(params, 1)
        number = decode_number(number)
        if number:
            found.append(OwnNumber(number=number, number_type=param_int(params, 2), alpha=param_str(params, 0) or None))
    return found


# --------------------------------------------------------------- call list


class CallStat(IntEnum):
    ACTIVE = 0
    HELD = 1
    DIALING = 2
    ALERTING = 3
    INCOMING = 4
    WAITING = 5
    DISCONNECTED = 6


class CallListDirection(IntEnum):
    OUTGOING = 0  # mobile originated
    INCOMING = 1  # mobile terminated


@dataclass(frozen=True, slots=True)
class CallListEntry:
    """One ``+CLCC`` line (answer or URC)."""

    index: int
    direction: CallListDirection
    stat: CallStat
    mode: int
    multiparty: bool
    number: str | None = None
    number_type: int | None = None
    alpha: str | None = None

    @property
    def is_voice(self) -> bool:
        return self.mode == 0


def parse_clcc_entry(payload: str) -> CallListEntry | None:
    params = split_params(payload)
    index, direction, stat, mode, mpty = (param_int(params, i) for i in range(5))
    if index is None or direction not in (0, 1) or stat is None or mode is None:
        return None
    try:
        call_stat = CallStat(stat)
    except ValueError:
        return None
    return CallListEntry(
        index=index,
        direction=CallListDirection(direction),
        stat=call_stat,
        mode=mode,
        multiparty=mpty == 1,
        number=decode_number(param_str(params, 5)),
        number_type=param_int(params, 6),
        alpha=param_str(params, 7) or None,
    )


def parse_clcc(payloads: Sequence[str]) -> list[CallListEntry]:
    return [entry for entry in map(parse_clcc_entry, payloads) if entry is not None]


# --------------------------------------------------------------- caller ID


class ClipValidity(IntEnum):
    VALID = 0
    WITHHELD = 1
    NOT_AVAILABLE = 2


@dataclass(frozen=True, slots=True)
class CallerId:
    number: str | None
    number_type: int | None = None
    validity: int | None = None

    @property
    def withheld(self) -> bool:
        """The caller hid the number (CLIR), or the network did not give one."""
        return self.number is None or self.validity in (ClipValidity.WITHHELD, ClipValidity.NOT_AVAILABLE)


def parse_clip(payload: str) -> CallerId | None:
    """``+CLIP: "<number>",<type>[,<subaddr>,<satype>,<alpha>,<CLI validity>]``.

    The number must be quoted: the unquoted ``+CLIP: 1,1`` is the answer to
    ``AT+CLIP?``, not a caller ID.
    """
    params = split_params(payload)
    if not params or not params[0].quoted:
        return None
    number = decode_number(params[0].value.strip())
    validity = param_int(params, 5)
    if validity in (ClipValidity.WITHHELD, ClipValidity.NOT_AVAILABLE):
        number = None
    return CallerId(number=number, number_type=param_int(params, 1), validity=validity)


# --------------------------------------------------------------------- SMS

_SCTS: Final = re.compile(r"^(\d{2})/(\d{2})/(\d{2}),(\d{2}):(\d{2}):(\d{2})([+-]\d{1,2})?$")


def parse_sms_timestamp(text: str | None) -> datetime | None:
    """``yy/MM/dd,hh:mm:ss±zz`` (zz in quarter hours) -> aware datetime."""
    if not text:
        return None
    match = _SCTS.match(text.strip())
    if match is None:
        return None
    yy, mo, dd, hh, mi, ss = (int(match.group(i)) for i in range(1, 7))
    quarters = int(match.group(7) or 0)
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class SmsMessage:
    index: int | None
    status: str
    sender: str | None
    text: str
    timestamp: datetime | None = None
    timestamp_text: str | None = None
    alpha: str | None = None
    storage: str | None = None


def _identity(text: str) -> str:
    return text


def _messages(
    lines: Sequence[str], prefix: str, decode: Callable[[str], str], index: int | None, storage: str | None
) -> list[SmsMessage]:
    messages: list[SmsMessage] = []
    header: list[str] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is None:
            return
        if prefix == "+CMGL:":
            msg_index = to_int(header[0]) if header else None
            fields = header[1:]
        else:
            msg_index = index
            fields = header
        status = decode(fields[0]) if fields else ""
        sender = fields[1] if len(fields) > 1 else ""
        alpha = fields[2] if len(fields) > 2 else ""
        scts = fields[3] if len(fields) > 3 else ""
        messages.append(
            SmsMessage(
                index=msg_index,
                status=status,
                sender=decode(sender) or None,
                text=decode("\n".join(body)),
                timestamp=parse_sms_timestamp(scts),
                timestamp_text=scts or None,
                alpha=decode(alpha) or None,
                storage=storage,
            )
        )

    for line in lines:
        if line.startswith(prefix):
            flush()
            header = [p.value for p in split_params(line[len(prefix) :].strip())]
            body = []
        elif header is not None:
            body.append(line)
    flush()
    return messages


def parse_cmgr(
    lines: Sequence[str], index: int | None = None, decode: Callable[[str], str] = _identity, storage: str | None = None
) -> SmsMessage | None:
    """``+CMGR: <stat>,<oa>,<alpha>,<scts>`` followed by the text line(s)."""
    found = _messages(lines, "+CMGR:", decode, index, storage)
    return found[0] if found else None


def parse_cmgl(
    lines: Sequence[str], decode: Callable[[str], str] = _identity, storage: str | None = None
) -> list[SmsMessage]:
    """``+CMGL: <index>,<stat>,<oa>,<alpha>,<scts>`` + text, repeated."""
    return _messages(lines, "+CMGL:", decode, None, storage)


def parse_cmgs(payload: str) -> int | None:
    """``+CMGS: <mr>`` -> the message reference."""
    return param_int(split_params(payload), 0)


# ------------------------------------------------------------ identification


@dataclass(frozen=True, slots=True)
class ModemInfo:
    manufacturer: str | None = None
    model: str | None = None
    revision: str | None = None
    imei: str | None = None


def parse_ati(lines: Sequence[str]) -> ModemInfo:
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return ModemInfo(
        manufacturer=fields.get("manufacturer"),
        model=fields.get("model"),
        revision=fields.get("revision"),
        imei=fields.get("imei"),
    )


__all__ = [
    "ACCESS_TECHNOLOGIES",
    "CallListDirection",
    "CallListEntry",
    "CallStat",
    "CallerId",
    "ClipValidity",
    "ModemInfo",
    "Operator",
    "OwnNumber",
    "Registration",
    "RegistrationStatus",
    "SignalQuality",
    "SimStatus",
    "SmsMessage",
    "decode_number",
    "parse_ati",
    "parse_clcc",
    "parse_clcc_entry",
    "parse_clip",
    "parse_cmgl",
    "parse_cmgr",
    "parse_cmgs",
    "parse_cnum",
    "parse_cops",
    "parse_cpin",
    "parse_csq",
    "parse_registration",
    "parse_sms_timestamp",
    "rssi_to_dbm",
    "sim_status_from_error",
]
