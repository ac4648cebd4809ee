"""The box's live state as the web page sees it, relayed from the bus to each open page.

The web service's bus client hands every message here. The relay keeps the
newest retained state (``status``, ``modem/state``, ``call/state``,
``engines/<name>/state``, ``services/<name>/state``) and the running
transcript of the current call (and, from ``services/recorder/state``, an
alert while calls cannot be recorded), and pushes each change to the subscribed
pages (Server-Sent Events). A page that cannot keep up is dropped rather than
buffered without end: its EventSource reconnects and starts from a fresh
snapshot, so nothing it shows is stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from channels.bus_contract.call_payloads import (
    AnsweredEvent,
    CallEvent,
    EndedEvent,
    RingingEvent,
    UtteranceEvent,
    decode_call_event,
)
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.topics import CALL_EVENT, RECORDER_STATE, STATUS, WEB_PAGE_TOPICS, is_state

log = logging.getLogger("secretary.web")

SUBSCRIPTIONS = list(WEB_PAGE_TOPICS)


@dataclass
class RelayEvent:
    kind: str  # "state" | "call" | "bus" | "recording"
    data: dict[str, Any]


class FellBehind(Exception):
    """The page did not read its changes fast enough; it must start again from a snapshot."""


@dataclass(eq=False)
class Subscription:
    relay: StatusRelay
    queue: asyncio.Queue[RelayEvent | None]
    dropped: bool = False

    async def next(self, timeout: float) -> RelayEvent | None:
        """The next change, or None if nothing changed within ``timeout``; FellBehind if this page was dropped."""
        try:
            async with asyncio.timeout(timeout):
                event = await self.queue.get()
        except TimeoutError:
            return None
        if event is None:
            raise FellBehind
        return event

    def close(self) -> None:
        self.relay._unsubscribe(self)


@dataclass
class CallTranscript:
    call_id: str | None = None
    caller: str | None = None
    lines: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    ended: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "caller": self.caller, "lines": list(self.lines), "ended": self.ended}


class StatusRelay:
    def __init__(self, queue_size: int = 256) -> None:
        self.state: dict[str, Any] = {}
        self.call = CallTranscript()
        self.bus_connected = False
        self._queue_size = queue_size
        self._subscribers: list[Subscription] = []

    # -- input ----------------------------------------------------------------------
    def observe(self, suffix: str, payload: Any) -> None:
        """One bus message (topic below the box's prefix, parsed JSON); malformed ones are ignored."""
        if is_state(suffix):
            if suffix != STATUS and not isinstance(payload, dict):
                log.debug("state that is not an object ignored", extra={"topic": suffix})
                return
            self.state[suffix] = payload
            self._publish(RelayEvent("state", {"topic": suffix, "payload": payload}))
            if suffix == RECORDER_STATE:
                self._publish(RelayEvent("recording", {"alert": self.recording_alert()}))
        elif suffix == CALL_EVENT:
            try:
                event = decode_call_event(payload)
            except PayloadError as exc:
                log.debug("call event that does not fit the contract ignored", extra={"reason": str(exc)})
                return
            self._on_call_event(event, payload)

    def set_bus_connected(self, connected: bool) -> None:
        if connected != self.bus_connected:
            self.bus_connected = connected
            self._publish(RelayEvent("bus", {"connected": connected}))

    def _on_call_event(self, event: CallEvent, payload: dict[str, Any]) -> None:
        """One call event, decoded; the page gets the payload as it came."""
        call_id = event.call_id
        if isinstance(event, (RingingEvent, AnsweredEvent)) and call_id != self.call.call_id:
            self.call = CallTranscript(call_id=call_id, caller=event.caller)
        elif call_id != self.call.call_id:
            if not isinstance(event, UtteranceEvent):
                self._publish(RelayEvent("call", payload))
                return
            self.call = CallTranscript(call_id=call_id)  # joined mid-call
        if isinstance(event, UtteranceEvent):
            self.call.lines.append({"role": event.role, "text": event.text, "start_s": event.start_s,
                                    "interrupted": event.interrupted, "latency_ms": event.latency_ms})
        elif isinstance(event, EndedEvent):
            self.call.ended = {"reason": event.reason, "outcome": event.outcome, "duration_s": event.duration_s,
                               "summary": event.summary}
        self._publish(RelayEvent("call", payload))

    # -- output ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"state": dict(self.state), "call": self.call.as_dict(), "bus_connected": self.bus_connected,
                "recording_alert": self.recording_alert()}

    def recording_alert(self) -> str | None:
        """What the page says at its top while calls cannot be recorded (disk full, low space); None while they can."""
        report = self.state.get(RECORDER_STATE)
        if not isinstance(report, dict) or report.get("state") in (None, "running"):
            return None
        detail = report.get("detail") or "no detail given"
        return f"Call recording {report.get('state')}: {detail}"

    def _publish(self, event: RelayEvent) -> None:
        for sub in self._subscribers:
            if sub.dropped:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped = True  # it reconnects and starts over from a snapshot
                sub.queue.get_nowait()
                sub.queue.put_nowait(None)
                log.info("a status page fell behind; it will reconnect")

    def subscribe(self) -> Subscription:
        """Changes from now on; close the subscription when the page goes away."""
        sub = Subscription(self, asyncio.Queue(self._queue_size))
        self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
