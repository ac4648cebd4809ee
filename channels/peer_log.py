"""Logging what peers send wrong without letting a flood of it flood the log.

A peer that publishes one bad payload deserves a log line with the details;
one that publishes ten thousand a second must not write ten thousand lines.
``BadPayloadLog.bad`` logs the first bad payload of each peer (a topic or a
client) in full, then only counts that peer's bad payloads until
``interval_s`` has passed; the next one after that is logged with the count
of those it stood for. ``flush`` writes the counts still pending (a service
calls it on stop or from a timer if it wants them sooner). A peer's name may
be the peer's own choice (a response topic), so new names too are capped: past
``max_lines`` first lines in an interval, further new peers are counted
together under ``OTHER_PEERS``. The number of peers remembered is bounded,
the longest quiet forgotten first. The command router and ``ChannelBus`` both
log bad payloads through it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

REPORT_INTERVAL_S = 60.0
MAX_PEERS = 1000
MAX_LINES = 20  # first lines of new peers per interval; more new peers share OTHER_PEERS's line
OTHER_PEERS = "(other peers)"


@dataclass
class _Peer:
    reported_at: float
    unreported: int = 0
    last_problem: str = ""


class BadPayloadLog:
    """At most one log line per peer per ``interval_s``, each saying how many bad payloads it stands for."""

    def __init__(self, logger: logging.Logger, what: str, *, interval_s: float = REPORT_INTERVAL_S,
                 max_peers: int = MAX_PEERS, max_lines: int = MAX_LINES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0 or max_peers < 1 or max_lines < 1:
            raise ValueError("interval_s must be positive, max_peers and max_lines at least 1")
        self._log = logger
        self.what = what
        self.interval_s = interval_s
        self.max_peers = max_peers
        self.max_lines = max_lines
        self._clock = clock
        self._peers: OrderedDict[str, _Peer] = OrderedDict()
        self._window_start = clock()
        self._lines = 0  # first lines of peers logged since _window_start

    def bad(self, peer: str, problem: str) -> bool:
        """Note one bad payload from ``peer``; True when it was logged, False when only counted."""
        peer, problem = _short(peer), _short(problem)
        now = self._clock()
        if now - self._window_start >= self.interval_s:
            self._window_start, self._lines = now, 0
        seen = self._peers.get(peer)
        if seen is not None and now - seen.reported_at < self.interval_s:
            seen.unreported += 1
            seen.last_problem = problem
            self._peers.move_to_end(peer)
            return False
        if peer != OTHER_PEERS:
            if self._lines >= self.max_lines:
                return self.bad(OTHER_PEERS, f"{peer}: {problem}")
            self._lines += 1
        also = seen.unreported if seen is not None else 0
        self._peers[peer] = _Peer(reported_at=now)
        self._peers.move_to_end(peer)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)
        more = f" (and {also} more from it since its last line, not logged one by one)" if also else ""
        self._log.warning("%s: bad payload from %s ignored: %s%s", self.what, peer, problem, more,
                          extra={"peer": peer, "problem": problem, "unlogged": also})
        return True

    def flush(self) -> None:
        """Log the bad payloads counted but not yet logged, one line per peer."""
        for peer, seen in self._peers.items():
            if seen.unreported:
                self._log.warning("%s: %d more bad payloads from %s, the last: %s", self.what, seen.unreported,
                                  peer, seen.last_problem,
                                  extra={"peer": peer, "problem": seen.last_problem, "unlogged": seen.unreported})
                seen.unreported = 0
                seen.reported_at = self._clock()


def _short(text: str, limit: int = 200) -> str:
    """A peer's name or a problem as a log line carries it: what a peer chose may be long."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
