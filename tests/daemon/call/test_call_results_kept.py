"""CallService.results keeps the last RESULTS_KEPT calls only: a box that takes calls for years does not grow."""

from __future__ import annotations

from pathlib import Path

from channels.bus_contract.topics import Topics
from daemon.call.flow import CallResult
from daemon.call.service import RESULTS_KEPT, CallService
from daemon.dialogue.message_slots import MessageSlots
from drivers.sim7600.event_hub import EventHub
from tests.calls.call_harness import RecordingBus, box_config


def test_only_the_last_results_are_kept_in_memory(tmp_path: Path) -> None:
    settings = box_config(tmp_path / "data")
    calls = CallService(RecordingBus(Topics("secretary", settings.box_id)), settings, EventHub(), lambda: None,
                        lambda name: None)
    for n in range(RESULTS_KEPT + 50):
        calls._keep_result(f"call-{n}", CallResult("message_taken", "caller_hung_up", MessageSlots(), "scripted"))
    assert len(calls.results) == RESULTS_KEPT
    assert next(iter(calls.results)) == "call-50" and f"call-{RESULTS_KEPT + 49}" in calls.results
