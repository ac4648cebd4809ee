"""Topic filters: MQTT matching, overlap removal, events versus state."""

from __future__ import annotations

import pytest

from channels.bus_contract.topics import engine_name, is_event, matches
from channels.remote_bridge.topics import DEFAULT_TOPICS, TopicSelection, covers, minimal_filters


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), [
    ("status", "status", True),
    ("status", "status/x", False),
    ("modem/state", "modem/state", True),
    ("modem/state", "modem", False),
    ("engines/+/state", "engines/stt/state", True),
    ("engines/+/state", "engines/state", False),
    ("engines/+/state", "engines/a/b/state", False),
    ("engines/#", "engines", True),
    ("engines/#", "engines/stt/state", True),
    ("#", "call/event", True),
    ("+", "status", True),
    ("+", "call/event", False),
    ("call/+", "call/event", True),
    ("call/+", "sms/event", False),
])
def test_mqtt_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize(("wide", "narrow", "expected"), [
    ("#", "call/event", True),
    ("call/#", "call/+", True),
    ("call/+", "call/#", False),
    ("engines/+/state", "engines/stt/state", True),
    ("engines/stt/state", "engines/+/state", False),
    ("+/state", "modem/state", True),
    ("a/#", "a/+/#", True),
    ("a/+/#", "a/#", False),
])
def test_covers(wide: str, narrow: str, expected: bool) -> None:
    assert covers(wide, narrow) is expected


def test_overlapping_filters_are_subscribed_once() -> None:
    assert minimal_filters(["engines/stt/state", "engines/+/state", "status", "status", "call/#", "call/event"]) == [
        "engines/+/state", "status", "call/#"]
    assert minimal_filters(DEFAULT_TOPICS) == DEFAULT_TOPICS


def test_status_is_always_subscribed_but_only_carried_when_chosen() -> None:
    chosen = TopicSelection(["call/event"])
    assert chosen.subscriptions == ["call/event", "status"]
    assert not chosen.carries("status") and chosen.carries("call/event") and not chosen.carries("call/state")
    everything = TopicSelection(["#"])
    assert everything.subscriptions == ["#"] and everything.carries("status")
    assert not everything.carries("cmd/hangup") and not everything.carries("reply/secretary-remote-box")
    assert everything.carries("commands/x")


def test_events_and_engines() -> None:
    assert is_event("call/event") and is_event("sms/event") and is_event("event")
    assert not is_event("call/state") and not is_event("status") and not is_event("events/x")
    assert engine_name("engines/stt/state") == "stt"
    assert engine_name("engines/stt/event") is None and engine_name("services/bus/state") is None
    assert engine_name("engines//state") is None
