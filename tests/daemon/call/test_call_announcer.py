"""The one writer of call/state and call/event: every call's events once, whichever line and whoever ended it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from channels.bus_contract.call_payloads import EndedEvent, UtteranceEvent
from channels.bus_contract.topics import CALL_EVENT, CALL_STATE, Topics
from daemon.call.announcer import CallAnnouncer
from daemon.call.service import CallService
from daemon.modem.modem_service import ModemService
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from drivers.sim7600 import (
    CallAnswered,
    CallDirection,
    CallEnded,
    CallMissed,
    CallRinging,
    CallSnapshot,
    CallState,
    CallStateChanged,
    EndReason,
    ModemEvent,
)
from drivers.sim7600.event_hub import EventHub
from tests.calls.call_harness import RecordingBus, box_config

CALLER = "+79161234567"


class Published:
    """A stand-in bus: what was published, in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish_event(self, suffix: str, payload: dict[str, Any]) -> None:
        self.messages.append((suffix, payload))

    def publish_state(self, suffix: str, payload: dict[str, Any]) -> None:
        self.messages.append((suffix, payload))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [p for s, p in self.messages if s == CALL_EVENT and kind in (None, p["type"])]

    def states(self) -> list[dict[str, Any]]:
        return [p for s, p in self.messages if s == CALL_STATE]


def announcer() -> tuple[CallAnnouncer, Published]:
    bus = Published()
    return CallAnnouncer(bus), bus  # type: ignore[arg-type]


def snapshot(state: CallState, call_id: str | None = "c1", since: float = 10.0) -> CallStateChanged:
    call = CallSnapshot(state, call_id if state is not CallState.IDLE else None,
                        CALLER if state is not CallState.IDLE else None, since)
    return CallStateChanged(call=call, previous=CallState.IDLE, ts=since)


def ended(call_id: str = "c1", *, answered: bool = True, reason: EndReason = EndReason.REMOTE_HANGUP,
          direction: CallDirection = CallDirection.INCOMING) -> CallEnded:
    return CallEnded(call_id=call_id, caller=CALLER, direction=direction, reason=reason, duration_s=12.345,
                     answered=answered, modem_duration_s=None, ts=20.0)


def flows_ending(call_id: str = "c1") -> EndedEvent:
    return EndedEvent(call_id=call_id, ts=21.0, caller=CALLER, direction="incoming", answered=True, duration_s=11.0,
                      reason="remote_hangup", outcome="message_taken", message={}, summary="Call John",
                      persona="lidia", started_at=9.0, record_dir="/calls/c1", channel="gsm")


def test_a_missed_call_no_flow_took_rings_is_missed_and_ends_once() -> None:
    calls, bus = announcer()
    for event in (snapshot(CallState.RINGING),
                  CallRinging(call_id="c1", caller=CALLER, withheld=False, direction=CallDirection.INCOMING, ts=10.0),
                  CallMissed(call_id="c1", caller=CALLER, ts=15.0),
                  ended(answered=False, reason=EndReason.MISSED), snapshot(CallState.IDLE, since=20.0)):
        calls.modem_event(event)
    assert [e["type"] for e in bus.events()] == ["ringing", "missed", "ended"]
    assert bus.events("ended")[0] == {
        "type": "ended", "call_id": "c1", "ts": 20.0, "caller": CALLER, "direction": "incoming", "answered": False,
        "duration_s": 12.35, "reason": "missed", "summary": None,
    }
    assert [s["state"] for s in bus.states()] == ["ringing", "idle"]
    assert bus.states()[0] == {"state": "ringing", "call_id": "c1", "caller": CALLER, "since": 10.0}


def test_a_call_the_flow_took_ends_with_the_flows_ending_whichever_comes_first() -> None:
    for order in ("driver first", "flow first"):
        calls, bus = announcer()
        calls.modem_event(CallAnswered(call_id="c1", caller=CALLER, direction=CallDirection.INCOMING, ts=9.0))
        calls.hold_ending("c1")
        if order == "driver first":
            calls.modem_event(ended())
            assert not bus.events("ended")  # held for the flow
            calls.flow_ended(flows_ending())
        else:
            calls.flow_ended(flows_ending())
        calls.release("c1")
        calls.modem_event(ended())  # late (or again): dropped
        assert [e["type"] for e in bus.events()] == ["answered", "ended"], order
        assert bus.events("ended")[0]["outcome"] == "message_taken"


def test_a_flow_gone_without_an_ending_lets_the_drivers_out() -> None:
    calls, bus = announcer()
    calls.hold_ending("c1")
    calls.modem_event(ended())
    calls.release("c1")  # e.g. the service stopped mid-call
    assert [(e["type"], e["reason"]) for e in bus.events()] == [("ended", "remote_hangup")]
    calls, bus = announcer()
    calls.hold_ending("c2")
    calls.release("c2")
    calls.modem_event(ended("c2"))  # comes after the flow is gone
    assert len(bus.events("ended")) == 1


def test_a_line_call_is_active_while_it_lasts_then_the_modems_state_comes_back() -> None:
    calls, bus = announcer()
    calls.line_answered("b1", None, "browser", 100.0)
    calls.utterance(UtteranceEvent(call_id="b1", ts=101.0, role="secretary", text="Hello", start_s=0.0, end_s=1.0,
                                   interrupted=False, source="greeting"))
    calls.flow_ended(flows_ending("b1"))
    calls.line_over("b1")
    assert [e["type"] for e in bus.events()] == ["answered", "utterance", "ended"]
    assert bus.events("answered")[0]["channel"] == "browser"
    active, idle = bus.states()
    assert active == {"state": "active", "call_id": "b1", "caller": None, "since": 100.0, "channel": "browser"}
    assert idle["state"] == "idle" and idle["call_id"] is None and "channel" not in idle

    calls.line_answered("b2", None, "twilio", 200.0)
    calls.modem_event(snapshot(CallState.RINGING, "c9"))  # a phone call rings meanwhile
    calls.line_over("b2")
    assert bus.states()[-1]["call_id"] == "c9" and bus.states()[-1]["state"] == "ringing"


# -- the real driver (built-in simulator) and the call service, no engines ------------------

@contextlib.asynccontextmanager
async def phone_box(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[ModemService, RecordingStates]]:
    settings = box_config(tmp_path / "data", modem__answer_after_rings=2, **config)
    bus = RecordingStates(Topics("secretary", settings.box_id))
    relay: EventHub[ModemEvent] = EventHub()
    modem = ModemService(bus, settings.modem, None, settings.data_dir, relay=relay)
    calls = CallService(bus, settings, relay, lambda: modem.modem, lambda name: None)  # no engines: flows fail
    supervisor = Supervisor(RestartPolicy(0.5, 5, 60), stop_timeout_s=10)
    for service in (modem, calls):
        supervisor.add(service)
    running = asyncio.create_task(supervisor.run())
    try:
        async with asyncio.timeout(30):
            while modem.modem is None or not modem.modem.connected:
                await asyncio.sleep(0.05)
        yield modem, bus
    finally:
        supervisor.stop()
        await running


class RecordingStates(RecordingBus):
    """The call harness's recording bus, keeping ``call/state`` too."""

    def __init__(self, topics: Topics) -> None:
        super().__init__(topics)
        self.states: list[dict[str, Any]] = []

    def publish_state(self, suffix: str, payload: Any) -> None:
        super().publish_state(suffix, payload)
        if suffix == CALL_STATE:
            self.states.append(payload)

    def events(self, call_id: str) -> list[str]:
        return [p["type"] for s, p in self.published if s == CALL_EVENT and p.get("call_id") == call_id]

    def rang(self, known: set[str]) -> str | None:
        """The id of a call that rang and is not one of ``known``."""
        return next((p["call_id"] for s, p in self.published
                     if s == CALL_EVENT and p["type"] == "ringing" and p["call_id"] not in known), None)


async def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return value


@pytest.mark.slow
async def test_ringing_missed_blocked_and_answered_calls_each_announce_once(tmp_path: Path) -> None:
    async with phone_box(tmp_path, modem__blocked_numbers=["+74950000000"]) as (modem, bus):
        sim = modem.simulator

        # A blocked number: rings (announced), is rejected, ends; no flow runs for it.
        await sim.incoming_call("+74950000000")
        blocked = await until(lambda: bus.rang(set()), 10, "the blocked call")
        await until(lambda: "ended" in bus.events(blocked), 10, "the rejection")
        await until(lambda: modem.modem.call.state is CallState.IDLE, 10, "the modem idle again")
        # The caller gives up before the second ring: missed, then ended.
        await sim.incoming_call(CALLER)
        missed = await until(lambda: bus.rang({blocked}), 10, "the second call")
        await sim.caller_hangs_up()
        await until(lambda: "ended" in bus.events(missed), 10, "the missed call's end")
        await until(lambda: modem.modem.call.state is CallState.IDLE, 10, "the modem idle again")
        # Answered: the flow takes it, fails (no engines), hangs up; the driver ends it too. One ended, the flow's.
        await sim.incoming_call(CALLER)
        answered = await until(lambda: bus.rang({blocked, missed}), 10, "the third call")
        await until(lambda: "ended" in bus.events(answered), 30, "the failed flow's end")
        await until(lambda: modem.modem.call.state is CallState.IDLE, 10, "the modem idle again")
        await asyncio.sleep(0.5)  # room for a second ending, were there one

        assert bus.events(blocked) == ["ringing", "ended"]
        assert bus.events(missed) == ["ringing", "missed", "ended"]
        assert bus.events(answered) == ["ringing", "answered", "ended"]
        endings = {p["call_id"]: p for s, p in bus.published if s == CALL_EVENT and p["type"] == "ended"}
        assert endings[blocked]["reason"] == "rejected" and "outcome" not in endings[blocked]
        assert endings[missed]["reason"] == "missed" and endings[missed]["answered"] is False
        assert endings[answered]["outcome"] == "failed" and endings[answered]["channel"] == "gsm"
        assert bus.states[0]["state"] == "idle"  # call/state is there from the start
        assert {s["state"] for s in bus.states} >= {"ringing", "active", "idle"} and bus.states[-1]["state"] == "idle"
