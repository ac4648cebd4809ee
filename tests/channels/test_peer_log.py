"""BadPayloadLog: one line per peer per interval, each saying how many bad payloads it stands for."""

from __future__ import annotations

import logging

import pytest

from channels.peer_log import OTHER_PEERS, BadPayloadLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.peers"]


def test_a_flood_from_one_peer_is_one_line_then_one_summary_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "test.peers")
    clock = Clock()
    bad = BadPayloadLog(logging.getLogger("test.peers"), "bus", interval_s=60, clock=clock)
    assert bad.bad("call/state", "payload is not UTF-8") is True
    assert [bad.bad("call/state", f"problem {n}") for n in range(5000)] == [False] * 5000
    assert lines(caplog) == ["bus: bad payload from call/state ignored: payload is not UTF-8"]
    clock.now += 60
    assert bad.bad("call/state", "payload is JSON of the wrong type") is True
    assert lines(caplog)[1] == ("bus: bad payload from call/state ignored: payload is JSON of the wrong type "
                                "(and 5000 more from it since its last line, not logged one by one)")
    assert caplog.records[-1].unlogged == 5000  # type: ignore[attr-defined]


def test_each_peer_has_its_own_line_and_flush_reports_what_was_only_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "test.peers")
    bad = BadPayloadLog(logging.getLogger("test.peers"), "bus", clock=Clock())
    for _ in range(3):
        bad.bad("reply/a", "not JSON")
        bad.bad("reply/b", "not JSON")
    assert len(lines(caplog)) == 2
    bad.flush()
    assert lines(caplog)[2:] == ["bus: 2 more bad payloads from reply/a, the last: not JSON",
                                 "bus: 2 more bad payloads from reply/b, the last: not JSON"]
    bad.flush()  # nothing pending: nothing more
    assert len(lines(caplog)) == 4


def test_peers_that_name_themselves_cannot_flood_the_log_with_new_names(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "test.peers")
    clock = Clock()
    bad = BadPayloadLog(logging.getLogger("test.peers"), "bus", max_lines=3, max_peers=50, clock=clock)
    for n in range(1000):
        bad.bad(f"reply/made-up-{n}", "x" * 5000)
    logged = lines(caplog)
    assert len(logged) == 4  # three peers, then every other new name shares one line
    assert logged[3].startswith(f"bus: bad payload from {OTHER_PEERS} ignored: reply/made-up-3: xxx")
    assert all(len(line) < 600 for line in logged)  # a peer's long text is cut
    clock.now += 60  # a new interval: room for new names again
    assert bad.bad("reply/made-up-2000", "late") is True


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError):
        BadPayloadLog(logging.getLogger("test.peers"), "bus", interval_s=0)
