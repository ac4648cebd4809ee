"""The modem as a supervised service: the driver's events on the bus, bus commands to the driver.

Driver events become the design.md contracts ``modem/state`` (retained),
``sms/event`` and ``modem/event`` (SMS and modem health). Every driver event
is also relayed to the call service, whose announcer is the one writer of
``call/state`` and ``call/event`` (``daemon/call/announcer.py``); the relay
starts with the modem's call state as the service finds it. Commands:
``cmd/hangup``, ``cmd/dial``, ``cmd/sms/send``, and ``cmd/block``,
``cmd/unblock``, ``cmd/blocked`` for the numbers the owner blocked at run time
(kept in ``data_dir/secretary.db``, added to ``modem.blocked_numbers``). A
call due to be answered (``modem.answer_after_rings``) is answered only if
``may_answer`` says so (the call service: once the box can speak); else it
rings on and the call service answers it or turns it away. With
``modem.driver: simulator`` the built-in simulator is started first (its ptys
live under ``data_dir/run``) and the real driver talks to it.
When the service stops (the daemon stops, or a restart) ``modem/state`` says
``connected: false`` and nothing else it could no longer vouch for.
``cmd/simulator/speak`` reads only WAVs under the bundled caller recordings
(``daemon/tools/demo_caller``) or ``data_dir/simulator``: any other path, a
symlink or a ``..`` is refused ``bad_payload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.bus_contract import modem_payloads as wire
from channels.bus_contract.message_payloads import SmsReceivedEvent
from channels.bus_contract.topics import MODEM_EVENT, MODEM_STATE, SMS_EVENT
from channels.bus_contract.verbs import (
    BLOCK,
    BLOCKED,
    DIAL,
    HANGUP,
    SIMULATOR_CALL,
    SIMULATOR_DTMF,
    SIMULATOR_HANGUP,
    SIMULATOR_REPLUG,
    SIMULATOR_SMS,
    SIMULATOR_SPEAK,
    SIMULATOR_UNPLUG,
    SIMULATOR_URC,
    SMS_SEND,
    UNBLOCK,
)
from config.schema import ModemConfig
from daemon.bus.commands import CommandError
from daemon.bus.connection import Bus
from daemon.modem.blocked_numbers import BlockedNumbers
from daemon.modem.modem_manager_inhibit import InhibitResult, ModemManagerInhibitor
from daemon.runtime.service import Service, ServiceStatus
from drivers.sim7600.call_state import CallControlError
from drivers.sim7600.event_hub import EventHub
from drivers.sim7600.events import (
    CallStateChanged,
    ModemConnected,
    ModemDisconnected,
    ModemEvent,
    ModemStateChanged,
    PcmAlarm,
    SmsReceived,
)
from drivers.sim7600.modem import Sim7600Modem, Sim7600Settings
from drivers.sim7600.modem_state import ModemState
from drivers.sim7600.ports import ModemPorts

log = logging.getLogger("secretary.modem")


class ModemService(Service):
    name = "modem"

    def __init__(
        self,
        bus: Bus,
        config: ModemConfig,
        sim_pin: str | None,
        data_dir: Path,
        *,
        relay: EventHub[ModemEvent],
        may_answer: Callable[[str], bool] | None = None,
    ) -> None:
        self.bus = bus
        self.config = config
        self._sim_pin = sim_pin
        self.data_dir = data_dir
        self.modem: Sim7600Modem | None = None
        # Every driver event is also relayed here (the call service listens); the hub outlives restarts.
        self.relay = relay
        self.blocked: BlockedNumbers | None = None
        self._simulator_verbs: list[str] = []  # cmd/simulator/*, while the simulator runs
        # Asked before a ringing call is answered (the call service: only once the box can speak); None: always.
        self._may_answer = may_answer

    def config_slice(self) -> Any:
        return (self.config, self._sim_pin, self.data_dir)

    def settings(self, at_port: str, audio_port: str) -> Sim7600Settings:
        cfg = self.config
        return Sim7600Settings(
            at_port=at_port,
            audio_port=audio_port,
            answer_after_rings=cfg.answer_after_rings,
            may_answer=self._may_answer,
            blocked_numbers=self._blocked_numbers(),
            sim_pin=self._sim_pin,
            check_modem_manager=cfg.driver == "sim7600",
        )

    def _blocked_numbers(self) -> tuple[str, ...]:
        stored = self.blocked.numbers() if self.blocked is not None else ()
        return tuple(dict.fromkeys((*self.config.blocked_numbers, *stored)))

    async def run(self, status: ServiceStatus) -> None:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self._publish_stopped)  # runs last, once the driver has let go of the modem
            self.blocked = BlockedNumbers(self.data_dir / "secretary.db")
            stack.callback(self.blocked.close)
            at_port, audio_port = self.config.at_port, self.config.audio_port
            if self.config.driver == "simulator":
                at_port, audio_port = await self._start_simulator(stack)
            modem = Sim7600Modem(self.settings(at_port, audio_port))
            events = modem.subscribe()
            stack.callback(events.close)
            self.modem = modem
            self._register_commands()
            stack.callback(self._unregister_commands)
            inhibitor = None
            if self.config.driver == "sim7600":  # keep a running ModemManager off the modem while we own it
                inhibitor = await stack.enter_async_context(ModemManagerInhibitor())
            await stack.enter_async_context(modem)
            # The call state as this driver starts (idle, unless it took over a call): announced like a change.
            self.relay.publish(CallStateChanged(call=modem.call, previous=modem.call.state, ts=time.time()))
            status.degraded(f"looking for the modem ({at_port}, {audio_port})")
            async with asyncio.TaskGroup() as tasks:
                keeping: tuple[str, asyncio.Task[None]] | None = None  # the USB device kept from ModemManager
                while True:
                    event = await events.get()
                    if event is None:
                        raise RuntimeError("driver event stream closed")
                    self._publish(event, status)
                    self.relay.publish(event)
                    if inhibitor is not None and isinstance(event, ModemConnected) and event.ports.usb_path:
                        usb_path = event.ports.usb_path
                        if keeping is not None and (keeping[0] != usb_path or keeping[1].done()):
                            keeping[1].cancel()  # releases the other device's inhibition
                            await asyncio.wait({keeping[1]})
                            keeping = None
                        if keeping is None:
                            keeping = (usb_path, tasks.create_task(
                                inhibitor.keep_off(usb_path, _report_inhibition), name="modem-manager-inhibit"))

    async def _start_simulator(self, stack: contextlib.AsyncExitStack) -> tuple[str, str]:
        from drivers.sim7600.simulator import SimulatedModem, SimulatorConfig  # simulator mode only

        run_dir = self.data_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        simulator = SimulatedModem(
            run_dir / "sim7600-at", run_dir / "sim7600-audio",
            SimulatorConfig(record_path=run_dir / "simulator-uplink.wav"),
        )
        await stack.enter_async_context(simulator)
        self.simulator = simulator
        self._register_simulator_commands(simulator)
        stack.callback(self._unregister_simulator_commands)
        return str(simulator.at_path), str(simulator.audio_path)

    def _register_simulator_commands(self, sim: Any) -> None:
        """``cmd/simulator/*``: script the simulated caller over the bus."""

        async def call(args: dict[str, Any]) -> dict[str, Any]:
            number = args.get("from", "+79161234567")
            if not isinstance(number, str):
                raise CommandError("invalid", 'expected {"from": "+79161234567"}')
            await sim.incoming_call(number, withheld=bool(args.get("withheld", False)))
            return {"ringing": number}

        async def speak(args: dict[str, Any]) -> dict[str, Any]:
            from drivers.sim7600.simulator import read_pcm_wav  # simulator mode only

            wav = speech_file(args.get("wav"), simulator_speech_dirs(self.data_dir))
            try:
                pcm = await asyncio.to_thread(read_pcm_wav, wav)
            except (OSError, ValueError, EOFError, RuntimeError, wave.Error) as exc:
                raise CommandError("bad_payload", f"wav: not an 8 kHz mono 16-bit WAV we can read: {exc}") from None
            return {"seconds": await sim.caller_speaks(pcm)}

        async def dtmf(args: dict[str, Any]) -> dict[str, Any]:
            digits = args.get("digits")
            if not isinstance(digits, str) or not digits:
                raise CommandError("invalid", 'expected {"digits": "0#"}')
            await sim.caller_sends_dtmf(digits)
            return {"sent": digits}

        async def hangup(args: dict[str, Any]) -> dict[str, Any]:
            await sim.caller_hangs_up()
            return {}

        async def sms(args: dict[str, Any]) -> dict[str, Any]:
            sender, text = args.get("from"), args.get("text")
            if not isinstance(sender, str) or not isinstance(text, str):
                raise CommandError("invalid", 'expected {"from": "+7916...", "text": "..."}')
            return {"index": await sim.incoming_sms(sender, text)}

        async def unplug(args: dict[str, Any]) -> dict[str, Any]:
            await sim.unplug()
            return {}

        async def replug(args: dict[str, Any]) -> dict[str, Any]:
            await sim.replug()
            return {}

        async def urc(args: dict[str, Any]) -> dict[str, Any]:
            line = args.get("line")
            if not isinstance(line, str) or not line.strip() or len(line) > 512 or any(c in line for c in "\r\n"):
                raise CommandError("invalid", 'expected {"line": "VOICE CALL: BEGIN"} (one line, no CR/LF)')
            sim.urc(line.strip())
            return {"sent": line.strip()}

        handlers = {SIMULATOR_CALL: call, SIMULATOR_SPEAK: speak, SIMULATOR_DTMF: dtmf, SIMULATOR_HANGUP: hangup,
                    SIMULATOR_SMS: sms, SIMULATOR_UNPLUG: unplug, SIMULATOR_REPLUG: replug, SIMULATOR_URC: urc}
        for verb, handler in handlers.items():
            self.bus.register_command(verb, self._simulator_guard(handler))
        self._simulator_verbs = list(handlers)

    @staticmethod
    def _simulator_guard(handler: Any) -> Any:
        async def guarded(args: dict[str, Any]) -> Any:
            from drivers.sim7600.simulator import SimulatorError

            try:
                return await handler(args)
            except SimulatorError as exc:
                raise CommandError("simulator", str(exc)) from None

        return guarded

    def _unregister_simulator_commands(self) -> None:
        for verb in self._simulator_verbs:
            self.bus.commands.unregister(verb)

    # -- driver events -> bus (call events go to the call service's announcer) ---------
    def _publish(self, event: ModemEvent, status: ServiceStatus) -> None:
        bus = self.bus
        match event:
            case ModemStateChanged(state=state):
                bus.publish_state(MODEM_STATE, modem_state_payload(state).encode())
            case SmsReceived(message=message):
                sms = SmsReceivedEvent(sender=message.sender, text=message.text, ts=event.ts)
                bus.publish_event(SMS_EVENT, sms.encode())
            case PcmAlarm():
                alarm = wire.PcmAlarmEvent(kind=event.kind, detail=event.detail, call_id=event.call_id, ts=event.ts)
                bus.publish_event(MODEM_EVENT, alarm.encode())
                log.warning("pcm alarm", extra={"kind": event.kind, "detail": event.detail})
            case ModemConnected(ports=ports, info=info):
                status.ready(f"{info.model or 'modem'} on {ports.at}")
                bus.publish_event(MODEM_EVENT, wire.ModemConnectedEvent(ports=ports_payload(ports), ts=event.ts).encode())
            case ModemDisconnected(reason=reason):
                status.degraded(f"modem gone: {reason}; waiting for it to return")
                bus.publish_event(MODEM_EVENT, wire.ModemDisconnectedEvent(reason=reason, ts=event.ts).encode())

    def _publish_stopped(self) -> None:
        """``modem/state`` once nothing watches the modem: not connected, everything else unknown (not stale)."""
        self.bus.publish_state(MODEM_STATE, STOPPED_STATE.encode())

    # -- bus commands -> driver ------------------------------------------------------
    def _commands(self) -> dict[str, Any]:
        return {HANGUP: self._cmd_hangup, DIAL: self._cmd_dial, SMS_SEND: self._cmd_sms_send, BLOCK: self._cmd_block,
                UNBLOCK: self._cmd_unblock, BLOCKED: self._cmd_blocked}

    def _register_commands(self) -> None:
        for verb, handler in self._commands().items():
            self.bus.register_command(verb, handler)

    def _unregister_commands(self) -> None:
        for verb in self._commands():
            self.bus.commands.unregister(verb)

    def _require_modem(self) -> Sim7600Modem:
        if self.modem is None or not self.modem.connected:
            raise CommandError("modem_unavailable", "the modem is not connected")
        return self.modem

    async def _cmd_hangup(self, args: dict[str, Any]) -> dict[str, Any]:
        modem = self._require_modem()
        call = modem.call
        if call.call_id is None:
            raise CommandError("no_call", "there is no call to hang up")
        try:
            await modem.hangup()
        except CallControlError as exc:
            raise CommandError("failed", str(exc)) from None
        return {"call_id": call.call_id}

    async def _cmd_dial(self, args: dict[str, Any]) -> dict[str, Any]:
        number = args.get("number")
        if not isinstance(number, str) or not number.strip():
            raise CommandError("invalid", 'expected {"number": "+79161234567"}')
        modem = self._require_modem()
        try:
            call_id = await modem.dial(number)
        except ValueError as exc:
            raise CommandError("invalid", str(exc)) from None
        except CallControlError as exc:
            raise CommandError("busy", str(exc)) from None
        return {"call_id": call_id}

    async def _cmd_sms_send(self, args: dict[str, Any]) -> dict[str, Any]:
        number, text = args.get("number"), args.get("text")
        if not isinstance(number, str) or not isinstance(text, str) or not number.strip() or not text:
            raise CommandError("invalid", 'expected {"number": "+79161234567", "text": "..."}')
        modem = self._require_modem()
        try:
            reference = await modem.send_sms(number, text)
        except ValueError as exc:
            raise CommandError("invalid", str(exc)) from None
        except (CallControlError, OSError, TimeoutError) as exc:
            raise CommandError("failed", f"{type(exc).__name__}: {exc}") from None
        return {"reference": reference}

    async def _cmd_block(self, args: dict[str, Any]) -> dict[str, Any]:
        number, note = args.get("number"), args.get("note")
        if not isinstance(number, str) or (note is not None and not isinstance(note, str)):
            raise CommandError("invalid", 'expected {"number": "+79161234567", "note": "optional text"}')
        assert self.blocked is not None
        try:
            stored, added = self.blocked.add(number, note)
        except ValueError as exc:
            raise CommandError("invalid", str(exc)) from None
        self._apply_blocked()
        log.info("number blocked", extra={"number": stored, "new": added})
        return {"number": stored, "added": added}

    async def _cmd_unblock(self, args: dict[str, Any]) -> dict[str, Any]:
        number = args.get("number")
        if not isinstance(number, str):
            raise CommandError("invalid", 'expected {"number": "+79161234567"}')
        assert self.blocked is not None
        try:
            removed = self.blocked.remove(number)
        except ValueError as exc:
            raise CommandError("invalid", str(exc)) from None
        self._apply_blocked()
        return {"removed": removed}

    async def _cmd_blocked(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.blocked is not None
        return {"config": list(self.config.blocked_numbers), "blocked": list(self.blocked.numbers())}

    def _apply_blocked(self) -> None:
        if self.modem is not None:
            self.modem.set_blocked_numbers(self._blocked_numbers())


# While the service is stopped (the daemon gone, a restart): the box holds no connection to the modem and
# cannot vouch for the SIM, the network or a call; the last state it saw would be a claim nobody checks.
STOPPED_STATE = wire.ModemState(connected=False, problems=("the modem service is stopped",))


def modem_state_payload(state: ModemState) -> wire.ModemState:
    """The driver's snapshot as the contract's ``modem/state``."""
    return wire.ModemState(
        sim=state.sim.value, registered=state.registered, operator=state.operator, signal_dbm=state.signal_dbm,
        ports=ports_payload(state.ports) if state.ports is not None else None, connected=state.connected,
        own_number=state.own_number, problems=state.problems,
    )


def ports_payload(ports: ModemPorts) -> wire.ModemPorts:
    return wire.ModemPorts(at=ports.at, audio=ports.audio)


def _report_inhibition(result: InhibitResult) -> None:
    """How keeping ModemManager off the modem went (the udev rule already asks it to ignore the modem)."""
    if result.inhibited:
        log.info("ModemManager inhibited on the modem", extra={"uid": result.uid})
    elif result.modem_manager_running:
        log.warning("ModemManager runs and could not be inhibited", extra={"detail": result.detail})
    else:
        log.debug("ModemManager not inhibited", extra={"detail": result.detail})


SIMULATOR_SPEECH_DIR = "simulator"  # under data_dir: the owner's own caller WAVs for cmd/simulator/speak


def simulator_speech_dirs(data_dir: Path) -> tuple[Path, ...]:
    """Where ``cmd/simulator/speak`` may read: the bundled caller recordings and ``data_dir/simulator``."""
    bundled = Path(str(importlib.resources.files("daemon.tools.demo_caller")))  # data, not code of a later room
    return bundled.resolve(), (data_dir / SIMULATOR_SPEECH_DIR).resolve()


def speech_file(value: object, allowed: tuple[Path, ...]) -> Path:
    """The WAV ``value`` names if it is a regular file under one of ``allowed``; CommandError bad_payload if not.

    The path must be absolute and already canonical: no ``..``, no symlink on the way (``realpath`` gives it
    back unchanged), so what is checked is what is read.
    """
    usage = f'expected {{"wav": "/path/to/8k-mono.wav"}} naming a WAV under {" or ".join(map(str, allowed))}'
    if not isinstance(value, str) or not value or "\x00" in value:
        raise CommandError("bad_payload", usage)
    path = Path(value)
    if not path.is_absolute() or ".." in path.parts:
        raise CommandError("bad_payload", f"wav must be an absolute path without '..'; {usage}")
    if os.path.realpath(path) != os.path.normpath(path):
        raise CommandError("bad_payload", f"wav must not be or pass through a symlink; {usage}")
    if not any(path.is_relative_to(root) for root in allowed):
        raise CommandError("bad_payload", usage)
    if not path.is_file():
        raise CommandError("bad_payload", f"no WAV file at {value}")
    return path
