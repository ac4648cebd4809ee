"""``last_call``: the newest incoming call, as the remote "last caller" sensor shows it.

Built from ``call/event``: ``ringing`` starts a new last call (outcome
``ringing``), ``missed`` and ``ended`` complete it (outcome, summary). The
payload is ``{caller, call_id, ts, outcome, summary}``; ``ts`` is when the
call came in. Outgoing calls are not callers and change nothing.
"""

from __future__ import annotations

from typing import Any

LastCall = dict[str, Any]


def next_last_call(current: LastCall | None, event: Any) -> LastCall | None:
    """The new ``last_call`` after ``event``, or None when the event changes nothing."""
    if not isinstance(event, dict) or not isinstance(event.get("call_id"), str):
        return None
    if event.get("direction", "incoming") != "incoming":
        return None
    kind, call_id = event.get("type"), event["call_id"]
    known = current if current is not None and current.get("call_id") == call_id else {}
    caller = event.get("caller") or known.get("caller")
    ts = known.get("ts") or event.get("started_at") or event.get("ts")
    if kind == "ringing":
        return {"caller": caller, "call_id": call_id, "ts": ts, "outcome": "ringing", "summary": None}
    if kind == "missed":
        return {"caller": caller, "call_id": call_id, "ts": ts, "outcome": "missed", "summary": None}
    if kind == "ended":
        outcome = event.get("outcome") or (event.get("reason") if event.get("answered", True) else "missed")
        return {"caller": caller, "call_id": call_id, "ts": ts, "outcome": outcome, "summary": event.get("summary")}
    return None
