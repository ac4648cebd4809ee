"""``may_answer``: the driver asks before each auto-answer; a no lets the call ring on (no ATA) until its owner acts."""

from __future__ import annotations

import asyncio

from drivers.sim7600.call_model import EndReason
from drivers.sim7600.simulator.sim_state import SimCallStat

from .sim7600_helpers import RigFactory

CALLER = "+79161234567"


async def test_a_call_the_owner_is_not_ready_for_rings_on_until_it_answers(make_rig: RigFactory) -> None:
    asked: list[str] = []
    ready = False

    def may_answer(call_id: str) -> bool:
        asked.append(call_id)
        return ready

    rig = await make_rig(answer_after_rings=1, may_answer=may_answer)
    await rig.sim.incoming_call(CALLER)
    ringing = await rig.events.wait_for("ringing")
    async with asyncio.timeout(10):
        while len(asked) < 2:  # asked again on later ring inputs, each time refused
            await asyncio.sleep(0.05)
    assert set(asked) == {ringing.call_id}
    assert "ATA" not in rig.sim.counters.commands
    assert rig.sim.call is not None and rig.sim.call.stat is SimCallStat.INCOMING
    ready = True
    await rig.modem.answer()  # the owner answers as soon as it can (not waiting for the next ring)
    answered = await rig.events.wait_for("answered")
    assert answered.call_id == ringing.call_id and rig.sim.call.stat is SimCallStat.ACTIVE


async def test_a_call_the_owner_turns_away_ends_unanswered(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1, may_answer=lambda call_id: False)
    await rig.sim.incoming_call(CALLER)
    await rig.events.wait_for("ringing")
    await asyncio.sleep(0.3)
    await rig.modem.hangup()
    ended = await rig.events.wait_for("ended")
    assert ended.reason is EndReason.LOCAL_HANGUP and not ended.answered
    assert "ATA" not in rig.sim.counters.commands and rig.sim.call is None
