"""The real rig: a box running secretaryd with its own SIM7600G-H, called by a second SIM7600G-H (the tester).

The tester phone is this repo's driver (``Sim7600Modem``, never answering by
itself) on the tester modem's ports: it dials the box's number, waits for the
call to become active and for PCM audio, then one pacing task per call sends
the caller's audio (a queued WAV line, else silence) and takes in the box's
audio, 320 bytes every 20 ms. Keys go out with ``AT+VTS`` (the driver's
``send_dtmf``), SMS with the driver's ``send_sms``; an SMS from the box
arrives as the driver's ``SmsReceived``. The box is watched on its own broker.
Unplugging the box's modem runs the shell commands in
``SECRETARY_HIL_USB_POWER_OFF`` / ``SECRETARY_HIL_USB_POWER_ON`` (uhubctl on
the hub port the box's modem hangs off).

Environment (hil-tests/README.md): see ``REQUIRED`` and ``RealRigEnv``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from box_bus import BoxBus
from modem_events import EventLog
from rig import Feature, Rig, RigCall, RigTiming, same_number
from rig_audio import FRAME_S, CallerQueue, read_line_wav

from channels.bus_contract.topics import Topics
from drivers.sim7600 import (
    CallAnswered,
    CallEnded,
    CallState,
    ModemStateChanged,
    PcmSession,
    Sim7600Modem,
    Sim7600Settings,
    SmsReceived,
)
from drivers.sim7600.events import ModemEvent

REQUIRED = (
    "SECRETARY_HIL_BOX_MQTT",
    "SECRETARY_HIL_BOX_ID",
    "SECRETARY_HIL_BOX_NUMBER",
    "SECRETARY_HIL_TESTER_AT_PORT",
    "SECRETARY_HIL_TESTER_AUDIO_PORT",
)
POWER_OFF, POWER_ON = "SECRETARY_HIL_USB_POWER_OFF", "SECRETARY_HIL_USB_POWER_ON"
TESTER_CONNECT_TIMEOUT_S = 90.0
PCM_TIMEOUT_S = 10.0
BOX_ANSWER_EVENT_S = 15.0
POWER_COMMAND_TIMEOUT_S = 60.0


class MissingEnv(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


@dataclass(frozen=True)
class RealRigEnv:
    box_mqtt: str
    box_id: str
    box_number: str
    tester_at_port: str
    tester_audio_port: str
    tester_pin: str | None = None
    tester_number: str | None = None
    box_prefix: str = "secretary"
    box_mqtt_password: str | None = None
    power_off: str | None = None
    power_on: str | None = None
    timing: RigTiming = RigTiming(voice_round_trip_s=0.5, modem_boot_s=30.0, call_setup_s=15.0)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RealRigEnv:
        """The rig's settings; ``MissingEnv`` names every required variable that is not set."""
        missing = [name for name in REQUIRED if not environ.get(name)]
        if missing:
            raise MissingEnv(missing)

        def number(name: str, default: float) -> float:
            value = environ.get(name)
            return float(value) if value else default

        return cls(
            box_mqtt=environ["SECRETARY_HIL_BOX_MQTT"],
            box_id=environ["SECRETARY_HIL_BOX_ID"],
            box_number=environ["SECRETARY_HIL_BOX_NUMBER"],
            tester_at_port=environ["SECRETARY_HIL_TESTER_AT_PORT"],
            tester_audio_port=environ["SECRETARY_HIL_TESTER_AUDIO_PORT"],
            tester_pin=environ.get("SECRETARY_HIL_TESTER_PIN") or None,
            tester_number=environ.get("SECRETARY_HIL_TESTER_NUMBER") or None,
            box_prefix=environ.get("SECRETARY_HIL_BOX_PREFIX") or "secretary",
            box_mqtt_password=environ.get("SECRETARY_HIL_BOX_MQTT_PASSWORD") or None,
            power_off=environ.get(POWER_OFF) or None,
            power_on=environ.get(POWER_ON) or None,
            timing=RigTiming(
                voice_round_trip_s=number("SECRETARY_HIL_VOICE_ROUND_TRIP_MS", 500) / 1000,
                modem_boot_s=number("SECRETARY_HIL_MODEM_BOOT_S", 30),
                call_setup_s=number("SECRETARY_HIL_CALL_SETUP_S", 15),
            ),
        )


class RealCall(RigCall):
    def __init__(
        self, rig: RealRig, box_call_id: str, answered_at: float, mark: int, tester_call_id: str, session: PcmSession
    ) -> None:
        super().__init__(rig.box_events, box_call_id, answered_at, mark)
        self._rig = rig
        self.tester_call_id = tester_call_id
        self._session = session
        self._caller = CallerQueue()
        self.uplink_dropped = 0
        self._pump = asyncio.create_task(self._run_pump(), name=f"hil-tester-audio-{tester_call_id}")

    async def _run_pump(self) -> None:
        """Every 20 ms: one caller frame out, every box frame that arrived in."""
        session = self._session
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while not session.closed:
            sent += 1
            due = start + sent * FRAME_S
            if loop.time() - due > 0.2:  # the machine stalled: restart the clock rather than burst
                start, sent, due = loop.time(), 0, loop.time()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not session.write_frame(self._caller.next_frame()):
                self.uplink_dropped += 1
            while (frame := await session.read_frame(timeout=0)) is not None:
                self.recording.extend(frame)

    def _refresh(self) -> None:
        """The pump takes the audio in as it arrives."""

    async def _play(self, wav: Path) -> None:
        self._caller.add(read_line_wav(wav))

    async def press(self, digits: str) -> None:
        await self._rig.modem.send_dtmf(digits)

    async def hang_up(self) -> None:
        await self._rig.modem.hangup()

    @property
    def live(self) -> bool:
        call = self._rig.modem.call
        return call.call_id == self.tester_call_id and call.state is not CallState.IDLE

    async def _stop_audio(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


class RealRig(Rig):
    name = "real"

    def __init__(self, env: RealRigEnv) -> None:
        super().__init__()
        self.env = env
        self.timing = env.timing
        self.modem = Sim7600Modem(Sim7600Settings(
            at_port=env.tester_at_port, audio_port=env.tester_audio_port, answer_after_rings=None,
            sim_pin=env.tester_pin,
        ))
        self.tester = EventLog(self.modem.subscribe())

    @property
    def box_number(self) -> str:
        return self.env.box_number

    @property
    def tester_number(self) -> str | None:
        return self.env.tester_number or self.modem.state.own_number

    def missing(self, feature: Feature) -> str | None:
        if feature is Feature.UNPLUG:
            unset = [name for name, value in ((POWER_OFF, self.env.power_off), (POWER_ON, self.env.power_on)) if not value]
            if unset:
                return f"{' and '.join(unset)} not set: no command to switch the box modem's USB power (e.g. uhubctl)"
        if feature is Feature.SMS_FROM_BOX and self.tester_number is None:
            return "SECRETARY_HIL_TESTER_NUMBER is not set and the tester's SIM does not report its number (AT+CNUM)"
        return None

    async def _start(self) -> None:
        env = self.env
        self.box_events = await self._stack.enter_async_context(
            BoxBus(env.box_mqtt, Topics(env.box_prefix, env.box_id), password=env.box_mqtt_password))
        await self.box_events.wait_state("status", lambda s: s == "online", timeout=10)
        self.tester.start()
        self._stack.push_async_callback(self.tester.stop)
        await self._stack.enter_async_context(self.modem)
        state = await self.modem.wait_connected(TESTER_CONNECT_TIMEOUT_S)
        if not state.registered:
            await self.tester.wait_for(lambda e: isinstance(e, ModemStateChanged) and e.state.registered,
                                       timeout=TESTER_CONNECT_TIMEOUT_S)
        self._stack.push_async_callback(self.settle)

    # -- calls ----------------------------------------------------------------------
    async def _place_call(self, mark: int, timeout: float) -> RealCall:
        tester_mark = self.tester.mark()
        tester_call_id = await self.modem.dial(self.box_number)
        try:
            return await self._connected_call(mark, tester_mark, tester_call_id, timeout)
        except BaseException:
            if self.modem.call.call_id == tester_call_id and self.modem.call.state is not CallState.IDLE:
                with contextlib.suppress(Exception):
                    await self.modem.hangup()
            raise

    async def _connected_call(self, mark: int, tester_mark: int, tester_call_id: str, timeout: float) -> RealCall:
        def progress(event: ModemEvent) -> bool:
            return isinstance(event, CallAnswered | CallEnded) and event.call_id == tester_call_id

        logged = await self.tester.wait_for(progress, timeout=timeout, after=tester_mark)
        if isinstance(logged.event, CallEnded):
            raise AssertionError(f"the box did not answer: the tester's call ended ({logged.event.reason.value})")
        session = self.modem.audio
        if session is None or not await session.wait_enabled(PCM_TIMEOUT_S):
            raise AssertionError("the tester's modem gave no PCM audio for the call (AT+CPCMREG)")
        answered = await self.box_events.wait_event("call/event", "answered", timeout=BOX_ANSWER_EVENT_S, after=mark,
                                                    direction="incoming")
        return RealCall(self, answered.payload["call_id"], logged.at, mark, tester_call_id, session)

    # -- SMS ------------------------------------------------------------------------
    async def send_sms(self, text: str) -> None:
        await self.modem.send_sms(self.box_number, text)

    def _sms_mark(self) -> int:
        return self.tester.mark()

    async def _received_sms(self, since: Any, timeout: float) -> str:
        def from_box(event: ModemEvent) -> bool:
            return isinstance(event, SmsReceived) and same_number(event.message.sender, self.box_number)

        logged = await self.tester.wait_for(from_box, timeout=timeout, after=since)
        assert isinstance(logged.event, SmsReceived)
        return logged.event.message.text

    # -- USB ------------------------------------------------------------------------
    async def unplug_box_modem(self) -> None:
        await self._power(self.env.power_off, POWER_OFF)

    async def replug_box_modem(self) -> None:
        await self._power(self.env.power_on, POWER_ON)

    async def _power(self, command: str | None, name: str) -> None:
        if command is None:
            raise RuntimeError(f"{name} is not set")
        started = time.monotonic()
        process = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), POWER_COMMAND_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"{name} ({command!r}) did not finish within {POWER_COMMAND_TIMEOUT_S:g} s") from None
        if process.returncode != 0:
            text = output.decode(errors="replace").strip()
            raise RuntimeError(f"{name} ({command!r}) exited with {process.returncode} after "
                               f"{time.monotonic() - started:.1f} s: {text}")
