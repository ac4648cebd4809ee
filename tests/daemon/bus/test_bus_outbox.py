"""Outbox: newest state wins, events kept in order and bounded, retained state restored."""

from __future__ import annotations

from daemon.bus.outbox import OutboundMessage, Outbox


def drain(outbox: Outbox) -> list[tuple[str, bytes]]:
    sent = []
    while (message := outbox.peek()) is not None:
        sent.append((message.topic, message.payload))
        outbox.ack(message)
    return sent


def test_state_superseded_events_kept_in_order() -> None:
    box = Outbox()
    box.put_state("s/modem", b"1")
    box.put_event(OutboundMessage("e/call", b"a"))
    box.put_state("s/modem", b"2")
    box.put_event(OutboundMessage("e/call", b"b"))
    box.put_state("s/call", b"idle")
    assert drain(box) == [("e/call", b"a"), ("s/modem", b"2"), ("e/call", b"b"), ("s/call", b"idle")]


def test_ack_of_superseded_state_keeps_the_newer_one() -> None:
    box = Outbox()
    box.put_state("s", b"old")
    in_flight = box.peek()
    assert in_flight is not None
    box.put_state("s", b"new")  # arrives while "old" is being published
    box.ack(in_flight)
    assert drain(box) == [("s", b"new")]


def test_events_bounded_oldest_dropped_and_counted() -> None:
    box = Outbox(max_events=3)
    box.put_state("s", b"x")
    for n in range(5):
        box.put_event(OutboundMessage("e", str(n).encode()))
    assert box.dropped_events == 2
    assert drain(box) == [("s", b"x"), ("e", b"2"), ("e", b"3"), ("e", b"4")]


def test_requeue_retained_after_reconnect() -> None:
    box = Outbox()
    box.put_state("a", b"1")
    box.put_state("b", b"1")
    drain(box)
    box.put_event(OutboundMessage("e", b"pending"))
    box.put_state("b", b"2")
    box.requeue_retained()  # broker restarted: "a" must be sent again, first
    assert drain(box) == [("a", b"1"), ("e", b"pending"), ("b", b"2")]
