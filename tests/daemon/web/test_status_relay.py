"""The status relay: newest state, the live call's transcript, and pages that fall behind."""

from __future__ import annotations

import pytest

from daemon.web.status_relay import FellBehind, StatusRelay


def test_keeps_the_newest_state_and_ignores_malformed_messages() -> None:
    relay = StatusRelay()
    relay.observe("modem/state", {"sim": "ready", "signal_dbm": -80})
    relay.observe("modem/state", {"sim": "ready", "signal_dbm": -71})
    relay.observe("engines/tts/state", {"state": "ready"})
    relay.observe("engines/tts/state", "garbage")  # not an object: ignored
    relay.observe("status", "online")
    relay.observe("call/event", ["not", "a", "dict"])
    relay.observe("call/event", {"no": "type"})
    relay.observe("something/else", {"x": 1})
    snap = relay.snapshot()
    assert snap["state"] == {"modem/state": {"sim": "ready", "signal_dbm": -71}, "engines/tts/state": {"state": "ready"},
                             "status": "online"}


def test_follows_one_call_and_starts_over_with_the_next() -> None:
    relay = StatusRelay()
    relay.observe("call/event", {"type": "ringing", "call_id": "a", "caller": "+7916"})
    relay.observe("call/event", {"type": "utterance", "call_id": "a", "role": "secretary", "text": "Hello"})
    relay.observe("call/event", {"type": "utterance", "call_id": "a", "role": "caller", "text": "Hi"})
    relay.observe("call/event", {"type": "ended", "call_id": "a", "reason": "remote_hangup"})
    call = relay.snapshot()["call"]
    assert call["call_id"] == "a" and [line["text"] for line in call["lines"]] == ["Hello", "Hi"]
    assert call["ended"]["reason"] == "remote_hangup"
    relay.observe("call/event", {"type": "answered", "call_id": "b"})
    assert relay.snapshot()["call"]["lines"] == [] and relay.snapshot()["call"]["call_id"] == "b"
    relay.observe("call/event", {"type": "utterance", "call_id": "c", "role": "caller", "text": "joined late"})
    assert relay.snapshot()["call"]["call_id"] == "c"


async def test_a_page_that_falls_behind_is_dropped_and_others_keep_going() -> None:
    relay = StatusRelay(queue_size=4)
    slow, fast = relay.subscribe(), relay.subscribe()
    for i in range(3):
        relay.observe("modem/state", {"signal_dbm": -70 - i})
        event = await fast.next(0.1)
        assert event is not None and event.data["payload"]["signal_dbm"] == -70 - i
    for i in range(3):
        relay.observe("modem/state", {"signal_dbm": -90 - i})
    for _ in range(3):
        assert await fast.next(0.1) is not None
    drained = 0
    with pytest.raises(FellBehind):
        while True:
            assert await slow.next(0.1) is not None
            drained += 1
    assert drained == 3  # what fitted, then the end
    assert await fast.next(0.01) is None  # nothing new: a timeout, not an error
    slow.close()
    fast.close()
    assert relay.subscriber_count == 0


def test_bus_link_changes_are_published_once() -> None:
    relay = StatusRelay()
    sub = relay.subscribe()
    relay.set_bus_connected(True)
    relay.set_bus_connected(True)
    relay.set_bus_connected(False)
    assert sub.queue.qsize() == 2
