"""What the owner reads: notices built from bus events (pure functions) and the /status, /calls texts."""

from __future__ import annotations

from channels.bus_contract.call_payloads import NOT_READY
from channels.telegram.chat_sessions import ChatSessions
from channels.telegram.notifications import (
    call_notices,
    missed_call_notices,
    number_buttons,
    parse_callback,
    sms_notices,
)
from channels.telegram.status_text import calls_text, status_text

EVENT = {
    "type": "ended", "call_id": "20261124-1403-ab12", "caller": "+79161234567", "duration_s": 72.4,
    "outcome": "message_taken", "summary": "John <Peters> called about the invoice & wants a call back.",
    "message": {"name": "John", "reason": "invoice", "callback_number": "+79160000000"}, "started_at": 1.8e9,
}


def test_a_call_notice_has_the_headline_buttons_transcript_and_voice_in_that_order() -> None:
    utterances = [
        {"role": "secretary", "text": "Hello, Lidia speaking."},
        {"role": "caller", "text": "Hi, it's John <again>."},
        {"role": "secretary", "text": "Thank you, John", "interrupted": True},
        {"role": "caller", "text": "  "},
    ]
    notices = call_notices(EVENT, utterances, "Lidia", "/data/telegram/voice/x.ogg", 70.2)
    assert [n.part for n in notices] == ["head", "transcript-1", "voice"]
    head = notices[0].payload
    assert head["parse_mode"] == "HTML"
    assert "+79161234567 (John)" in head["text"] and "1 min 12 s" in head["text"] and "message taken" in head["text"]
    assert "John &lt;Peters&gt; called about the invoice &amp; wants" in head["text"]
    assert "<b>Call back on:</b> +79160000000" in head["text"]
    data = [d for row in head["buttons"] for _, d in row]
    assert data == ["dial:+79160000000", "sms:+79160000000", "block:+79160000000", "tx:20261124-1403-ab12"]
    transcript = notices[1].payload["text"]
    assert transcript.splitlines()[1:] == [
        "Lidia: Hello, Lidia speaking.", "Caller: Hi, it's John &lt;again&gt;.", "Lidia: Thank you, John [interrupted]",
    ]
    assert notices[2].kind == "voice" and notices[2].payload["duration"] == 70.2


def test_a_long_transcript_is_split_under_telegrams_limit_and_a_missing_record_sends_only_the_headline() -> None:
    utterances = [{"role": "caller", "text": f"sentence number {i} " * 20} for i in range(60)]
    notices = call_notices({**EVENT, "caller": None, "message": {}}, utterances, "Lidia", None)
    parts = [n for n in notices if n.part.startswith("transcript-")]
    assert len(parts) > 1 and all(len(n.payload["text"]) <= 4096 for n in parts)
    assert parts[0].payload["text"].startswith(f"<b>Transcript</b> (1/{len(parts)})")
    assert "withheld" in notices[0].payload["text"]
    assert [d for row in notices[0].payload["buttons"] for _, d in row] == ["tx:20261124-1403-ab12"]
    assert [n.part for n in call_notices(EVENT, [], "Lidia", None)] == ["head"]


def test_missed_calls_and_sms() -> None:
    missed = missed_call_notices({"caller": "+74950000000", "ts": 1.8e9})
    assert missed[0].payload["text"].startswith("📵 <b>Missed call</b> from +74950000000")
    assert "starting up" not in missed[0].payload["text"]  # no reason given: none told
    not_ready = missed_call_notices({"caller": "+74950000000", "ts": 1.8e9, "reason": NOT_READY})
    assert "starting up and could not speak yet" in not_ready[0].payload["text"]
    interrupted = call_notices({**EVENT, "outcome": "interrupted"}, [], "Lidia", None)
    assert "cut off: the box stopped mid-call" in interrupted[0].payload["text"]
    sms = sms_notices({"from": "+74951112233", "text": "a" * 9000, "ts": 1.8e9})
    assert len(sms) == 3 and all(len(n.payload["text"]) <= 4096 for n in sms)
    assert "buttons" in sms[-1].payload and "buttons" not in sms[0].payload


def test_callback_data_is_parsed_strictly_and_kept_under_64_bytes() -> None:
    assert parse_callback("dial:+79161234567") == ("dial", "+79161234567")
    assert parse_callback("tx:abc") == ("tx", "abc")
    for bad in ("", "dial", "dial:", "rm:-rf", "exec:ls"):
        assert parse_callback(bad) is None
    rows = number_buttons("+" + "1" * 70, "c")
    assert all(len(d.encode()) <= 64 for row in rows for _, d in row)


def test_status_and_calls_texts() -> None:
    state = {
        "status": "online",
        "modem/state": {"sim": "ready", "registered": True, "operator": "MegaFon", "signal_dbm": -71},
        "call/state": {"state": "active", "caller": "+7916"},
        "engines/stt/state": {"state": "ready", "backend": "faster_whisper", "device": "cpu"},
        "engines/llm/state": {"state": "failed", "backend": None, "detail": "no backend"},
        "services/modem/state": {"state": "running"},
        "services/telegram/state": {"state": "degraded", "detail": "bus not connected"},
    }
    text = status_text(state, connected=True)
    assert "Box: online" in text and "SIM ready, registered, MegaFon, signal -71 dBm" in text
    assert "Call: active with +7916" in text and "stt: ready (faster_whisper, cpu)" in text
    assert "llm: failed - no backend" in text and "telegram: degraded - bus not connected" in text
    assert "not reachable" in status_text({}, connected=False)
    assert calls_text([]) == "No calls yet."
    listed = calls_text([{"caller": None, "duration_s": 5, "outcome": "no_message", "summary": "Silence."}])
    assert "withheld · 5 s · no message left" in listed and "Silence." in listed


def test_chat_sessions_are_per_user_and_bounded() -> None:
    sessions = ChatSessions(turns=2)
    a, b = sessions.of(1), sessions.of(2)
    for n in range(5):
        a.add_exchange(f"q{n}", f"a{n}")
    assert [m["text"] for m in a.messages()] == ["q3", "a3", "q4", "a4"]
    assert b.messages() == [] and sessions.of(1) is a
    none = ChatSessions(turns=0).of(1)
    none.add_exchange("q", "a")
    assert none.messages() == []
