"""The outbox: newest state per topic, events in order and bounded, nothing leaves before the broker has it."""

from __future__ import annotations

import asyncio

import pytest

from channels.remote_bridge.outbox import Outgoing, RemoteOutbox


async def drain(box: RemoteOutbox) -> list[Outgoing]:
    sent = []
    while len(box):
        key, message = await box.next()
        box.done(key, message)
        sent.append(message)
    return sent


def state(topic: str, payload: str) -> Outgoing:
    return Outgoing(topic, payload.encode(), retain=True)


def event(n: int) -> Outgoing:
    return Outgoing("b/call/event", str(n).encode(), retain=False)


async def test_order_is_kept_and_state_coalesces_to_the_newest() -> None:
    box = RemoteOutbox(max_events=10)
    for message in (state("s", "1"), event(1), state("t", "x"), event(2), state("s", "2")):
        box.put(message)
    assert [m.payload for m in await drain(box)] == [b"1", b"x", b"2", b"2"]


async def test_the_oldest_events_are_dropped_and_counted() -> None:
    box = RemoteOutbox(max_events=3)
    box.put(state("s", "keep"))
    for n in range(7):
        box.put(event(n))
    assert box.dropped == 4 and box.events_waiting == 3
    assert [m.payload for m in await drain(box)] == [b"keep", b"4", b"5", b"6"]


async def test_a_message_stays_until_done_and_a_replaced_one_is_not_lost() -> None:
    box = RemoteOutbox(max_events=10)
    box.put(state("s", "old"))
    key, message = await box.next()
    box.put(state("s", "new"))  # arrives while "old" is in flight
    box.done(key, message)
    assert [m.payload for m in await drain(box)] == [b"new"]
    box.put(event(1))
    key, first = await box.next()
    assert (await box.next())[1] is first  # not done: offered again (a reconnect resends it)


async def test_drop_retained_keeps_events_and_next_waits() -> None:
    box = RemoteOutbox(max_events=10)
    box.put(state("s", "1"))
    box.put(event(1))
    box.drop_retained()
    assert [m.payload for m in await drain(box)] == [b"1"] and box.events_waiting == 0
    waiting = asyncio.create_task(box.next())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    box.put(event(2))
    assert (await asyncio.wait_for(waiting, 1))[1].payload == b"2"
    with pytest.raises(ValueError):
        RemoteOutbox(max_events=0)
