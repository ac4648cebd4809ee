"""The vocabulary of a call: states, directions, end reasons, the public snapshot."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final


class CallState(StrEnum):
    """The four states of the ``call/state`` contract."""

    IDLE = "idle"
    RINGING = "ringing"  # incoming and alerting, or outgoing and not yet answered
    ACTIVE = "active"
    ENDING = "ending"


class CallDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class EndReason(StrEnum):
    REMOTE_HANGUP = "remote_hangup"
    LOCAL_HANGUP = "local_hangup"
    REJECTED = "rejected"  # blocked number
    MISSED = "missed"  # caller gave up before the answer
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # outgoing call that never connected
    MODEM_LOST = "modem_lost"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    state: CallState
    call_id: str | None
    caller: str | None  # the other party's number (dialled number for outgoing calls)
    since: float  # unix time the state was entered
    direction: CallDirection | None = None
    withheld: bool = False


def idle_snapshot(since: float | None = None) -> CallSnapshot:
    return CallSnapshot(CallState.IDLE, None, None, time.time() if since is None else since)


def new_call_id(now: float | None = None) -> str:
    """A sortable, filesystem-safe id: ``20241124T123456Z-1a2b3c``."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


_DIAL_NUMBER: Final = re.compile(r"^\+?[0-9*#]{1,40}$")
WITHHELD_TOKENS: Final = frozenset({"withheld", "anonymous", "private", "unknown"})


def normalize_number(number: str) -> str:
    """Keep a leading '+' and the digits: ``+7 (916) 123-45-67`` -> ``+79161234567``."""
    number = number.strip()
    digits = "".join(ch for ch in number if ch.isdigit())
    return ("+" + digits) if number.startswith("+") else digits


def numbers_match(a: str, b: str) -> bool:
    """Same number, allowing national vs international form (last 10 digits)."""
    da = "".join(ch for ch in a if ch.isdigit())
    db = "".join(ch for ch in b if ch.isdigit())
    if not da or not db:
        return False
    if da == db:
        return True
    return len(da) >= 10 and len(db) >= 10 and da[-10:] == db[-10:]


def validate_dial_number(number: str) -> str:
    cleaned = number.strip().replace(" ", "").replace("-", "")
    if not _DIAL_NUMBER.match(cleaned):
        raise ValueError(f"not a dialable number: {number!r}")
    return cleaned


__all__ = [
    "WITHHELD_TOKENS",
    "CallDirection",
    "CallSnapshot",
    "CallState",
    "EndReason",
    "idle_snapshot",
    "new_call_id",
    "normalize_number",
    "numbers_match",
    "validate_dial_number",
]
