"""``last_call`` from the call events."""

from __future__ import annotations

from channels.remote_bridge.last_call import next_last_call


def test_ringing_then_ended_keeps_caller_and_start_time() -> None:
    ringing = next_last_call(None, {"type": "ringing", "call_id": "c1", "ts": 10.0, "caller": "+7916"})
    assert ringing == {"caller": "+7916", "call_id": "c1", "ts": 10.0, "outcome": "ringing", "summary": None}
    assert next_last_call(ringing, {"type": "answered", "call_id": "c1", "ts": 11.0}) is None
    ended = next_last_call(ringing, {"type": "ended", "call_id": "c1", "ts": 30.0, "caller": None, "duration_s": 19,
                                     "reason": "caller_hung_up", "outcome": "message_taken", "summary": "Call Bob"})
    assert ended == {"caller": "+7916", "call_id": "c1", "ts": 10.0, "outcome": "message_taken", "summary": "Call Bob"}


def test_unanswered_missed_outgoing_and_junk() -> None:
    ringing = next_last_call(None, {"type": "ringing", "call_id": "c2", "ts": 5.0, "caller": "+1"})
    unanswered = next_last_call(ringing, {"type": "ended", "call_id": "c2", "ts": 9.0, "answered": False,
                                          "reason": "remote_hangup", "summary": None})
    assert unanswered is not None and unanswered["outcome"] == "missed" and unanswered["caller"] == "+1"
    answered = next_last_call(None, {"type": "ended", "call_id": "c3", "ts": 9.0, "reason": "local_hangup"})
    assert answered is not None and answered["outcome"] == "local_hangup" and answered["caller"] is None
    missed = next_last_call(None, {"type": "missed", "call_id": "c4", "ts": 1.0, "caller": "+2"})
    assert missed is not None and missed["outcome"] == "missed"
    assert next_last_call(None, {"type": "ringing", "call_id": "c5", "direction": "outgoing", "caller": "+3"}) is None
    assert next_last_call(None, "not an event") is None
    assert next_last_call(None, {"type": "ringing"}) is None
