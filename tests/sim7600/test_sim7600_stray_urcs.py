"""Stray call URCs (issue 18 item 8): the call state machine believes a new call only once AT+CLCC lists it.

Against the fake AT channel of test_sim7600_call_state.py; the same cases
over the pty simulator and the whole box are in tests/faults/test_bogus_urcs.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from drivers.sim7600.call_model import CallState
from drivers.sim7600.call_state import CallStateMachine
from drivers.sim7600.parsers import parse_clcc_entry
from drivers.sim7600.urc import CallListUrc, Ring, VoiceCallBegin

from .fake_modem import FakeCommander
from .test_sim7600_call_state import CALLER, POLICY, FakeModemState, incoming, until

STRAY = '1,1,4,0,0,"+15551234",145'


class FlakyClcc(FakeModemState):
    """A modem whose AT+CLCC answers ERROR (e.g. busy): the URC is trusted then, as before."""

    def answer(self, command: str) -> tuple[list[str], str]:
        if command == "AT+CLCC":
            return [], "ERROR"
        return super().answer(command)


@asynccontextmanager
async def machine_on(modem: FakeModemState) -> AsyncIterator[tuple[CallStateMachine, FakeCommander, list[Any]]]:
    commander = FakeCommander(modem.answer)
    events: list[Any] = []
    machine = CallStateMachine(commander, emit=events.append, policy=POLICY)
    task = asyncio.create_task(machine.run())
    try:
        await until(lambda: "AT+CLCC" in commander.commands)  # the start-up reconcile
        yield machine, commander, events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def clcc(payload: str) -> CallListUrc:
    entry = parse_clcc_entry(payload)
    assert entry is not None
    return CallListUrc(entry)


def ignored(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "ignored" in r.getMessage()]


async def test_a_stray_ringing_clcc_makes_no_call_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    async with machine_on(FakeModemState()) as (machine, commander, events):
        asked = commander.commands.count("AT+CLCC")
        machine.feed(clcc(STRAY))
        await until(lambda: commander.commands.count("AT+CLCC") > asked)
        await asyncio.sleep(POLICY.ring_timeout_s + 0.3)  # past the ring timeout and the call poll
        assert machine.snapshot.state is CallState.IDLE
        assert events == []
    assert len(ignored(caplog)) == 1 and "+CLCC" in ignored(caplog)[0]


async def test_a_lone_voice_call_begin_answers_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async with machine_on(FakeModemState()) as (machine, commander, events):
        machine.feed(VoiceCallBegin())
        await asyncio.sleep(0.3)
        assert machine.snapshot.state is CallState.IDLE
        assert events == []
        assert "ATA" not in commander.commands
    assert len(ignored(caplog)) == 1 and "VOICE CALL: BEGIN" in ignored(caplog)[0]


async def test_a_stray_ring_makes_no_call() -> None:
    async with machine_on(FakeModemState()) as (machine, commander, events):
        machine.feed(Ring())
        await asyncio.sleep(0.3)
        assert machine.snapshot.state is CallState.IDLE and events == []
        assert "ATA" not in commander.commands


async def test_voice_call_begin_while_ringing_does_not_connect_a_call_the_modem_still_rings() -> None:
    modem = FakeModemState()
    async with machine_on(modem) as (machine, commander, events):
        modem.calls = [incoming()]
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.RINGING)
        machine.feed(VoiceCallBegin())
        machine.feed(clcc(incoming(stat=0)))  # a stray "active" too
        await asyncio.sleep(0.2)
        assert machine.snapshot.state is CallState.RINGING
        assert not [e for e in events if e.type == "answered"]


async def test_a_real_call_costs_one_clcc_and_learns_the_number_from_it() -> None:
    modem = FakeModemState()
    async with machine_on(modem) as (machine, commander, events):
        modem.calls = [incoming()]
        before = len(commander.commands)
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.RINGING)
        assert machine.snapshot.caller == CALLER  # no wait for +CLIP: AT+CLCC told the number
        machine.feed(Ring())
        await until(lambda: machine.snapshot.state is CallState.ACTIVE)
        sent = commander.commands[before:]
        assert sent[0] == "AT+CLCC" and sent[-1] == "ATA", sent  # (the in-call poll may add one after 0.2 s)
        assert [e.type for e in events if e.type in ("ringing", "answered", "missed")] == ["ringing", "answered"]


async def test_when_clcc_cannot_answer_the_urc_is_trusted() -> None:
    async with machine_on(FlakyClcc()) as (machine, commander, events):
        machine.feed(VoiceCallBegin())
        await until(lambda: machine.snapshot.state is CallState.ACTIVE)
        assert [e.type for e in events if e.type == "answered"] == ["answered"]
