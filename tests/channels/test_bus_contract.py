"""The bus contract: every payload reads back as it was written, a bad one says which field, the shapes match design.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from channels.bus_contract import topics
from channels.bus_contract.box_payloads import ENGINE_STATES, SERVICE_STATES, BoxStatus, EngineState, ServiceState
from channels.bus_contract.call_payloads import (
    CALL_EVENTS,
    CALL_STATES,
    DIRECTIONS,
    AnsweredEvent,
    CallState,
    DtmfEvent,
    EndedEvent,
    MissedEvent,
    RingingEvent,
    UtteranceEvent,
    decode_call_event,
)
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.message_payloads import CallbackRequestEvent, SmsReceivedEvent
from channels.bus_contract.modem_payloads import (
    ModemConnectedEvent,
    ModemDisconnectedEvent,
    ModemPorts,
    ModemState,
    PcmAlarmEvent,
    decode_modem_event,
)
from daemon.runtime.service import ServiceState as SupervisorState
from drivers.sim7600 import CallDirection
from drivers.sim7600 import CallState as DriverCallState
from engines.engine_status import EngineState as EngineVocabulary

PORTS = ModemPorts(at="/dev/ttyUSB2", audio="/dev/ttyUSB4")
TAKEN = EndedEvent(
    call_id="c1", ts=1700000100.5, caller="+79161234567", direction="incoming", answered=True, duration_s=72.4,
    reason="remote_hangup", outcome="message_taken", message={"name": "John", "reason": "the invoice"},
    summary="John called about the invoice.", persona="lidia", started_at=1700000028.1,
    record_dir="/var/lib/secretary/calls/c1", channel="gsm",
)
PAYLOADS: list[Any] = [
    ServiceState(state="running", detail="connected", restarts=2, since=1700000000.25),
    EngineState(state="degraded", backend="piper", device="cpu", model="ru_RU-irina", detail="fallback",
                load_s=1.25, warmup_s=0.5, failures=("xtts: no GPU",), since=1700000000.0),
    ModemState(sim="ready", registered=True, operator="SimTel", signal_dbm=-71, ports=PORTS, connected=True,
               own_number="+79160000000", problems=()),
    CallState(state="ringing", call_id="c1", caller="+79161234567", since=1700000000.0),
    CallState(state="active", call_id="b1", caller=None, since=1700000000.0, channel="browser"),
    CallState(state="idle", since=1700000000.0),
    RingingEvent(call_id="c1", ts=1.5, caller="+79161234567", withheld=False, direction="incoming"),
    AnsweredEvent(call_id="c1", ts=2.0, caller="+79161234567", direction="incoming"),
    AnsweredEvent(call_id="t1", ts=2.0, caller=None, direction="incoming", channel="twilio"),
    DtmfEvent(call_id="c1", ts=3.0, digit="#"),
    MissedEvent(call_id="c2", ts=4.0, caller=None),
    UtteranceEvent(call_id="c1", ts=5.0, role="secretary", text="Hello!", start_s=0.1, end_s=1.4, interrupted=False,
                   source="greeting", latency_ms={"greeting_ms": 25.0}),
    UtteranceEvent(call_id="c1", ts=6.0, role="caller", text="Hi", start_s=2.0, end_s=2.5, interrupted=False,
                   source="stt"),
    EndedEvent(call_id="c2", ts=9.0, caller="+1", direction="incoming", answered=False, duration_s=0.0,
               reason="missed"),
    TAKEN,
    SmsReceivedEvent(sender="+79161234567", text="Перезвоните мне", ts=1700000000.0),
    CallbackRequestEvent(id="a1b2c3d4e5f6", number="+79161234567", channel="widget", ts=1700000000.0, widget="site",
                         name="Anna", note="About the quote", page="https://example.com", session="s1"),
    PcmAlarmEvent(kind="downlink_silent", detail="no frames for 2 s", call_id="c1", ts=1.0),
    ModemConnectedEvent(ports=PORTS, ts=1.0),
    ModemDisconnectedEvent(reason="unplugged", ts=2.0),
]
CALL_EVENT_PAYLOADS = [p for p in PAYLOADS if isinstance(p, tuple(CALL_EVENTS.values()))]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_every_payload_reads_back_as_it_was_written(payload: Any) -> None:
    wire = json.loads(json.dumps(payload.encode()))  # what a reader gets from the broker
    assert type(payload).decode(wire) == payload
    assert type(payload).decode(wire).encode() == wire


def test_status_is_plain_text() -> None:
    assert BoxStatus(online=True).encode() == "online" and BoxStatus(online=False).encode() == "offline"
    assert BoxStatus.decode("online").online and not BoxStatus.decode(b"offline").online


def test_one_decoder_reads_any_call_event_and_any_modem_event() -> None:
    for event in CALL_EVENT_PAYLOADS:
        assert decode_call_event(event.encode()) == event
    for event in (PcmAlarmEvent(kind="enable_failed"), ModemConnectedEvent(), ModemDisconnectedEvent(reason="x")):
        assert decode_modem_event(event.encode()) == event


@pytest.mark.parametrize(("decode", "payload", "says"), [
    (BoxStatus.decode, {"online": True}, "status: the payload must be the text"),
    (BoxStatus.decode, "maybe", "status: the payload must be online or offline"),
    (ServiceState.decode, {"state": "running", "restarts": "many"}, "restarts must be a whole number"),
    (ServiceState.decode, {"detail": "x"}, "services/<name>/state: state is missing"),
    (EngineState.decode, ["ready"], "engines/<name>/state: the payload must be a JSON object, got list"),
    (EngineState.decode, {"state": "ready", "backend": 1}, "backend must be a string, got 1"),
    (EngineState.decode, {"state": "ready", "failures": "none"}, "failures must be a list of strings"),
    (ModemState.decode, {"registered": "yes"}, "modem/state: registered must be true or false, got 'yes'"),
    (ModemState.decode, {"signal_dbm": float("nan")}, "signal_dbm must be a number"),
    (ModemState.decode, {"ports": {"at": 5}}, "ports: at must be a string"),
    (CallState.decode, {"state": 3}, "call/state: state must be a string, got 3"),
    (CallState.decode, {"state": "dialing"}, "call/state: state must be one of idle, ringing, active, ending"),
    (CallState.decode, None, "call/state: the payload must be a JSON object, got NoneType"),
    (decode_call_event, {"call_id": "c1"}, "call/event: type is missing"),
    (decode_call_event, {"type": "waved", "call_id": "c1"}, "call/event: type must be one of ringing, answered"),
    (RingingEvent.decode, {"type": "ringing"}, "call/event ringing: call_id is missing"),
    (RingingEvent.decode, {"type": "ringing", "call_id": "c1", "direction": "sideways"}, "direction must be one of"),
    (AnsweredEvent.decode, {"type": "answered", "call_id": "c1", "caller": 7916}, "caller must be a string"),
    (DtmfEvent.decode, {"type": "dtmf", "call_id": "c1"}, "call/event dtmf: digit is missing"),
    (MissedEvent.decode, {"type": "missed", "call_id": "c1", "ts": "now"}, "call/event missed: ts must be a number"),
    (UtteranceEvent.decode, {"type": "utterance", "call_id": "c1", "role": "robot", "text": "x"}, "role must be one of"),
    (UtteranceEvent.decode, {"type": "utterance", "call_id": "c1", "role": "caller", "text": "x", "latency_ms": "950"},
     "latency_ms must be an object"),
    (EndedEvent.decode, {"type": "ended", "call_id": "c1", "duration_s": "abc"}, "duration_s must be a number"),
    (EndedEvent.decode, {"type": "ended", "call_id": "c1", "answered": "no"}, "answered must be true or false"),
    (SmsReceivedEvent.decode, {"type": "received", "from": "+1"}, "sms/event: text is missing"),
    (SmsReceivedEvent.decode, {"type": "sent", "text": "x"}, "sms/event: type must be one of received"),
    (CallbackRequestEvent.decode, {"type": "callback_request", "id": "x", "number": "+1"}, "channel is missing"),
    (decode_modem_event, {"type": "pcm_alarm"}, "modem/event pcm_alarm: kind is missing"),
])
def test_a_payload_that_does_not_fit_says_which_field(decode: Callable[[Any], Any], payload: Any, says: str) -> None:
    with pytest.raises(PayloadError) as caught:
        decode(payload)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_absent_keys_read_as_none_and_unknown_keys_are_left_alone() -> None:
    assert CallState.decode({"state": "active", "caller": "+7916", "new_key": 1}) == CallState(state="active",
                                                                                             caller="+7916")
    assert ModemState.decode({"sim": "ready", "signal_dbm": -80, "ports": {}}).ports == ModemPorts()
    assert EndedEvent.decode({"type": "ended", "call_id": "a", "reason": "remote_hangup"}).reason == "remote_hangup"


# design.md, "MQTT": the keys each message must carry.
DESIGN_KEYS = {
    "modem/state": {"sim", "registered", "operator", "signal_dbm", "ports"},
    "call/state": {"state", "call_id", "caller", "since"},
    "call/event": {"type", "call_id", "ts"},
    "utterance": {"role", "text"},
    "ended": {"duration_s", "reason", "summary"},
    "engines/<name>/state": {"state", "backend", "device", "detail"},
}


def test_the_wire_shapes_are_design_mds() -> None:
    modem, engine = PAYLOADS[2].encode(), PAYLOADS[1].encode()
    assert DESIGN_KEYS["modem/state"] <= modem.keys()
    assert set(modem) == DESIGN_KEYS["modem/state"] | {"connected", "own_number", "problems"}
    assert set(CallState(state="idle").encode()) == DESIGN_KEYS["call/state"]
    assert set(CallState(state="active", channel="twilio").encode()) == DESIGN_KEYS["call/state"] | {"channel"}
    assert DESIGN_KEYS["engines/<name>/state"] <= engine.keys()
    assert set(ServiceState(state="running").encode()) == {"state", "detail", "restarts", "since"}
    for event in CALL_EVENT_PAYLOADS:
        assert DESIGN_KEYS["call/event"] <= event.encode().keys()
    assert DESIGN_KEYS["utterance"] <= PAYLOADS[11].encode().keys()
    modem_ending = EndedEvent(call_id="c2", reason="missed").encode()
    assert DESIGN_KEYS["ended"] <= modem_ending.keys()
    assert set(modem_ending) == {"type", "call_id", "ts", "caller", "direction", "answered", "duration_s", "reason",
                                 "summary"}
    assert set(TAKEN.encode()) == set(modem_ending) | {"outcome", "message", "persona", "started_at", "record_dir",
                                                       "channel"}
    assert set(SmsReceivedEvent(sender=None, text="x").encode()) == {"type", "from", "text", "ts"}


def test_the_contracts_vocabularies_are_the_daemons() -> None:
    assert CALL_STATES == tuple(s.value for s in DriverCallState)
    assert DIRECTIONS == tuple(d.value for d in CallDirection)
    assert ENGINE_STATES == tuple(s.value for s in EngineVocabulary)
    assert SERVICE_STATES == tuple(s.value for s in SupervisorState)


def test_topics_of_one_box() -> None:
    box = topics.Topics("secretary", "box-1")
    assert box.status == "secretary/box-1/status" and box.call_event == "secretary/box-1/call/event"
    assert box.engine_state("stt") == "secretary/box-1/engines/stt/state"
    assert box.command("sms/send") == "secretary/box-1/cmd/sms/send" and box.command_filter == "secretary/box-1/cmd/#"
    assert box.command_verb("secretary/box-1/cmd/sms/send") == "sms/send"
    assert box.command_verb("secretary/box-2/cmd/dial") is None and box.command_verb("secretary/box-1/cmd/") is None
    assert box.reply("telegram") == "secretary/box-1/reply/telegram"
    assert box.suffix("secretary/box-1/modem/state") == "modem/state" and box.suffix("other/x") is None
    assert topics.service_name(topics.service_state("modem")) == "modem"
    assert topics.engine_name("engines//state") is None
    assert topics.is_state(topics.STATUS) and topics.is_state(topics.CALL_STATE) and not topics.is_state("call/event")
    assert all(topics.matches(f, s) for f, s in [(topics.EVERY_ENGINE_STATE, "engines/tts/state"),
                                                 (topics.COMMAND_FILTER, "cmd/sms/send")])
    for readers in (topics.WEB_PAGE_TOPICS, topics.TELEGRAM_TOPICS, topics.BRIDGED_BY_DEFAULT, topics.DOCTOR_TOPICS):
        assert topics.STATUS in readers
