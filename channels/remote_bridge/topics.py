"""Topic filters under the box's prefix: which local topics the bridge carries, and what kind they are.

Filters follow MQTT: ``+`` is one level, ``#`` (last) is the rest, zero levels
included. Topics and filters here are suffixes under ``<prefix>/<box_id>/``.
Events (``call/event``, ``sms/event``, any ``.../event``) are forwarded in
order and not retained; everything else is state, retained, newest wins.
Commands and their replies (``cmd/...``, ``reply/...``) are never carried.
"""

from __future__ import annotations

from collections.abc import Iterable

STATUS = "status"
NEVER_BRIDGED = ("cmd", "reply")  # the box's command plumbing, even under a filter like "#"


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT ``topic_filter``."""
    want, have = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


def covers(wide: str, narrow: str) -> bool:
    """Whether every topic ``narrow`` matches is also matched by ``wide``."""
    w, n = wide.split("/"), narrow.split("/")
    for i, level in enumerate(w):
        if level == "#":
            return True
        if i >= len(n) or n[i] == "#" or (level != "+" and level != n[i]):
            return False
    return len(w) == len(n)


def minimal_filters(filters: Iterable[str]) -> list[str]:
    """The filters without those another one already covers (a broker may deliver overlaps twice)."""
    unique = list(dict.fromkeys(filters))
    return [f for f in unique if not any(covers(g, f) for g in unique if g != f)]


def is_event(suffix: str) -> bool:
    return suffix == "event" or suffix.endswith("/event")


def engine_name(suffix: str) -> str | None:
    """``stt`` for ``engines/stt/state``; None for anything else."""
    levels = suffix.split("/")
    if len(levels) == 3 and levels[0] == "engines" and levels[2] == "state" and levels[1]:
        return levels[1]
    return None


class TopicSelection:
    """The configured filters: what the bridge subscribes to locally and carries to the remote."""

    def __init__(self, filters: Iterable[str]) -> None:
        self.filters = minimal_filters(filters)

    def carries(self, suffix: str) -> bool:
        if suffix.split("/", 1)[0] in NEVER_BRIDGED:
            return False
        return any(matches(f, suffix) for f in self.filters)

    @property
    def subscriptions(self) -> list[str]:
        """The filters, plus ``status`` (the remote availability follows it) when no filter has it."""
        return self.filters if self.carries(STATUS) else [*self.filters, STATUS]
