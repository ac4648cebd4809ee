"""What the owner is told: a call that ended, a missed call, an SMS, a call-back request (pure functions, no I/O).

Each event becomes a list of ``Notice``: a headline with action buttons, the
transcript (split to Telegram's limit) and, for an answered call, the
caller's audio as a voice message. Every notice has a stable ``part`` name so
the outbox can refuse a second copy when the same event arrives again.
Callback data stays under Telegram's 64 bytes: ``dial:<n>``, ``sms:<n>``,
``block:<n>``, ``tx:<call_id>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from channels.bus_contract.call_payloads import NOT_READY
from channels.telegram.message_text import html_escape, split_text

Buttons = list[list[tuple[str, str]]]

OUTCOMES = {
    "message_taken": "message taken",
    "completed": "completed",
    "no_message": "no message left",
    "caller_hung_up": "caller hung up",
    "failed": "the call failed",
    "interrupted": "cut off: the box stopped mid-call",
}
MISSED_REASONS = {  # why a call went unanswered, when the box says (call/event missed "reason")
    NOT_READY: "the box was starting up and could not speak yet; the network's voicemail took it",
}
MAX_CALLBACK_DATA = 64


@dataclass(frozen=True)
class Notice:
    part: str  # unique within the event: "head", "transcript-1", "voice"
    kind: str  # "text" | "voice"
    payload: dict[str, Any] = field(default_factory=dict)


def when(ts: float | None) -> str:
    if not ts:
        return "unknown time"
    return time.strftime("%d %b %Y %H:%M", time.localtime(ts))


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    total = int(round(seconds))
    minutes, secs = divmod(total, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def number_buttons(number: str | None, call_id: str | None = None) -> Buttons:
    rows: Buttons = []
    if number:
        rows.append([("📞 Call back", f"dial:{number}"), ("💬 Reply by SMS", f"sms:{number}")])
        rows.append([("🚫 Block number", f"block:{number}")])
    if call_id:
        rows.append([("📝 Transcript", f"tx:{call_id}")])
    return [[(label, data) for label, data in row if len(data.encode()) <= MAX_CALLBACK_DATA] for row in rows]


def transcript_lines(utterances: list[dict[str, Any]], persona_name: str) -> list[str]:
    lines = []
    for u in utterances:
        text = str(u.get("text") or "").strip()
        if not text:
            continue
        who = "Caller" if u.get("role") == "caller" else persona_name
        cut = " [interrupted]" if u.get("interrupted") else ""
        lines.append(f"{who}: {text}{cut}")
    return lines


def transcript_notices(utterances: list[dict[str, Any]], persona_name: str, call_id: str) -> list[Notice]:
    lines = transcript_lines(utterances, persona_name)
    if not lines:
        return []
    parts = split_text("\n".join(lines), 4000)
    notices = []
    for i, part in enumerate(parts, start=1):
        header = "<b>Transcript</b>" + (f" ({i}/{len(parts)})" if len(parts) > 1 else "")
        notices.append(Notice(f"transcript-{i}", "text", {"text": f"{header}\n{html_escape(part)}", "parse_mode": "HTML"}))
    return notices


def call_notices(
    event: dict[str, Any], utterances: list[dict[str, Any]], persona_name: str, voice_path: str | None,
    voice_duration_s: float | None = None,
) -> list[Notice]:
    """An answered call that ended: headline + buttons, transcript, the caller's audio."""
    call_id = str(event.get("call_id"))
    caller = event.get("caller")
    message = event.get("message") or {}
    name = message.get("name")
    who = html_escape(caller or "a withheld number") + (f" ({html_escape(name)})" if name else "")
    outcome = OUTCOMES.get(str(event.get("outcome")), str(event.get("outcome") or ""))
    lines = [
        f"📞 <b>Call from {who}</b>",
        f"{when(event.get('started_at') or event.get('ts'))} · {duration_text(event.get('duration_s'))} · {html_escape(outcome)}",
    ]
    if event.get("summary"):
        lines += ["", f"<b>Summary:</b> {html_escape(str(event['summary']))}"]
    details = [(label, message.get(key)) for key, label in
               (("name", "Name"), ("reason", "Reason"), ("callback_number", "Call back on"))]
    if any(value for _, value in details):
        lines.append("")
        lines += [f"<b>{label}:</b> {html_escape(str(value))}" for label, value in details if value]
    callback = message.get("callback_number") or caller
    head = Notice("head", "text", {
        "text": "\n".join(lines), "parse_mode": "HTML", "buttons": number_buttons(callback, call_id),
    })
    notices = [head, *transcript_notices(utterances, persona_name, call_id)]
    if voice_path:
        notices.append(Notice("voice", "voice", {
            "path": voice_path, "caption": f"Caller's audio, {caller or 'withheld'}", "duration": voice_duration_s,
        }))
    return notices


def missed_call_notices(event: dict[str, Any]) -> list[Notice]:
    caller = event.get("caller")
    text = f"📵 <b>Missed call</b> from {html_escape(caller or 'a withheld number')}\n{when(event.get('ts'))}"
    reason = MISSED_REASONS.get(str(event.get("reason")))
    if reason:
        text += f"\n<i>{html_escape(reason)}</i>"
    return [Notice("head", "text", {"text": text, "parse_mode": "HTML", "buttons": number_buttons(caller)})]


def sms_notices(event: dict[str, Any]) -> list[Notice]:
    sender = event.get("from")
    body = str(event.get("text") or "")
    head = f"✉️ <b>SMS from {html_escape(sender or 'unknown')}</b>\n{when(event.get('ts'))}\n\n"
    parts = split_text(body, 3900) or [""]
    notices = []
    for i, part in enumerate(parts, start=1):
        payload: dict[str, Any] = {"text": (head if i == 1 else "") + html_escape(part), "parse_mode": "HTML"}
        if i == len(parts):
            payload["buttons"] = number_buttons(sender)
        notices.append(Notice(f"sms-{i}", "text", payload))
    return notices


CALLBACK_SOURCES = {"widget": "the website chat", "twilio": "a Twilio voicemail"}


def callback_request_notices(event: dict[str, Any]) -> list[Notice]:
    """Someone asked to be called back (the website widget, a voicemail): like a call, with the same buttons."""
    number = event.get("number")
    name = event.get("name")
    source = CALLBACK_SOURCES.get(str(event.get("channel")), str(event.get("channel") or "a channel"))
    if event.get("widget"):
        source += f" ({event['widget']})"
    who = html_escape(str(number or "no number")) + (f" ({html_escape(str(name))})" if name else "")
    lines = [f"🔁 <b>Call back {who}</b>", f"{when(event.get('ts'))} · via {html_escape(source)}"]
    if event.get("note"):
        lines += ["", html_escape(str(event["note"]))]
    if event.get("page"):
        lines += ["", f"<i>from {html_escape(str(event['page']))}</i>"]
    return [Notice("head", "text", {"text": "\n".join(lines), "parse_mode": "HTML",
                                    "buttons": number_buttons(str(number)) if number else []})]


def parse_callback(data: str) -> tuple[str, str] | None:
    """``dial:+7…`` -> (``dial``, ``+7…``); None for anything we did not send."""
    action, sep, value = data.partition(":")
    if not sep or not value or action not in ("dial", "sms", "block", "tx"):
        return None
    return action, value
