"""The status page's recording alert: from ``services/recorder/state``, pushed to open pages as it changes."""

from __future__ import annotations

from channels.bus_contract.topics import RECORDER_STATE
from daemon.web.status_relay import StatusRelay


def test_the_relay_raises_and_clears_the_recording_alert() -> None:
    relay = StatusRelay()
    page = relay.subscribe()
    assert relay.snapshot()["recording_alert"] is None
    relay.observe(RECORDER_STATE, {"state": "degraded", "detail": "recording stopped on 1 live call(s): disk full"})
    assert relay.snapshot()["recording_alert"] == "Call recording degraded: recording stopped on 1 live call(s): disk full"
    relay.observe(RECORDER_STATE, {"state": "running", "detail": "512.0 MB free"})
    assert relay.snapshot()["recording_alert"] is None
    events = []
    while not page.queue.empty():
        events.append(page.queue.get_nowait())
    alerts = [e.data["alert"] for e in events if e is not None and e.kind == "recording"]
    assert alerts == ["Call recording degraded: recording stopped on 1 live call(s): disk full", None]
    relay.observe("services/calls/state", {"state": "degraded", "detail": "phrases"})  # another service: no alert
    assert relay.snapshot()["recording_alert"] is None
