"""``Sim7600Modem``: the driver's one public object.

It finds the ports, opens them, initialises the modem, runs the call state
machine, polls status, reads SMS, moves PCM audio, and, when the modem
vanishes (EOF or read error on either tty, the device node gone, or the modem
no longer answering), ends any call with reason ``modem_lost``, reports the
disconnect and keeps trying to reconnect until ``stop()``.

Ownership: ``start()`` creates one supervisor task; each connection runs its
workers in a ``TaskGroup`` inside it; ``stop()`` cancels the supervisor and
awaits it, so no task outlives the object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Final

from drivers.sim7600.at_channel import AtChannel
from drivers.sim7600.call_model import CallSnapshot, CallState, EndReason
from drivers.sim7600.call_state import CallControlError, CallPolicy, CallStateMachine
from drivers.sim7600.event_hub import EventHub, EventSubscription
from drivers.sim7600.events import (
    CallAudioReady,
    ModemConnected,
    ModemDisconnected,
    ModemEvent,
    ModemStateChanged,
    PcmAlarm,
    SmsReceived,
)
from drivers.sim7600.modem_state import InitOptions, ModemNotRespondingError, ModemState, ModemStateTracker, PinGuard
from drivers.sim7600.parsers import SmsMessage
from drivers.sim7600.pcm_port import PcmPort, PcmSession, PcmStats, disable_pcm, enable_pcm
from drivers.sim7600.ports import (
    CommandRunner,
    ModemManagerStatus,
    ModemPorts,
    PortsNotFoundError,
    check_modem_manager,
    resolve_modem_ports,
)
from drivers.sim7600.result_codes import AtChannelClosedError, AtResponse
from drivers.sim7600.serial_link import PortOpenError
from drivers.sim7600.sms import SmsService
from drivers.sim7600.urc import ModemReady, NewSms, SmsReady, Urc

log = logging.getLogger(__name__)

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class DriverTimings:
    command_timeout_s: float = 5.0
    boot_timeout_s: float = 60.0
    probe_timeout_s: float = 1.0
    sim_ready_timeout_s: float = 15.0
    state_poll_interval_s: float = 15.0
    reconnect_interval_s: float = 0.5
    presence_check_interval_s: float = 0.5
    max_consecutive_timeouts: int = 3
    sms_send_timeout_s: float = 60.0
    pcm_enable_attempts: int = 3
    pcm_retry_delay_s: float = 0.3
    pcm_health_after_s: float = 3.0
    pcm_health_interval_s: float = 1.0
    caller_id_grace_s: float = 0.5
    ring_timeout_s: float = 8.0
    reconcile_idle_s: float = 15.0
    reconcile_call_s: float = 2.0
    dial_timeout_s: float = 60.0
    answer_timeout_s: float = 10.0
    post_call_guard_s: float = 1.0
    hangup_on_stop_s: float = 3.0


@dataclass(frozen=True, slots=True)
class Sim7600Settings:
    at_port: str = "auto"
    audio_port: str = "auto"
    answer_after_rings: int | None = 2
    may_answer: Callable[[str], bool] | None = None  # asked before each auto-answer (CallPolicy.may_answer)
    blocked_numbers: tuple[str, ...] = ()
    sim_pin: str | None = None
    sms_charset: str = "UCS2"
    collect_stored_sms: bool = True  # deliver (and delete) messages that arrived while nobody listened
    exclusive_ports: bool = True
    check_modem_manager: bool = True
    sysfs_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    timings: DriverTimings = field(default_factory=DriverTimings)

    def call_policy(self) -> CallPolicy:
        t = self.timings
        return CallPolicy(
            answer_after_rings=self.answer_after_rings,
            may_answer=self.may_answer,
            blocked_numbers=self.blocked_numbers,
            caller_id_grace_s=t.caller_id_grace_s,
            ring_timeout_s=t.ring_timeout_s,
            reconcile_idle_s=t.reconcile_idle_s,
            reconcile_call_s=t.reconcile_call_s,
            dial_timeout_s=t.dial_timeout_s,
            command_timeout_s=t.command_timeout_s,
            answer_timeout_s=t.answer_timeout_s,
            post_call_guard_s=t.post_call_guard_s,
        )

    def init_options(self) -> InitOptions:
        t = self.timings
        return InitOptions(
            sim_pin=self.sim_pin,
            boot_timeout_s=t.boot_timeout_s,
            probe_timeout_s=t.probe_timeout_s,
            command_timeout_s=t.command_timeout_s,
            sim_ready_timeout_s=t.sim_ready_timeout_s,
            sms_charset=self.sms_charset,
        )


class ModemUnavailableError(CallControlError):
    """The modem is not connected (unplugged, booting, or the driver is stopped)."""


class _ModemGone(Exception):
    pass


_COLLECT_STORED: Final = object()


class _Connection:
    """Everything that lives exactly as long as one opening of the ports."""

    def __init__(self, modem: Sim7600Modem, ports: ModemPorts) -> None:
        self.modem = modem
        self.ports = ports
        self.gone = asyncio.Event()
        self.gone_reason = ""
        self.wake_poll = asyncio.Event()
        self.sms_queue: asyncio.Queue[NewSms | object] = asyncio.Queue()
        self.backlog: list[Urc] = []
        self.channel: AtChannel | None = None
        self.pcm: PcmPort | None = None
        self.tracker: ModemStateTracker | None = None
        self.machine: CallStateMachine | None = None
        self.sms: SmsService | None = None

    def mark_gone(self, reason: str) -> None:
        if not self.gone.is_set():
            self.gone_reason = reason
            self.gone.set()

    def route(self, urc: Urc) -> None:
        """URC sink (runs inside the channel's data_received: never blocks)."""
        if self.tracker is None or self.machine is None:
            self.backlog.append(urc)
            return
        if self.tracker.apply_urc(urc):
            self.modem._publish_state()
        if isinstance(urc, ModemReady):
            self.wake_poll.set()
        elif isinstance(urc, NewSms):
            self.sms_queue.put_nowait(urc)
        elif isinstance(urc, SmsReady):
            self.sms_queue.put_nowait(_COLLECT_STORED)
        self.machine.feed(urc)

    def replay_backlog(self) -> None:
        backlog, self.backlog = self.backlog, []
        for urc in backlog:
            self.route(urc)


class _PcmHooks:
    """Call hooks: PCM on after connect, off after the call ended (sim7600.md §4.4 order)."""

    def __init__(self, modem: Sim7600Modem, connection: _Connection) -> None:
        self._modem = modem
        self._connection = connection

    async def call_connected(self, call: CallSnapshot) -> None:
        pcm, channel = self._connection.pcm, self._connection.channel
        assert pcm is not None and channel is not None
        session = pcm.start_session(call.call_id)
        t = self._modem.settings.timings
        if await enable_pcm(
            channel, attempts=t.pcm_enable_attempts, retry_delay_s=t.pcm_retry_delay_s, timeout_s=t.command_timeout_s
        ):
            session.mark_enabled()
            self._modem._emit(CallAudioReady(call_id=call.call_id, session=session, ts=time.time()))
        else:
            self._modem._emit(
                PcmAlarm(
                    call_id=call.call_id,
                    kind="enable_failed",
                    detail=f"AT+CPCMREG=1 failed {t.pcm_enable_attempts} times: no call audio",
                    ts=time.time(),
                )
            )

    async def call_disconnected(self, call: CallSnapshot) -> None:
        pcm, channel = self._connection.pcm, self._connection.channel
        assert pcm is not None and channel is not None
        pcm.end_session()
        await disable_pcm(channel, timeout_s=self._modem.settings.timings.command_timeout_s)


class Sim7600Modem:
    def __init__(
        self, settings: Sim7600Settings | None = None, *, modem_manager_runner: CommandRunner | None = None
    ) -> None:
        self.settings = settings or Sim7600Settings()
        self._modem_manager_runner = modem_manager_runner
        self._hub: EventHub[ModemEvent] = EventHub()
        self._supervisor: asyncio.Task[None] | None = None
        self._connection: _Connection | None = None
        self._ready: asyncio.Event | None = None
        self._stopping = False
        self._facade_problems: dict[str, str] = {}
        self._state = ModemState(connected=False)
        self._last_call = CallSnapshot(CallState.IDLE, None, None, time.time())
        self.modem_manager: ModemManagerStatus | None = None
        self._connections_made = 0
        self._pin_guard = PinGuard()

    def set_blocked_numbers(self, numbers: tuple[str, ...]) -> None:
        """Change which callers are rejected; applies from the next ring and across reconnects."""
        self.settings = replace(self.settings, blocked_numbers=tuple(numbers))
        connection = self._connection
        if connection is not None and connection.machine is not None:
            connection.machine.policy = replace(connection.machine.policy, blocked_numbers=tuple(numbers))

    # ---------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        self._stopping = False
        self._ready = asyncio.Event()
        self._supervisor = asyncio.create_task(self._supervise(), name="sim7600-supervisor")

    async def stop(self) -> None:
        task = self._supervisor
        if task is None:
            return
        self._stopping = True
        connection = self._connection
        if connection is not None and connection.machine is not None and connection.machine.running:
            if connection.machine.snapshot.state is not CallState.IDLE:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.settings.timings.hangup_on_stop_s):
                        await connection.machine.hangup()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._supervisor = None
        self._hub.close_all()

    async def __aenter__(self) -> Sim7600Modem:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -------------------------------------------------------------- views

    def subscribe(self, max_queued: int = 1000) -> EventSubscription[ModemEvent]:
        return self._hub.subscribe(max_queued)

    @property
    def state(self) -> ModemState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._ready is not None and self._ready.is_set()

    @property
    def call(self) -> CallSnapshot:
        connection = self._connection
        if connection is not None and connection.machine is not None:
            return connection.machine.snapshot
        return self._last_call

    @property
    def ports(self) -> ModemPorts | None:
        return self._connection.ports if self._connection is not None else None

    async def wait_connected(self, timeout: float | None = None) -> ModemState:
        if self._ready is None:
            raise ModemUnavailableError("driver not started")
        async with asyncio.timeout(timeout):
            await self._ready.wait()
        return self._state

    # ------------------------------------------------------------ control

    async def answer(self) -> None:
        await self._machine().answer()

    async def hangup(self) -> None:
        await self._machine().hangup()

    async def dial(self, number: str) -> str:
        """Place an outgoing voice call; returns the call_id (progress arrives as events)."""
        return await self._machine().dial(number)

    async def send_dtmf(self, digits: str, *, duration_ds: int | None = None) -> None:
        """``AT+VTS`` for each digit during an active call (``duration_ds`` in 1/10 s)."""
        digits = digits.upper()
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise ValueError(f"DTMF digits are 0-9 * # A-D, got {digits!r}")
        if self.call.state is not CallState.ACTIVE:
            raise CallControlError("DTMF needs an active call")
        channel = self._channel()
        for digit in digits:
            command = f"AT+VTS={digit}" if duration_ds is None else f"AT+VTS={digit},{duration_ds}"
            response = await channel.command(command, timeout=self.settings.timings.command_timeout_s)
            response.raise_for_error()

    async def send_sms(self, number: str, text: str) -> int | None:
        """Send one SMS; returns the network's message reference."""
        connection = self._require_connection()
        assert connection.sms is not None
        return await connection.sms.send(number, text)

    async def at_command(self, command: str, *, timeout: float | None = None) -> AtResponse:
        """Raw AT command for diagnostics (``secretary doctor``); do not drive calls with it."""
        return await self._channel().command(command, timeout=timeout or self.settings.timings.command_timeout_s)

    async def refresh_state(self) -> ModemState:
        connection = self._require_connection()
        assert connection.tracker is not None
        await connection.tracker.refresh()
        self._publish_state()
        return self._state

    # -------------------------------------------------------------- audio

    @property
    def audio(self) -> PcmSession | None:
        """The current call's PCM session (None outside a connected call)."""
        connection = self._connection
        if connection is None or connection.pcm is None:
            return None
        return connection.pcm.session

    async def read_audio_frame(self, timeout: float | None = None) -> bytes | None:
        session = self.audio
        if session is None:
            return None
        return await session.read_frame(timeout)

    async def audio_frames(self) -> AsyncIterator[bytes]:
        """Downlink frames of the current call; ends when the call's audio ends."""
        session = self.audio
        if session is None:
            return
        async for frame in session.frames():
            yield frame

    def write_audio_frame(self, frame: bytes) -> bool:
        """Queue one 320-byte uplink frame; never blocks; False when dropped or no call."""
        session = self.audio
        if session is None:
            return False
        return session.write_frame(frame)

    def pcm_stats(self) -> PcmStats | None:
        session = self.audio
        return session.stats() if session is not None else None

    # ---------------------------------------------------------- internals

    def _emit(self, event: ModemEvent) -> None:
        self._hub.publish(event)

    def _require_connection(self) -> _Connection:
        connection = self._connection
        if connection is None or self._ready is None or not self._ready.is_set():
            raise ModemUnavailableError("modem is not connected")
        return connection

    def _machine(self) -> CallStateMachine:
        connection = self._require_connection()
        assert connection.machine is not None
        return connection.machine

    def _channel(self) -> AtChannel:
        connection = self._require_connection()
        assert connection.channel is not None
        return connection.channel

    def _set_problem(self, key: str, text: str | None) -> None:
        if text is None:
            self._facade_problems.pop(key, None)
        else:
            self._facade_problems[key] = text

    def _publish_state(self) -> None:
        connection = self._connection
        if connection is not None and connection.tracker is not None and self.connected:
            base = connection.tracker.state
        else:
            base = ModemState(connected=False)
        problems = tuple(dict.fromkeys((*base.problems, *self._facade_problems.values())))
        state = replace(base, problems=problems)
        if state != self._state:
            self._state = state
            self._emit(ModemStateChanged(state=state, ts=time.time()))

    async def _supervise(self) -> None:
        last_problem: str | None = None
        checked_modem_manager = False
        while True:
            try:
                ports = await asyncio.to_thread(
                    resolve_modem_ports,
                    self.settings.at_port,
                    self.settings.audio_port,
                    sysfs_root=self.settings.sysfs_root,
                    dev_root=self.settings.dev_root,
                )
            except PortsNotFoundError as exc:
                if str(exc) != last_problem:
                    log.warning("modem ports: %s", exc)
                    last_problem = str(exc)
                self._set_problem("ports", str(exc))
                self._publish_state()
                await asyncio.sleep(self.settings.timings.reconnect_interval_s)
                continue
            self._set_problem("ports", None)
            last_problem = None
            if self.settings.check_modem_manager and not checked_modem_manager:
                checked_modem_manager = True
                await self._check_modem_manager()
            connected_before = self._connections_made
            reason = await self._run_connection(ports)
            if self._connections_made != connected_before:
                log.warning("modem disconnected: %s", reason)
                self._emit(ModemDisconnected(reason=reason, ts=time.time()))
                last_problem = None
            elif reason != last_problem:
                log.warning("modem not usable yet: %s", reason)
                last_problem = reason
            await asyncio.sleep(self.settings.timings.reconnect_interval_s)

    async def _check_modem_manager(self) -> None:
        status = await check_modem_manager(self._modem_manager_runner)
        self.modem_manager = status
        if status.active:
            log.warning("%s", status.advice)
        self._set_problem("modem_manager", status.advice if status.active else None)

    async def _run_connection(self, ports: ModemPorts) -> str:
        connection = _Connection(self, ports)
        timings = self.settings.timings
        try:
            try:
                channel = await AtChannel.open(
                    ports.at,
                    urc_sink=connection.route,
                    exclusive=self.settings.exclusive_ports,
                    default_timeout_s=timings.command_timeout_s,
                )
                connection.channel = channel
                channel.on_lost = lambda exc: connection.mark_gone(f"AT port {ports.at} lost: {exc or 'closed'}")
                pcm = await PcmPort.open(ports.audio, exclusive=self.settings.exclusive_ports)
                connection.pcm = pcm
                pcm.on_lost = lambda exc: connection.mark_gone(f"audio port {ports.audio} lost: {exc or 'closed'}")
            except PortOpenError as exc:
                self._set_problem("open", str(exc))
                self._publish_state()
                return str(exc)
            self._set_problem("open", None)
            connection.tracker = ModemStateTracker(channel, ports, self.settings.init_options(), self._pin_guard)
            connection.sms = SmsService(
                channel, command_timeout_s=timings.command_timeout_s, send_timeout_s=timings.sms_send_timeout_s
            )
            machine = CallStateMachine(
                channel,
                emit=self._emit,
                policy=self.settings.call_policy(),
                hooks=_PcmHooks(self, connection),
            )
            connection.machine = machine
            self._connection = connection
            init_budget_s = timings.boot_timeout_s + timings.sim_ready_timeout_s + 30 * timings.command_timeout_s
            try:
                async with asyncio.timeout(init_budget_s):
                    await connection.tracker.initialize()
            except ModemNotRespondingError as exc:
                return str(exc)
            except TimeoutError:
                return f"modem initialisation did not finish within {init_budget_s:g} s"
            except AtChannelClosedError as exc:
                return f"port closed during initialisation: {exc}"
            if channel.consecutive_timeouts >= timings.max_consecutive_timeouts:
                return "modem stopped answering during initialisation"
            connection.replay_backlog()
            assert self._ready is not None
            self._ready.set()
            self._connections_made += 1
            log.info("modem connected on %s / %s", ports.at, ports.audio)
            self._emit(ModemConnected(ports=ports, info=connection.tracker.state.info, ts=time.time()))
            self._publish_state()
            return await self._serve(connection)
        finally:
            await self._tear_down(connection)

    async def _serve(self, connection: _Connection) -> str:
        assert connection.machine is not None
        try:
            async with asyncio.TaskGroup() as workers:
                workers.create_task(connection.machine.run(), name="sim7600-calls")
                workers.create_task(self._watch_presence(connection), name="sim7600-presence")
                workers.create_task(self._poll_state(connection), name="sim7600-poll")
                workers.create_task(self._sms_worker(connection), name="sim7600-sms")
                workers.create_task(self._pcm_health(connection), name="sim7600-pcm-health")
        except ExceptionGroup as group:
            return self._describe_failure(connection, group)
        return "connection ended"

    @staticmethod
    def _describe_failure(connection: _Connection, group: ExceptionGroup) -> str:
        leaves = _leaf_exceptions(group)
        for exc in leaves:
            if isinstance(exc, _ModemGone):
                return str(exc)
        for exc in leaves:
            if isinstance(exc, AtChannelClosedError):
                return connection.gone_reason or f"AT port closed: {exc}"
        log.error("sim7600 driver worker failed; reconnecting", exc_info=group)
        return f"driver error: {leaves[0]!r}"

    async def _tear_down(self, connection: _Connection) -> None:
        if self._connection is connection:
            self._connection = None
        if self._ready is not None:
            self._ready.clear()
        machine = connection.machine
        if machine is not None:
            self._last_call = machine.snapshot
            machine.abort(EndReason.SHUTDOWN if self._stopping else EndReason.MODEM_LOST)
            machine.close()
            self._last_call = machine.snapshot
        if connection.pcm is not None:
            connection.pcm.end_session()
            await connection.pcm.close()
        if connection.channel is not None:
            await connection.channel.close()
        self._publish_state()

    async def _watch_presence(self, connection: _Connection) -> None:
        interval = self.settings.timings.presence_check_interval_s
        while True:
            try:
                async with asyncio.timeout(interval):
                    await connection.gone.wait()
            except TimeoutError:
                for path in (connection.ports.at, connection.ports.audio):
                    if not os.path.exists(path):
                        connection.mark_gone(f"{path} disappeared")
                channel = connection.channel
                limit = self.settings.timings.max_consecutive_timeouts
                if channel is not None and channel.consecutive_timeouts >= limit:
                    connection.mark_gone(f"modem stopped answering ({channel.consecutive_timeouts} commands timed out)")
                continue
            raise _ModemGone(connection.gone_reason)

    async def _poll_state(self, connection: _Connection) -> None:
        tracker, sms = connection.tracker, connection.sms
        assert tracker is not None and sms is not None
        timings = self.settings.timings
        while True:
            try:
                async with asyncio.timeout(timings.state_poll_interval_s):
                    await connection.wake_poll.wait()
            except TimeoutError:
                pass
            connection.wake_poll.clear()
            if tracker.needs_reinit:
                await tracker.initialize()
                sms.forget_settings()
            else:
                await tracker.refresh()
            self._publish_state()

    async def _sms_worker(self, connection: _Connection) -> None:
        sms = connection.sms
        assert sms is not None
        if self.settings.collect_stored_sms:
            connection.sms_queue.put_nowait(_COLLECT_STORED)
        while True:
            item = await connection.sms_queue.get()
            try:
                if isinstance(item, NewSms):
                    message = await sms.receive(item)
                    messages: list[SmsMessage] = [message] if message is not None else []
                elif self.settings.collect_stored_sms:
                    messages = await sms.collect_stored()
                else:
                    messages = []
            except AtChannelClosedError:
                raise
            except Exception as exc:
                log.warning("reading SMS failed: %s", exc)
                continue
            for message in messages:
                self._emit(SmsReceived(message=message, ts=time.time()))

    async def _pcm_health(self, connection: _Connection) -> None:
        timings = self.settings.timings
        while True:
            await asyncio.sleep(timings.pcm_health_interval_s)
            session = connection.pcm.session if connection.pcm is not None else None
            if session is None:
                continue
            for kind, detail in session.new_alarms(timings.pcm_health_after_s):
                log.warning("call %s audio: %s", session.call_id, detail)
                self._emit(PcmAlarm(call_id=session.call_id, kind=kind, detail=detail, ts=time.time()))


def _leaf_exceptions(group: BaseExceptionGroup) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaf_exceptions(exc))
        else:
            leaves.append(exc)
    return leaves


__all__ = [
    "DriverTimings",
    "ModemUnavailableError",
    "Sim7600Modem",
    "Sim7600Settings",
]
