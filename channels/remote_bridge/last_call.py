"""``last_call``: the newest incoming call, as the remote "last caller" sensor shows it.

Built from ``call/event``: ``ringing`` starts a new last call (outcome
``ringing``), ``missed`` and ``ended`` complete it (outcome, summary). The
payload is ``{caller, call_id, ts, outcome, summary}``; ``ts`` is when the
call came in. Outgoing calls are not callers and change nothing.
"""

from __future__ import annotations

from typing import Any

from channels.bus_contract.call_payloads import EndedEvent, MissedEvent, RingingEvent, decode_call_event
from channels.bus_contract.fields import PayloadError

LastCall = dict[str, Any]


def next_last_call(current: LastCall | None, event: Any) -> LastCall | None:
    """The new ``last_call`` after ``event``, or None when the event changes nothing."""
    try:
        call = decode_call_event(event)
    except PayloadError:
        return None
    if not isinstance(call, (RingingEvent, MissedEvent, EndedEvent)):
        return None
    if not isinstance(call, MissedEvent) and call.direction not in (None, "incoming"):
        return None
    known = current if current is not None and current.get("call_id") == call.call_id else {}
    caller = call.caller or known.get("caller")
    ts = known.get("ts") or (call.started_at if isinstance(call, EndedEvent) else None) or call.ts
    if isinstance(call, RingingEvent):
        return {"caller": caller, "call_id": call.call_id, "ts": ts, "outcome": "ringing", "summary": None}
    if isinstance(call, MissedEvent):
        return {"caller": caller, "call_id": call.call_id, "ts": ts, "outcome": "missed", "summary": None}
    outcome = call.outcome or (call.reason if call.answered is not False else "missed")
    return {"caller": caller, "call_id": call.call_id, "ts": ts, "outcome": outcome, "summary": call.summary}
