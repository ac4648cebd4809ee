"""The call state machine: idle -> ringing -> active -> ending -> idle.

Driven by URCs (``RING``, ``+CLIP``, ``+CLCC``, ``VOICE CALL: BEGIN/END``,
``NO CARRIER``, ``MISSED_CALL``, ``+RXDTMF``) and by requests (answer, hang up,
dial).  Public sources disagree on which URCs follow a hang-up and in what
order (sim7600.md §4.1), so every path that ends a call accepts any of them,
and ``AT+CLCC`` is polled (often during a call, rarely when idle, at once when
the rings stop) so a lost URC cannot leave the machine stuck.

One task (``run``) owns all state; URCs and requests reach it through a queue,
so transitions never interleave.  Hooks are awaited at connect/disconnect (the
facade enables and disables PCM there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from drivers.sim7600.at_channel import AtCommander
from drivers.sim7600.call_model import (
    WITHHELD_TOKENS,
    CallDirection,
    CallSnapshot,
    CallState,
    EndReason,
    idle_snapshot,
    new_call_id,
    numbers_match,
    validate_dial_number,
)
from drivers.sim7600.events import (
    CallAnswered,
    CallDtmf,
    CallEnded,
    CallMissed,
    CallRinging,
    CallStateChanged,
    ModemEvent,
)
from drivers.sim7600.parsers import CallListDirection, CallListEntry, CallStat, parse_clcc
from drivers.sim7600.result_codes import AtChannelClosedError, AtError, AtResponse, AtTimeoutError, FinalKind
from drivers.sim7600.urc import (
    Busy,
    CallerIdUrc,
    CallListUrc,
    CRing,
    DtmfReceived,
    MissedCall,
    ModemReady,
    NoAnswer,
    NoCarrier,
    Ring,
    Urc,
    VoiceCallBegin,
    VoiceCallEnd,
)

log = logging.getLogger(__name__)

CALL_URC_TYPES = (
    Ring,
    CRing,
    CallerIdUrc,
    CallListUrc,
    VoiceCallBegin,
    VoiceCallEnd,
    NoCarrier,
    Busy,
    NoAnswer,
    MissedCall,
    DtmfReceived,
    ModemReady,
)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    answer_after_rings: int | None = 2  # None: never answer by itself
    blocked_numbers: tuple[str, ...] = ()  # numbers, or "withheld" to refuse hidden numbers
    caller_id_grace_s: float = 0.5  # after the first ring, wait this long for +CLIP
    ring_timeout_s: float = 8.0  # rings stopped this long -> ask AT+CLCC
    reconcile_idle_s: float = 15.0
    reconcile_call_s: float = 2.0
    dial_timeout_s: float = 60.0
    command_timeout_s: float = 5.0
    answer_timeout_s: float = 10.0
    max_answer_attempts: int = 2
    post_call_guard_s: float = 1.0  # a RING this soon after a call ended is checked with AT+CLCC first
    outcome_grace_s: float = 0.3  # an unanswered outgoing call that drops waits this long for BUSY/NO ANSWER
    # Asked (with the call_id) each time an incoming call is due to be auto-answered: False lets it ring on
    # (the owner answers it later with ``answer()``, or turns it away with ``hangup()``). None: always answer.
    may_answer: Callable[[str], bool] | None = None

    def is_blocked(self, caller: str | None, withheld: bool) -> bool:
        for entry in self.blocked_numbers:
            if entry.strip().lower() in WITHHELD_TOKENS:
                if withheld or caller is None:
                    return True
            elif caller is not None and numbers_match(entry, caller):
                return True
        return False


class CallHooks(Protocol):
    async def call_connected(self, call: CallSnapshot) -> None: ...

    async def call_disconnected(self, call: CallSnapshot) -> None: ...


class NoHooks:
    async def call_connected(self, call: CallSnapshot) -> None:
        return None

    async def call_disconnected(self, call: CallSnapshot) -> None:
        return None


class CallControlError(RuntimeError):
    """A request that does not fit the current call state."""


@dataclass(slots=True)
class _Call:
    call_id: str
    direction: CallDirection
    caller: str | None
    withheld: bool
    started_mono: float
    ring_count: int = 0
    last_seen_mono: float = 0.0  # last ring / CLCC confirmation while ringing
    connected_mono: float | None = None
    announced: bool = False
    answering: bool = False
    answer_attempts: int = 0
    rejecting: bool = False
    modem_duration_s: int | None = None
    dial_deadline_mono: float | None = None
    drop_deadline_mono: float | None = None  # outgoing call dropped before connect: finish at this time


RequestKind = Literal["answer", "hangup", "dial", "reconcile"]


@dataclass(slots=True)
class _Request:
    kind: RequestKind
    future: asyncio.Future[str | None]
    number: str | None = None


_Input = Urc | _Request


class CallStateMachine:
    def __init__(
        self,
        channel: AtCommander,
        *,
        emit: Callable[[ModemEvent], None],
        policy: CallPolicy | None = None,
        hooks: CallHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._channel = channel
        self._emit = emit
        self.policy = policy or CallPolicy()
        self._hooks: CallHooks = hooks or NoHooks()
        self._clock = clock
        self._wall = wall_clock
        self._queue: asyncio.Queue[_Input] = asyncio.Queue()
        self._call: _Call | None = None
        self._snapshot = idle_snapshot(wall_clock())
        self._next_reconcile = 0.0
        self._running = False
        self._stopped = False
        self._last_end: tuple[float, _Call, EndReason] | None = None

    # ------------------------------------------------------------ public API

    @property
    def snapshot(self) -> CallSnapshot:
        return self._snapshot

    @property
    def running(self) -> bool:
        return self._running

    def feed(self, urc: Urc) -> None:
        """Hand over a URC (call it from the channel's URC sink; never blocks)."""
        if isinstance(urc, CALL_URC_TYPES):
            self._queue.put_nowait(urc)

    async def answer(self) -> None:
        await self._submit("answer")

    async def hangup(self) -> None:
        await self._submit("hangup")

    async def dial(self, number: str) -> str:
        """Start an outgoing call; returns its call_id (the outcome arrives as events)."""
        call_id = await self._submit("dial", validate_dial_number(number))
        assert call_id is not None
        return call_id

    async def reconcile_now(self) -> None:
        await self._submit("reconcile")

    async def run(self) -> None:
        """Process URCs, requests and timers until cancelled or the channel closes."""
        self._running = True
        self._next_reconcile = self._clock()  # learn about a call already in progress
        try:
            while True:
                item = await self._next_input()
                if isinstance(item, _Request):
                    await self._handle_request(item)
                elif item is not None:
                    await self._handle_urc(item)
                await self._handle_timers()
        finally:
            self._running = False
            self._stopped = True
            self._fail_requests(AtChannelClosedError("call state machine stopped"))

    def abort(self, reason: EndReason = EndReason.MODEM_LOST) -> None:
        """End any call at once without talking to the modem (it is gone)."""
        call = self._call
        if call is None:
            return
        self._set_state(CallState.ENDING)
        self._emit_end(call, reason)
        self._call = None
        self._set_state(CallState.IDLE)

    def close(self) -> None:
        """No more requests (the connection is gone); queued ones fail."""
        self._stopped = True
        self._fail_requests(AtChannelClosedError("modem connection closed"))

    # ------------------------------------------------------------ plumbing

    async def _submit(self, kind: RequestKind, number: str | None = None) -> str | None:
        if self._stopped:
            raise CallControlError("modem is not connected")
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(kind, future, number))
        return await future

    def _fail_requests(self, exc: Exception) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Request) and not item.future.done():
                item.future.set_exception(exc)

    async def _next_input(self) -> _Input | None:
        timeout = max(0.0, self._next_deadline() - self._clock())
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def _next_deadline(self) -> float:
        deadlines = [self._next_reconcile]
        call = self._call
        if call is not None and self._snapshot.state is CallState.RINGING:
            if call.direction is CallDirection.INCOMING:
                grace_end = call.started_mono + self.policy.caller_id_grace_s
                if grace_end > self._clock():
                    deadlines.append(grace_end)
                deadlines.append(call.last_seen_mono + self.policy.ring_timeout_s)
            elif call.drop_deadline_mono is not None:
                deadlines.append(call.drop_deadline_mono)
            elif call.dial_deadline_mono is not None:
                deadlines.append(call.dial_deadline_mono)
        return min(deadlines)

    async def _command(self, command: str, timeout: float | None = None) -> AtResponse | None:
        """Run a command; None on timeout.  Channel loss propagates (ends the session)."""
        try:
            return await self._channel.command(command, timeout=timeout or self.policy.command_timeout_s)
        except AtTimeoutError as exc:
            log.warning("call control: %s", exc)
            return None

    async def _handle_request(self, request: _Request) -> None:
        try:
            if request.kind == "answer":
                result: str | None = await self._request_answer()
            elif request.kind == "hangup":
                result = await self._request_hangup()
            elif request.kind == "dial":
                assert request.number is not None
                result = await self._request_dial(request.number)
            else:
                await self._reconcile()
                result = None
        except AtChannelClosedError as exc:
            if not request.future.done():
                request.future.set_exception(exc)
            raise
        except (CallControlError, AtError, ValueError) as exc:
            if not request.future.done():
                request.future.set_exception(exc)
            return
        if not request.future.done():
            request.future.set_result(result)

    # ----------------------------------------------------------- snapshots

    def _set_state(self, state: CallState) -> None:
        call = self._call
        previous = self._snapshot
        if call is None or state is CallState.IDLE:
            snapshot = CallSnapshot(CallState.IDLE, None, None, self._wall())
        else:
            since = previous.since if previous.state is state and previous.call_id == call.call_id else self._wall()
            snapshot = CallSnapshot(state, call.call_id, call.caller, since, call.direction, call.withheld)
        if snapshot.state is previous.state and (snapshot.call_id, snapshot.caller, snapshot.withheld) == (
            previous.call_id,
            previous.caller,
            previous.withheld,
        ):
            return
        self._snapshot = snapshot
        log.info("call %s: %s -> %s (caller %s)", snapshot.call_id, previous.state, snapshot.state, snapshot.caller)
        self._emit(CallStateChanged(call=snapshot, previous=previous.state, ts=self._wall()))

    def _emit_end(self, call: _Call, reason: EndReason) -> None:
        now = self._wall()
        if reason is EndReason.MISSED:
            self._emit(CallMissed(call_id=call.call_id, caller=call.caller, ts=now))
        duration = 0.0 if call.connected_mono is None else max(0.0, self._clock() - call.connected_mono)
        self._emit(
            CallEnded(
                call_id=call.call_id,
                caller=call.caller,
                direction=call.direction,
                reason=reason,
                duration_s=round(duration, 3),
                answered=call.connected_mono is not None,
                modem_duration_s=call.modem_duration_s,
                ts=now,
            )
        )

    # ------------------------------------------------------------ call life

    def _start_call(self, direction: CallDirection, caller: str | None, withheld: bool) -> _Call:
        now = self._clock()
        call = _Call(
            call_id=new_call_id(self._wall()),
            direction=direction,
            caller=caller,
            withheld=withheld,
            started_mono=now,
            last_seen_mono=now,
        )
        self._call = call
        self._next_reconcile = min(self._next_reconcile, now + self.policy.reconcile_call_s)
        self._set_state(CallState.RINGING)
        return call

    def _announce(self, call: _Call) -> None:
        if call.announced:
            return
        call.announced = True
        self._emit(
            CallRinging(
                call_id=call.call_id,
                caller=call.caller,
                withheld=call.withheld,
                direction=call.direction,
                ts=self._wall(),
            )
        )

    def _caller_settled(self, call: _Call) -> bool:
        return (
            call.caller is not None
            or call.withheld
            or self._clock() - call.started_mono >= self.policy.caller_id_grace_s
        )

    def _learn_caller(self, call: _Call, number: str | None, withheld: bool) -> None:
        if number is not None and call.caller != number:
            call.caller = number
            call.withheld = False
        elif number is None and withheld and call.caller is None:
            call.withheld = True
        self._set_state(self._snapshot.state)

    async def _after_ringing_input(self, call: _Call) -> None:
        """Blocked-number check, ringing announcement, auto-answer."""
        if self._call is not call or self._snapshot.state is not CallState.RINGING:
            return
        if call.direction is not CallDirection.INCOMING:
            self._announce(call)
            return
        settled = self._caller_settled(call)
        if settled and self.policy.is_blocked(call.caller, call.withheld or call.caller is None):
            await self._reject_blocked(call)
            return
        if settled or call.caller is not None:
            self._announce(call)
        rings_needed = self.policy.answer_after_rings
        if (
            rings_needed is not None
            and settled
            and not call.answering
            and call.answer_attempts < self.policy.max_answer_attempts
            and call.ring_count >= rings_needed
            and (self.policy.may_answer is None or self.policy.may_answer(call.call_id))
        ):
            await self._answer(call)

    async def _reject_blocked(self, call: _Call) -> None:
        if call.rejecting:
            return
        call.rejecting = True
        log.info("call %s from blocked number %s: rejecting", call.call_id, call.caller or "(withheld)")
        self._announce(call)
        self._set_state(CallState.ENDING)
        await self._hang_up_modem()
        self._finish(call, EndReason.REJECTED)

    async def _answer(self, call: _Call) -> None:
        call.answering = True
        call.answer_attempts += 1
        response = await self._command("ATA", timeout=self.policy.answer_timeout_s)
        if self._call is not call:
            return
        call.answering = False
        if response is None:
            await self._reconcile()
            return
        if response.ok:
            await self._connected(call)
        elif response.final.kind is FinalKind.NO_CARRIER:
            await self._ended_by_remote(call)
        else:
            log.warning("ATA -> %s; asking AT+CLCC", response.final)
            await self._reconcile()

    async def _connected(self, call: _Call) -> None:
        if self._call is not call or call.connected_mono is not None:
            return
        call.connected_mono = self._clock()
        call.answering = False
        self._announce(call)
        self._set_state(CallState.ACTIVE)
        self._emit(CallAnswered(call_id=call.call_id, caller=call.caller, direction=call.direction, ts=self._wall()))
        await self._run_hook("call_connected")

    async def _ended_by_remote(self, call: _Call, reason: EndReason | None = None) -> None:
        if self._call is not call:
            return
        if reason is None:
            if call.connected_mono is not None:
                reason = EndReason.REMOTE_HANGUP
            elif call.direction is CallDirection.INCOMING:
                reason = EndReason.MISSED
            else:
                # The order of +CLCC stat 6 / NO CARRIER and BUSY / NO ANSWER is not
                # pinned down: give the specific reason a moment to arrive.
                if call.drop_deadline_mono is None:
                    call.drop_deadline_mono = self._clock() + self.policy.outcome_grace_s
                return
        self._announce(call)
        self._set_state(CallState.ENDING)
        if call.connected_mono is not None:
            await self._run_hook("call_disconnected")
        self._finish(call, reason)

    def _finish(self, call: _Call, reason: EndReason) -> None:
        if self._call is not call:
            return
        self._emit_end(call, reason)
        self._call = None
        self._last_end = (self._clock(), call, reason)
        self._set_state(CallState.IDLE)
        self._next_reconcile = self._clock() + self.policy.reconcile_idle_s

    def _just_ended(self) -> _Call | None:
        """The call that ended within the post-call guard, if any (its URCs may still trickle in)."""
        if self._last_end is None:
            return None
        ended_at, call, _ = self._last_end
        return call if self._clock() - ended_at < self.policy.post_call_guard_s else None

    async def _hang_up_modem(self) -> None:
        response = await self._command("AT+CHUP")
        if response is None or not response.ok:
            log.warning("AT+CHUP failed (%s); trying ATH", "timeout" if response is None else response.final)
            await self._command("ATH")

    async def _run_hook(self, name: Literal["call_connected", "call_disconnected"]) -> None:
        hook = getattr(self._hooks, name)
        try:
            await hook(self._snapshot)
        except (AtChannelClosedError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("call hook %s failed", name)

    # ------------------------------------------------------------- requests

    async def _request_answer(self) -> str | None:
        call = self._call
        if (
            call is None
            or call.direction is not CallDirection.INCOMING
            or self._snapshot.state is not CallState.RINGING
        ):
            raise CallControlError("no incoming call is ringing")
        await self._answer(call)
        if call.connected_mono is None:
            raise CallControlError("the call could not be answered")
        return call.call_id

    async def _request_hangup(self) -> str | None:
        call = self._call
        if call is None:
            return None
        self._set_state(CallState.ENDING)
        await self._hang_up_modem()
        if call.connected_mono is not None:
            await self._run_hook("call_disconnected")
        self._finish(call, EndReason.LOCAL_HANGUP)
        return call.call_id

    async def _request_dial(self, number: str) -> str | None:
        if self._call is not None:
            raise CallControlError(f"cannot dial: a call is {self._snapshot.state}")
        call = self._start_call(CallDirection.OUTGOING, number, False)
        self._announce(call)
        response = await self._command(f"ATD{number};", timeout=self.policy.command_timeout_s)
        if self._call is not call:
            return call.call_id
        if response is None:
            await self._reconcile()
        elif response.ok:
            call.dial_deadline_mono = self._clock() + self.policy.dial_timeout_s
        else:
            reason = {
                FinalKind.BUSY: EndReason.BUSY,
                FinalKind.NO_ANSWER: EndReason.NO_ANSWER,
            }.get(response.final.kind, EndReason.FAILED)
            log.warning("ATD%s -> %s", number, response.final)
            self._set_state(CallState.ENDING)
            self._finish(call, reason)
        return call.call_id

    # ----------------------------------------------------------------- URCs

    async def _handle_urc(self, urc: Urc) -> None:
        match urc:
            case Ring() | CRing():
                await self._on_ring(urc)
            case CallerIdUrc():
                await self._on_caller_id(urc)
            case CallListUrc():
                await self._on_call_list_entry(urc.entry)
            case VoiceCallBegin():
                await self._on_voice_call_begin()
            case VoiceCallEnd():
                await self._on_voice_call_end(urc)
            case NoCarrier():
                await self._on_no_carrier()
            case Busy():
                await self._on_outgoing_refused(EndReason.BUSY)
            case NoAnswer():
                await self._on_outgoing_refused(EndReason.NO_ANSWER)
            case MissedCall():
                await self._on_missed(self._call, urc.number)
            case DtmfReceived():
                self._on_dtmf(urc)
            case ModemReady():
                self._next_reconcile = self._clock()

    def _ringing_incoming(self) -> _Call | None:
        """The incoming call while it rings, else None."""
        call = self._call
        if call is None or call.direction is not CallDirection.INCOMING:
            return None
        return call if self._snapshot.state is CallState.RINGING else None

    async def _first_ring(self, caller: str | None, withheld: bool) -> _Call | None:
        """A new incoming call from its first RING or +CLIP, once AT+CLCC lists it; None for a stray URC.

        A straggler of the call that just ended, or a URC the modem never meant
        (line noise that parses), makes no call: ``AT+CLCC`` is the modem's own
        word. Only if it cannot answer is the URC trusted.
        """
        confirmed = await self._reconcile()
        if confirmed:
            call = self._ringing_incoming()
            if call is None:
                if self._call is None and self._just_ended() is None:
                    log.warning("a ring or caller id with no call on the modem (AT+CLCC lists none): ignored")
                return None
            if caller is not None or withheld:
                self._learn_caller(call, caller, withheld)
        else:
            call = self._start_call(CallDirection.INCOMING, caller, withheld)
        call.ring_count = max(call.ring_count, 1)  # this ring (for +CLIP: the RING before it was lost)
        return call

    def _another_ring(self) -> _Call | None:
        """Count a ring of the ringing incoming call; None for a second call waiting during a call (not handled)."""
        call = self._ringing_incoming()
        if call is not None:
            call.ring_count += 1
            call.last_seen_mono = self._clock()
        return call

    async def _on_ring(self, urc: Ring | CRing) -> None:
        if isinstance(urc, CRing) and not urc.call_type.upper().startswith("VOICE"):
            return  # not a voice call
        if self._call is None:
            call = await self._first_ring(None, False)
        else:
            call = self._another_ring()
        if call is not None:
            await self._after_ringing_input(call)

    async def _on_caller_id(self, urc: CallerIdUrc) -> None:
        number, withheld = urc.caller.number, urc.caller.withheld
        if self._call is None:
            call = await self._first_ring(number, withheld)
        else:
            call = self._ringing_incoming()
            if call is not None:
                self._learn_caller(call, number, withheld)
        if call is not None:
            await self._after_ringing_input(call)

    async def _on_voice_call_begin(self) -> None:
        call = self._call
        if call is not None and call.connected_mono is not None:
            return
        # a call we did not answer (or know) connected: believe it only if AT+CLCC lists it active
        if await self._reconcile():
            if self._call is None or self._call.connected_mono is None:
                log.warning("VOICE CALL: BEGIN but AT+CLCC lists no active call: ignored")
            return
        if call is None:
            call = self._start_call(CallDirection.INCOMING, None, False)
            self._next_reconcile = self._clock()  # learn the number
        await self._connected(call)

    async def _on_voice_call_end(self, urc: VoiceCallEnd) -> None:
        call = self._call
        if call is not None:
            call.modem_duration_s = urc.duration_s
            await self._ended_by_remote(call)

    async def _on_no_carrier(self) -> None:
        call = self._call
        if call is not None:
            await self._ended_by_remote(call)

    async def _on_outgoing_refused(self, reason: EndReason) -> None:
        """BUSY / NO ANSWER: the outcome of an outgoing call not yet answered."""
        call = self._call
        if call is not None and call.direction is CallDirection.OUTGOING and call.connected_mono is None:
            await self._ended_by_remote(call, reason)

    def _on_dtmf(self, urc: DtmfReceived) -> None:
        call = self._call
        if call is not None and self._snapshot.state is CallState.ACTIVE:
            self._emit(CallDtmf(call_id=call.call_id, digit=urc.digit, ts=self._wall()))

    async def _on_missed(self, call: _Call | None, number: str | None) -> None:
        if call is None:
            recent = self._last_end
            if recent is not None and recent[1].connected_mono is None and self._clock() - recent[0] < 10.0:
                return  # the call that just ended unanswered (e.g. via +CLCC stat 6)
            # The rings went unseen; still record the missed call.
            call = self._start_call(CallDirection.INCOMING, number, number is None)
            await self._ended_by_remote(call, EndReason.MISSED)
            return
        if call.direction is CallDirection.INCOMING and call.connected_mono is None:
            if call.caller is None and number:
                self._learn_caller(call, number, False)
            await self._ended_by_remote(call, EndReason.MISSED)

    async def _on_call_list_entry(self, entry: CallListEntry) -> None:
        if not entry.is_voice:
            return
        call = self._call
        stat = entry.stat
        if stat is CallStat.DISCONNECTED:
            if call is not None and self._entry_matches(call, entry):
                await self._ended_by_remote(call)
            return
        if stat is CallStat.HELD:
            return
        if call is None:
            # a straggler of the call that just ended, a new call, or a stray line: AT+CLCC decides
            if not await self._reconcile():
                await self._adopt(entry)
            elif self._call is None and self._just_ended() is None:
                log.warning("+CLCC for a call the modem does not list (AT+CLCC lists none): ignored: %s", entry)
            return
        if not self._entry_matches(call, entry):
            log.info("ignoring second call in +CLCC: %s", entry)
            return
        if stat is CallStat.ACTIVE:
            if call.connected_mono is None and call.direction is CallDirection.INCOMING:
                if not await self._reconcile():  # connected without our ATA: AT+CLCC confirms it
                    await self._connected(call)
                return
            await self._connected(call)
        elif stat in (CallStat.INCOMING, CallStat.WAITING) and self._snapshot.state is CallState.RINGING:
            if entry.number and call.caller is None:
                self._learn_caller(call, entry.number, False)
                await self._after_ringing_input(call)

    def _entry_matches(self, call: _Call, entry: CallListEntry) -> bool:
        direction = CallDirection.INCOMING if entry.direction is CallListDirection.INCOMING else CallDirection.OUTGOING
        if call.caller is None or entry.number is None:
            return True  # a call adopted from VOICE CALL: BEGIN knows neither number nor direction
        if direction is not call.direction:
            return False
        return numbers_match(call.caller, entry.number)

    async def _adopt(self, entry: CallListEntry) -> None:
        """A call the machine did not know about (lost URCs, or present at connect)."""
        stat = entry.stat
        direction = CallDirection.INCOMING if entry.direction is CallListDirection.INCOMING else CallDirection.OUTGOING
        if stat in (CallStat.INCOMING, CallStat.WAITING) and direction is CallDirection.INCOMING:
            # Rings are counted from RING URCs; if those never come, every ring
            # timeout that AT+CLCC confirms counts as one (see _handle_timers).
            call = self._start_call(direction, entry.number, entry.number is None)
            await self._after_ringing_input(call)
        elif stat in (CallStat.DIALING, CallStat.ALERTING) and direction is CallDirection.OUTGOING:
            call = self._start_call(direction, entry.number, False)
            call.dial_deadline_mono = self._clock() + self.policy.dial_timeout_s
            self._announce(call)
        elif stat is CallStat.ACTIVE:
            call = self._start_call(direction, entry.number, entry.number is None)
            log.info("adopting an already active call %s", call.call_id)
            await self._connected(call)

    # --------------------------------------------------------------- timers

    async def _handle_timers(self) -> None:
        now = self._clock()
        call = self._call
        if call is not None and self._snapshot.state is CallState.RINGING:
            if call.direction is CallDirection.INCOMING:
                if self._caller_settled(call):
                    await self._after_ringing_input(call)
                if self._call is call and now - call.last_seen_mono >= self.policy.ring_timeout_s:
                    log.info("call %s: no ring for %.1f s, asking AT+CLCC", call.call_id, now - call.last_seen_mono)
                    call.last_seen_mono = now
                    await self._reconcile()
                    if self._call is call and self._snapshot.state is CallState.RINGING:
                        call.ring_count += 1  # still alerting per AT+CLCC: count it as a ring
                        await self._after_ringing_input(call)
            elif call.drop_deadline_mono is not None:
                if now >= call.drop_deadline_mono:
                    self._set_state(CallState.ENDING)
                    self._finish(call, EndReason.FAILED)
            elif call.dial_deadline_mono is not None and now >= call.dial_deadline_mono:
                log.info("call %s: not answered within %.0f s, hanging up", call.call_id, self.policy.dial_timeout_s)
                self._set_state(CallState.ENDING)
                await self._hang_up_modem()
                self._finish(call, EndReason.NO_ANSWER)
        if self._clock() >= self._next_reconcile:
            await self._reconcile()

    async def _reconcile(self) -> bool:
        """Make the machine agree with ``AT+CLCC``; False if the modem did not answer it."""
        interval = self.policy.reconcile_idle_s if self._call is None else self.policy.reconcile_call_s
        self._next_reconcile = self._clock() + interval
        response = await self._command("AT+CLCC")
        if response is None or not response.ok:
            if response is not None:
                log.warning("AT+CLCC -> %s", response.final)
            return False
        entries = [
            e for e in parse_clcc(response.prefixed("+CLCC:")) if e.is_voice and e.stat is not CallStat.DISCONNECTED
        ]
        call = self._call
        if call is None:
            chosen = _choose_entry(entries)
            if chosen is not None:
                await self._adopt(chosen)
            return True
        mine = [e for e in entries if self._entry_matches(call, e)]
        if not mine:
            log.info("call %s: AT+CLCC lists no such call; it has ended", call.call_id)
            await self._ended_by_remote(call)
            return True
        entry = _choose_entry(mine)
        assert entry is not None
        if entry.number and call.caller is None:
            self._learn_caller(call, entry.number, False)
        if entry.stat is CallStat.ACTIVE:
            await self._connected(call)
        elif self._snapshot.state is CallState.RINGING:
            await self._after_ringing_input(call)
        self._next_reconcile = self._clock() + (
            self.policy.reconcile_idle_s if self._call is None else self.policy.reconcile_call_s
        )
        return True


_STAT_PRIORITY = {
    CallStat.ACTIVE: 0,
    CallStat.INCOMING: 1,
    CallStat.DIALING: 2,
    CallStat.ALERTING: 2,
    CallStat.WAITING: 3,
    CallStat.HELD: 4,
}


def _choose_entry(entries: list[CallListEntry]) -> CallListEntry | None:
    candidates = [e for e in entries if e.stat in _STAT_PRIORITY]
    if not candidates:
        return None
    return min(candidates, key=lambda e: (_STAT_PRIORITY[e.stat], e.index))


__all__ = [
    "CALL_URC_TYPES",
    "CallControlError",
    "CallHooks",
    "CallPolicy",
    "CallStateMachine",
    "NoHooks",
]
