"""Visitor sessions: per widget and id, bounded history, idle expiry, a bounded number of sessions."""

from __future__ import annotations

from channels.widget.visitor_sessions import KEPT_TURNS, VisitorSessions, new_session_id, valid_session_id


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_found_again_by_widget_and_id() -> None:
    sessions = VisitorSessions()
    first = sessions.open("site", None)
    assert valid_session_id(first.session_id)
    first.add_exchange("hi", "hello")
    again = sessions.open("site", first.session_id)
    assert again is first and again.transcript() == [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}]
    # the same id on another widget is another session
    other = sessions.open("shop", first.session_id)
    assert other is not first and other.transcript() == []


def test_an_id_that_is_not_ours_gets_a_fresh_one() -> None:
    sessions = VisitorSessions()
    for bad in ("", "short", "x" * 65, "../../etc/passwd-aaaaaaaaaaaa", "ünïcødé-ünïcødé-ünïcødé"):
        session = sessions.open("site", bad)
        assert session.session_id != bad and valid_session_id(session.session_id)
    # a well-formed id the server never issued (made up, or from before a restart) is not adopted either
    unknown = new_session_id()
    assert sessions.find("site", unknown) is None
    fresh = sessions.open("site", unknown)
    assert fresh.session_id != unknown and valid_session_id(fresh.session_id)
    assert sessions.find("site", unknown) is None and sessions.find("site", fresh.session_id) is fresh


def test_history_is_bounded_and_the_model_sees_the_last_turns() -> None:
    session = VisitorSessions().open("site", None)
    for i in range(KEPT_TURNS + 5):
        session.add_exchange(f"q{i}", f"a{i}")
    transcript = session.transcript()
    assert len(transcript) == 2 * KEPT_TURNS
    assert transcript[0] == {"role": "user", "text": "q5"}
    assert session.context(2) == [
        {"role": "user", "text": f"q{KEPT_TURNS + 3}"}, {"role": "assistant", "text": f"a{KEPT_TURNS + 3}"},
        {"role": "user", "text": f"q{KEPT_TURNS + 4}"}, {"role": "assistant", "text": f"a{KEPT_TURNS + 4}"},
    ]
    assert session.context(0) == []


def test_idle_sessions_expire_after_a_day_and_use_keeps_them() -> None:
    clock = Clock()
    sessions = VisitorSessions(clock=clock)
    quiet = sessions.open("site", None)
    busy = sessions.open("site", None)
    assert quiet.created == 0.0
    clock.now = 20 * 3600
    sessions.touch(busy)
    clock.now = 24 * 3600 + 1
    assert len(sessions) == 1
    assert sessions.open("site", busy.session_id) is busy
    fresh = sessions.open("site", quiet.session_id)
    assert fresh is not quiet and fresh.transcript() == []


def test_the_number_of_sessions_is_bounded_least_recently_seen_first() -> None:
    clock = Clock()
    sessions = VisitorSessions(max_sessions=3, clock=clock)
    opened = []
    for _ in range(3):
        clock.now += 1
        opened.append(sessions.open("site", None))
    clock.now += 1
    sessions.touch(opened[0])  # the first one is active again
    clock.now += 1
    sessions.open("site", None)
    assert len(sessions) == 3
    assert sessions.open("site", opened[0].session_id) is opened[0]
    # the longest idle (opened[1]) went; if its visitor is still chatting, their next message brings it back
    sessions.touch(opened[1])
    assert sessions.open("site", opened[1].session_id) is opened[1]
    assert len(sessions) == 3
    assert sessions.open("site", opened[2].session_id) is not opened[2]  # now the longest idle
