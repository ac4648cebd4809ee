"""Call state machine against a fake AT channel: transitions, stragglers, reconcile, hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from drivers.sim7600.call_model import CallSnapshot, CallState, EndReason, normalize_number, numbers_match
from drivers.sim7600.call_state import CallPolicy, CallStateMachine
from drivers.sim7600.parsers import CallerId, parse_clcc_entry
from drivers.sim7600.urc import (
    Busy,
    CallerIdUrc,
    CallListUrc,
    DtmfReceived,
    MissedCall,
    NoCarrier,
    Ring,
    VoiceCallBegin,
    VoiceCallEnd,
)

from .fake_modem import FakeCommander

CALLER = "+79161234567"
POLICY = CallPolicy(
    answer_after_rings=2,
    caller_id_grace_s=0.05,
    ring_timeout_s=0.5,
    reconcile_idle_s=0.3,
    reconcile_call_s=0.2,
    post_call_guard_s=0.3,
    outcome_grace_s=0.1,
    dial_timeout_s=1.0,
)


class FakeModemState:
    def __init__(self) -> None:
        self.calls: list[str] = []  # +CLCC payloads the modem would list

    def answer(self, command: str) -> tuple[list[str], str]:
        if command == "AT+CLCC":
            return [f"+CLCC: {c}" for c in self.calls], "OK"
        if command == "ATA":
            if not self.calls:
                return [], "NO CARRIER"
            self.calls = [self.calls[0].replace(",4,", ",0,", 1)]
            return [], "OK"
        if command in ("AT+CHUP", "ATH"):
            self.calls = []
            return [], "OK"
        if command.startswith("ATD"):
            self.calls = [f'1,0,2,0,0,"{command[3:-1]}",145']
            return [], "OK"
        return [], "OK"


class Hooks:
    def __init__(self) -> None:
        self.log: list[tuple[str, str | None]] = []

    async def call_connected(self, call: CallSnapshot) -> None:
        self.log.append(("connected", call.call_id))

    async def call_disconnected(self, call: CallSnapshot) -> None:
        self.log.append(("disconnected", call.call_id))


@asynccontextmanager
async def running(
    policy: CallPolicy = POLICY,
) -> AsyncIterator[tuple[CallStateMachine, FakeModemState, FakeCommander, list[Any], Hooks]]:
    modem = FakeModemState()
    commander = FakeCommander(modem.answer)
    events: list[Any] = []
    hooks = Hooks()
    machine = CallStateMachine(commander, emit=events.append, policy=policy, hooks=hooks)
    task = asyncio.create_task(machine.run())
    try:
        yield machine, modem, commander, events, hooks
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def types(events: list[Any]) -> list[str]:
    return [e.type if e.type != "call_state" else f"state:{e.call.state}" for e in events]


def incoming(stat: int = 4, number: str = CALLER) -> str:
    return f'1,1,{stat},0,0,"{number}",145'


async def test_answers_after_n_rings_and_ends_on_voice_call_end() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        modem.calls = [incoming()]
        machine.feed(Ring())
        machine.feed(CallerIdUrc(CallerId(CALLER, 145, 0)))
        await until(lambda: machine.snapshot.state is CallState.RINGING)
        await asyncio.sleep(0.1)
        assert "ATA" not in commander.commands
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.ACTIVE)
        assert hooks.log == [("connected", machine.snapshot.call_id)]
        machine.feed(VoiceCallBegin())  # inside ATA's response; already active
        machine.feed(DtmfReceived("9"))
        call_id = machine.snapshot.call_id
        modem.calls = []
        machine.feed(VoiceCallEnd(12))
        machine.feed(NoCarrier())  # straggler
        await until(lambda: machine.snapshot.state is CallState.IDLE)
        await asyncio.sleep(0.05)
        ended = [e for e in events if e.type == "ended"]
        assert len(ended) == 1 and ended[0].reason is EndReason.REMOTE_HANGUP and ended[0].modem_duration_s == 12
        assert hooks.log[-1] == ("disconnected", call_id)
        assert types(events) == [
            "state:ringing",  # with the caller: the AT+CLCC that confirms the first RING gives the number
            "ringing",
            "state:active",
            "answered",
            "dtmf",
            "state:ending",
            "ended",
            "state:idle",
        ]


async def test_lost_end_urcs_are_reconciled_with_clcc() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        modem.calls = [incoming(stat=0)]
        machine.feed(VoiceCallBegin())  # we missed the ringing entirely
        await until(lambda: machine.snapshot.state is CallState.ACTIVE)
        await until(lambda: machine.snapshot.caller == CALLER)  # learned from AT+CLCC
        modem.calls = []  # the call ends, and no URC says so
        await until(lambda: machine.snapshot.state is CallState.IDLE, timeout=1.0)
        assert [e.reason for e in events if e.type == "ended"] == [EndReason.REMOTE_HANGUP]


async def test_missed_call_with_every_kind_of_end_urc_is_one_call() -> None:
    async with running(replace(POLICY, answer_after_rings=None)) as (machine, modem, commander, events, hooks):
        modem.calls = [incoming()]
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.RINGING)
        modem.calls = []
        entry = parse_clcc_entry(incoming(stat=6))
        assert entry is not None
        machine.feed(CallListUrc(entry))
        machine.feed(MissedCall("11:01AM", CALLER))
        machine.feed(NoCarrier())
        await until(lambda: machine.snapshot.state is CallState.IDLE)
        await asyncio.sleep(0.1)
        assert [e.type for e in events if e.type in ("missed", "ended")] == ["missed", "ended"]


async def test_straggler_ring_after_a_call_is_checked_not_trusted() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        modem.calls = [incoming()]
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.RINGING)
        modem.calls = []
        machine.feed(MissedCall("11:01AM", CALLER))
        await until(lambda: machine.snapshot.state is CallState.IDLE)
        machine.feed(Ring())  # late duplicate of the last ring
        await asyncio.sleep(0.1)
        assert machine.snapshot.state is CallState.IDLE
        assert len([e for e in events if e.type == "ended"]) == 1


async def test_missed_call_urc_without_rings_is_still_recorded() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        machine.feed(MissedCall("11:01AM", CALLER))
        await until(lambda: any(e.type == "ended" for e in events))
        missed = [e for e in events if e.type == "missed"]
        assert missed and missed[0].caller == CALLER


async def test_rings_lost_but_clcc_shows_incoming_call_gets_answered() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        modem.calls = [incoming()]  # no URC at all; only the periodic AT+CLCC sees it
        await until(lambda: machine.snapshot.state is CallState.ACTIVE, timeout=3.0)
        assert machine.snapshot.caller == CALLER


async def test_dial_busy_after_clcc_disconnect() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        call_id = await machine.dial("+7 916 111-22-33")
        assert "ATD+79161112233;" in commander.commands
        entry = parse_clcc_entry('1,0,6,0,0,"+79161112233",145')
        assert entry is not None
        modem.calls = []
        machine.feed(CallListUrc(entry))
        machine.feed(Busy())  # arrives after the +CLCC: refines the reason
        await until(lambda: machine.snapshot.state is CallState.IDLE)
        ended = [e for e in events if e.type == "ended"]
        assert ended[0].call_id == call_id and ended[0].reason is EndReason.BUSY


async def test_local_hangup_and_abort() -> None:
    async with running() as (machine, modem, commander, events, hooks):
        modem.calls = [incoming()]
        machine.feed(Ring())
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.ACTIVE)
        await machine.hangup()
        assert machine.snapshot.state is CallState.IDLE
        assert commander.commands[-1] == "AT+CHUP" or "AT+CHUP" in commander.commands
        assert [e.reason for e in events if e.type == "ended"] == [EndReason.LOCAL_HANGUP]
        modem.calls = [incoming()]
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.RINGING, timeout=1.0)
        machine.abort(EndReason.MODEM_LOST)
        assert machine.snapshot.state is CallState.IDLE
        assert [e.reason for e in events if e.type == "ended"][-1] is EndReason.MODEM_LOST


def test_number_matching() -> None:
    assert normalize_number("+7 (916) 123-45-67") == "+79161234567"
    assert numbers_match("+79161234567", "89161234567")
    assert not numbers_match("+79161234567", "+79161234568")
    assert not numbers_match("", "123")
    policy = CallPolicy(blocked_numbers=("+79990001122", "withheld"))
    assert policy.is_blocked("89990001122", False)
    assert policy.is_blocked(None, True)
    assert not policy.is_blocked(CALLER, False)


def test_event_payloads_are_json_ready() -> None:
    import json

    from drivers.sim7600.call_model import CallDirection
    from drivers.sim7600.events import CallEnded, event_payload

    ended = CallEnded(
        call_id="c1",
        caller=CALLER,
        direction=CallDirection.INCOMING,
        reason=EndReason.MISSED,
        duration_s=0.0,
        answered=False,
        modem_duration_s=None,
        ts=1.5,
    )
    payload = json.loads(json.dumps(event_payload(ended)))
    assert payload["type"] == "ended" and payload["reason"] == "missed" and payload["call_id"] == "c1"
