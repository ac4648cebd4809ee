"""Topic filters under the box's prefix: which local topics the bridge carries.

Filters follow MQTT: ``+`` is one level, ``#`` (last) is the rest, zero levels
included. Topics and filters here are suffixes under ``<prefix>/<box_id>/``
(the names are the bus contract's, ``channels/bus_contract/topics.py``).
Events (``call/event``, ``sms/event``, any ``.../event``) are forwarded in
order and not retained; everything else is state, retained, newest wins.
Commands and their replies (``cmd/...``, ``reply/...``) are never carried.
"""

from __future__ import annotations

from collections.abc import Iterable

from channels.bus_contract.topics import BRIDGED_BY_DEFAULT, NEVER_BRIDGED, STATUS, matches

DEFAULT_TOPICS = list(BRIDGED_BY_DEFAULT)  # what the bridge carries when channels.remote.topics is not set


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


class TopicSelection:
    """The configured filters (None: ``DEFAULT_TOPICS``): what the bridge subscribes to locally and carries."""

    def __init__(self, filters: Iterable[str] | None) -> None:
        self.filters = minimal_filters(DEFAULT_TOPICS if filters is None else filters)

    def carries(self, suffix: str) -> bool:
        if suffix.split("/", 1)[0] in NEVER_BRIDGED:
            return False
        return any(matches(f, suffix) for f in self.filters)

    @property
    def subscriptions(self) -> list[str]:
        """The filters, plus ``status`` (the remote availability follows it) when no filter has it."""
        return self.filters if self.carries(STATUS) else [*self.filters, STATUS]
