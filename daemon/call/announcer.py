"""The one writer of ``call/state`` and ``call/event``, for every call, whichever line it came on.

The call service hands it every driver event (a GSM call's state, ringing,
answered, DTMF, missed, ended) and tells it what its flows do: a call on a
stream line (the web page's test call, Twilio) answered and over, each
utterance, and the flow's own ``ended`` with outcome and summary.

Every call gets exactly one ``ended``. For a call a flow takes (the service
says so with ``hold_ending``) the flow's ending is the one published; the
driver's ending of that call waits, and goes out only if the flow is gone
without saying how the call ended (``release``, e.g. the service stopped
mid-call). A second ending of a call already announced is dropped, whichever
came first. A ringing call the service holds (the box cannot speak yet) is
held the same way: if it ends unanswered, the service's ``missed`` (reason
``not_ready``) and ``ended`` replace the driver's. ``call/state`` follows the modem; a stream line's call shows as
active while it lasts, and when it is over the state goes back to what the
modem says (idle from now, if the modem has no call).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from channels.bus_contract.call_payloads import (
    AnsweredEvent,
    CallEvent,
    CallState,
    DtmfEvent,
    EndedEvent,
    MissedEvent,
    RingingEvent,
    UtteranceEvent,
)
from channels.bus_contract.topics import CALL_EVENT, CALL_STATE
from daemon.bus.connection import Bus
from drivers.sim7600 import (
    CallAnswered,
    CallDtmf,
    CallEnded,
    CallMissed,
    CallRinging,
    CallSnapshot,
    CallStateChanged,
    ModemEvent,
)

log = logging.getLogger("secretary.call")

REMEMBERED_ENDINGS = 256  # calls whose ``ended`` is out, kept to drop a late second ending
IDLE = "idle"


def stamp(at: float | None = None) -> float:
    """An event's ``ts``: unix time in ms precision (now, unless given)."""
    return round(time.time() if at is None else at, 3)


class CallAnnouncer:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._modem_call = CallState(state=IDLE, since=stamp())
        self._lines: dict[str, CallState] = {}  # stream line calls in progress, in the order they came
        self._held: dict[str, EndedEvent | None] = {}  # calls a flow ends: the driver's ending once it came
        self._ended: OrderedDict[str, None] = OrderedDict()

    # -- the modem's calls -----------------------------------------------------------
    def modem_event(self, event: ModemEvent) -> None:
        """One driver event; those that are not about a call are left alone."""
        match event:
            case CallStateChanged(call=call):
                self.modem_call(call)
            case CallRinging():
                self._publish(RingingEvent(call_id=event.call_id, ts=stamp(event.ts), caller=event.caller,
                                           withheld=event.withheld, direction=event.direction.value))
            case CallAnswered():
                self._publish(AnsweredEvent(call_id=event.call_id, ts=stamp(event.ts), caller=event.caller,
                                            direction=event.direction.value))
            case CallDtmf():
                self._publish(DtmfEvent(call_id=event.call_id, ts=stamp(event.ts), digit=event.digit))
            case CallMissed():
                if event.call_id in self._held:
                    return  # the call service says why it was not answered (``missed``)
                self._publish(MissedEvent(call_id=event.call_id, ts=stamp(event.ts), caller=event.caller))
            case CallEnded():
                self._ending(EndedEvent(
                    call_id=event.call_id, ts=stamp(event.ts), caller=event.caller, direction=event.direction.value,
                    answered=event.answered, duration_s=round(event.duration_s, 2), reason=event.reason.value,
                ))

    def modem_call(self, call: CallSnapshot | None) -> None:
        """The modem's call state (None: no modem yet, so no call), e.g. as the call service starts."""
        if call is None:
            self._modem_call = CallState(state=IDLE, since=stamp())
        else:
            self._modem_call = CallState(state=call.state.value, call_id=call.call_id, caller=call.caller,
                                         since=call.since)
        self._publish_state(self._modem_call)

    def hold_ending(self, call_id: str) -> None:
        """A flow takes this call: its ``ended`` is the call's; the driver's waits until ``release``."""
        self._held.setdefault(call_id, None)

    def release(self, call_id: str) -> None:
        """The flow is gone. If it never announced the ending, the driver's goes out (now, or when it comes)."""
        if call_id not in self._held:
            return
        waiting = self._held.pop(call_id)
        if waiting is not None:
            log.warning("the call flow ended without announcing the call's end", extra={"call_id": call_id})
            self._ending(waiting)

    # -- calls on a stream line -------------------------------------------------------
    def line_answered(self, call_id: str, caller: str | None, channel: str, answered_at: float) -> None:
        state = CallState(state="active", call_id=call_id, caller=caller, since=stamp(answered_at), channel=channel)
        self._lines[call_id] = state
        self._publish(AnsweredEvent(call_id=call_id, ts=stamp(), caller=caller, direction="incoming", channel=channel))
        self._publish_state(state)

    def line_over(self, call_id: str) -> None:
        self._lines.pop(call_id, None)
        if self._lines:
            self._publish_state(list(self._lines.values())[-1])
        elif self._modem_call.state != IDLE:
            self._publish_state(self._modem_call)
        else:
            self._publish_state(CallState(state=IDLE, since=stamp()))

    # -- what a flow says ---------------------------------------------------------------
    def utterance(self, event: UtteranceEvent) -> None:
        self._publish(event)

    def missed(self, event: MissedEvent) -> None:
        """A call the service held and did not answer (the box could not speak yet): its ``missed``."""
        self._publish(event)

    def flow_ended(self, event: EndedEvent) -> None:
        """The flow's ending (outcome, message, summary): the call's one ``ended``."""
        self._held.pop(event.call_id, None)
        self._ending(event)

    # -- the wire -----------------------------------------------------------------------
    def _ending(self, event: EndedEvent) -> None:
        if event.call_id in self._held:
            self._held[event.call_id] = event  # the flow will say how the call ended
            return
        if event.call_id in self._ended:
            log.debug("second ending of a call dropped", extra={"call_id": event.call_id, "reason": event.reason})
            return
        self._ended[event.call_id] = None
        while len(self._ended) > REMEMBERED_ENDINGS:
            self._ended.popitem(last=False)
        self._publish(event)

    def _publish(self, event: CallEvent) -> None:
        self.bus.publish_event(CALL_EVENT, event.encode())

    def _publish_state(self, state: CallState) -> None:
        self.bus.publish_state(CALL_STATE, state.encode())
