"""``SimulatedModem``: a SIM7600G-H on two pseudo-terminals, scriptable from Python.

It answers on the AT pty with the response formats of sim7600.md (echo on
until ``ATE0``, ``VOICE CALL: BEGIN`` inside ``ATA``'s response, ``+CLCC`` URCs,
``MISSED_CALL``, ``+CMTI``...), streams the caller's audio on the audio pty in
real time (20 ms frames, only while ``AT+CPCMREG=1`` and a call is active),
and records what the host writes there.  Unplugging closes both ptys and
removes their symlinks; replugging creates new ones at the same paths and
boots again, like the module re-enumerating on USB.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from drivers.sim7600.simulator.at_interpreter import AtInputInterpreter, CommandLine, TextAborted, TextEntry
from drivers.sim7600.simulator.call_audio import FRAME_BYTES, SpeechQueue, UplinkRecorder, read_pcm_wav
from drivers.sim7600.simulator.commands import SimCommands
from drivers.sim7600.simulator.pty_endpoint import PtyEndpoint
from drivers.sim7600.simulator.sim_config import SimulatorConfig
from drivers.sim7600.simulator.sim_state import (
    Counters,
    ModuleSettings,
    SentSms,
    SimCall,
    SimCallStat,
    StoredSms,
)
from drivers.sim7600.simulator.task_owner import TaskOwner
from drivers.sim7600.text_encoding import ucs2_hex_decode, ucs2_hex_encode

log = logging.getLogger(__name__)

FRAME_S = 0.020
MAX_SMS_SLOTS = 50
RECORDINGS_KEPT = 8  # finished calls whose uplink audio stays in memory (a long demo run must not grow)


class SimulatorError(RuntimeError):
    """A script step that does not fit the simulated module's state."""


class SimulatedModem:
    def __init__(self, at_path: Path | str, audio_path: Path | str, config: SimulatorConfig | None = None) -> None:
        self.at_path = Path(at_path)
        self.audio_path = Path(audio_path)
        self.config = config or SimulatorConfig()
        self.settings = ModuleSettings()
        self.call: SimCall | None = None
        self.sms_store: dict[int, StoredSms] = {}
        self.sent_sms: list[SentSms] = []
        self.dtmf_from_host: list[str] = []
        self.counters = Counters()
        self.uplink_audio = bytearray()  # what the host sent during the current (or last) call
        self.recordings: deque[bytes] = deque(maxlen=RECORDINGS_KEPT)  # uplink audio of the last finished calls
        self.finished_calls = 0
        self.plugged = False
        self.booted = False
        self.hung = False  # firmware hang: ports stay, nothing answers (settable from tests)
        self.sim_locked = self.config.sim_pin is not None
        self.pending_sms_destination: str | None = None
        self._message_reference = 0
        self._at = PtyEndpoint(self.at_path, self._on_at_data, "sim-at")
        self._audio = PtyEndpoint(self.audio_path, self._on_audio_data, "sim-audio")
        self._interpreter = AtInputInterpreter()
        self._commands = SimCommands(self)
        self._tasks = TaskOwner("sim7600-sim")
        self._call_tasks = TaskOwner("sim7600-sim-call")
        self._speech = SpeechQueue()
        self._recorder: UplinkRecorder | None = None
        self._streaming: asyncio.Task[Any] | None = None
        self._started = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.config.record_path is not None:
            self._recorder = UplinkRecorder(self.config.record_path)
        self.plug()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._unplug_now()
        await self._call_tasks.cancel_all()
        await self._tasks.cancel_all()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    async def __aenter__(self) -> SimulatedModem:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def plug(self) -> None:
        """Create the ptys and boot (the USB device appears)."""
        if self.plugged:
            return
        self.settings = ModuleSettings()
        self._interpreter.reset()
        self.sim_locked = self.config.sim_pin is not None
        self._at.open()
        self._audio.open()
        self._at.start_reading()
        self.plugged = True
        self.booted = False
        self._tasks.spawn(self._boot(), "boot")

    async def unplug(self) -> None:
        self._unplug_now()

    async def replug(self) -> None:
        self.plug()

    def _unplug_now(self) -> None:
        if not self.plugged:
            return
        call = self.call
        if call is not None:
            self._teardown_call(call)
        self.plugged = False
        self.booted = False
        self._at.close()
        self._audio.close()

    async def _boot(self) -> None:
        if self.config.boot_delay_s > 0:
            await asyncio.sleep(self.config.boot_delay_s)
        if not self.plugged:
            return
        self.booted = True
        gap = self.config.boot_urc_gap_s
        self.urc("RDY")
        await asyncio.sleep(gap)
        if not self.config.sim_present:
            return
        if self.sim_locked:
            self.urc("+CPIN: SIM PIN")
            return
        await self.sim_ready_urcs()

    async def sim_ready_urcs(self) -> None:
        gap = self.config.boot_urc_gap_s
        for line in ("+CPIN: READY", "SMS DONE", "PB DONE"):
            if not self.plugged:
                return
            self.urc(line)
            await asyncio.sleep(gap)

    async def reset(self) -> None:
        """``AT+CRESET``: the module drops off USB and comes back after ``reset_duration_s``."""
        await asyncio.sleep(0.05)
        self._unplug_now()
        await asyncio.sleep(self.config.reset_duration_s)
        if self._started:
            self.plug()

    def spawn(self, coro: Any, name: str) -> None:
        self._tasks.spawn(coro, name)

    # --------------------------------------------------------------- output

    def send_line(self, text: str) -> None:
        self._at.write(f"\r\n{text}\r\n".encode())

    def urc(self, text: str, *, doubled_cr: bool = False) -> None:
        if doubled_cr and self.config.doubled_cr_urcs:
            self._at.write(f"\r\r\n{text}\r\r\n".encode())
        else:
            self.send_line(text)

    def send_raw(self, data: bytes) -> int:
        """Write bytes on the AT port as they are; returns how many the host's pty took."""
        return self._at.write(data)

    def encode_text(self, text: str) -> str:
        if self.settings.cscs == "UCS2":
            return ucs2_hex_encode(text)
        return text.encode("ascii", errors="replace").decode("ascii")

    def decode_text(self, text: str) -> str:
        if self.settings.cscs == "UCS2":
            decoded = ucs2_hex_decode(text)
            return text if decoded is None else decoded
        return text

    # ---------------------------------------------------------------- input

    def _on_at_data(self, data: bytes) -> None:
        if not self.booted or self.hung:
            return  # the module is not listening (yet, or any more)
        if self.settings.echo:
            self._at.write(data)
        self._interpreter.feed(data)
        while (event := self._interpreter.next_event()) is not None:
            try:
                if isinstance(event, CommandLine):
                    self.counters.commands.append(event.text)
                    self._commands.handle(event.text)
                elif isinstance(event, TextEntry):
                    self._commands.text_entered(event.text)
                elif isinstance(event, TextAborted):
                    self._commands.text_aborted()
            except Exception:
                log.exception("simulator failed on %r", event)
                self.send_line("ERROR")

    def enter_text_mode(self) -> None:
        self._interpreter.text_mode = True

    def _on_audio_data(self, data: bytes) -> None:
        if self._streaming is None:
            return
        self.uplink_audio += data
        self.counters.uplink_bytes += len(data)
        if self._recorder is not None:
            self._recorder.write(data)

    # ---------------------------------------------------------------- calls

    def next_message_reference(self) -> int:
        self._message_reference = (self._message_reference + 1) % 256
        return self._message_reference

    def start_dial(self, number: str) -> None:
        call = SimCall(direction=0, number=number, stat=SimCallStat.DIALING)
        call.pcm_failures_left = self.config.cpcmreg_failures
        self.call = call
        self._call_tasks.spawn(self._dial_progress(call), "dial")

    async def _dial_progress(self, call: SimCall) -> None:
        await asyncio.sleep(0.05)
        if self.call is not call:
            return
        call.stat = SimCallStat.ALERTING
        self._clcc_urc(call)
        if self.config.dial_outcome == "manual":
            return
        await asyncio.sleep(self.config.dial_answer_after_s)
        if self.call is not call:
            return
        if self.config.dial_outcome == "answer":
            await self.remote_answers()
        else:
            self._teardown_call(call)
            self._clcc_urc(call, SimCallStat.DISCONNECTED)
            self.urc("BUSY" if self.config.dial_outcome == "busy" else "NO ANSWER")

    def connect(self, call: SimCall) -> None:
        call.stat = SimCallStat.ACTIVE
        call.connected_at = time.monotonic()
        self.uplink_audio = bytearray()
        self.update_audio()

    def call_duration_s(self, call: SimCall) -> int:
        if call.connected_at is None:
            return 0
        return int(time.monotonic() - call.connected_at)

    def _teardown_call(self, call: SimCall) -> None:
        """Forget the call (no URCs): stop rings, dial progress and audio."""
        if self.call is not call:
            return
        was_connected = call.connected_at is not None
        self.call = None
        call.stat = SimCallStat.DISCONNECTED
        self.update_audio()
        self._call_tasks.cancel_others()
        self._speech.clear()
        if was_connected:
            self.recordings.append(bytes(self.uplink_audio))
            self.finished_calls += 1

    def end_call_by_host(self) -> SimCall | None:
        call = self.call
        if call is not None:
            self._teardown_call(call)
        return call

    def encode_number(self, number: str) -> str:
        if self.config.ucs2_call_numbers and self.settings.cscs == "UCS2":
            return ucs2_hex_encode(number)
        return number

    def _clcc_urc(self, call: SimCall, stat: SimCallStat | None = None) -> None:
        if self.settings.clcc_urc:
            self.urc(call.clcc_line(stat, self.encode_number))

    def clcc_urc(self, call: SimCall, stat: SimCallStat | None = None) -> None:
        self._clcc_urc(call, stat)

    async def _ring_loop(self, call: SimCall, give_up_after_s: float | None) -> None:
        started = time.monotonic()
        period = self.config.ring_period_s
        while self.call is call and call.stat is SimCallStat.INCOMING:
            if self.settings.crc:
                self.urc("+CRING: VOICE", doubled_cr=True)
            else:
                self.urc("RING", doubled_cr=True)
            if self.settings.clip:
                validity = 1 if call.withheld else 0
                number = "" if call.withheld else self.encode_number(call.number)
                self.urc(f'+CLIP: "{number}",{call.number_type},,,,{validity}')
            if call.rings_sent == 0:
                self._clcc_urc(call)
            call.rings_sent += 1
            self.counters.rings += 1
            wait = period
            if give_up_after_s is not None:
                remaining = give_up_after_s - (time.monotonic() - started)
                if remaining <= period:
                    await asyncio.sleep(max(0.0, remaining))
                    self._caller_gives_up(call)
                    return
            await asyncio.sleep(wait)

    def _caller_gives_up(self, call: SimCall) -> None:
        if self.call is not call or call.stat is not SimCallStat.INCOMING:
            return
        self._teardown_call(call)
        self._clcc_urc(call, SimCallStat.DISCONNECTED)
        number = "" if call.withheld else call.number
        self.urc(f"MISSED_CALL: {datetime.now():%I:%M%p} {number}".rstrip())
        if self.config.no_carrier_after_missed:
            self.urc("NO CARRIER")

    # ---------------------------------------------------------------- audio

    def update_audio(self) -> None:
        """Stream and record only while a call is active and AT+CPCMREG=1."""
        call = self.call
        wanted = self.plugged and self.settings.pcm and call is not None and call.stat is SimCallStat.ACTIVE
        if wanted and self._streaming is None:
            self._audio.discard_input()
            self._audio.start_reading()
            self._streaming = self._call_tasks.spawn(self._stream_downlink(), "downlink")
        elif not wanted and self._streaming is not None:
            streaming, self._streaming = self._streaming, None
            if streaming is not asyncio.current_task():
                streaming.cancel()
            self._audio.stop_reading()

    async def _stream_downlink(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while True:
            frame = self._speech.next_frame(self.config.send_silence)
            if frame is not None:
                if self._audio.write(frame) == len(frame):
                    self.counters.downlink_frames += 1
                else:
                    self.counters.downlink_dropped_frames += 1
            sent += 1
            due = start + sent * FRAME_S
            now = loop.time()
            if now - due > 0.2:  # fell far behind (loaded machine): restart the clock
                start, sent, due = now, 0, now
            await asyncio.sleep(max(0.0, due - now))

    # ------------------------------------------------------------ scripting

    async def incoming_call(self, number: str, *, withheld: bool = False, give_up_after_s: float | None = None) -> None:
        """Someone calls the box (``RING`` / ``+CLIP`` / ``+CLCC`` every ``ring_period_s``)."""
        if not self.booted:
            raise SimulatorError("module is not up (unplugged or booting)")
        if self.call is not None:
            raise SimulatorError("a call is already in progress")
        call = SimCall(direction=1, number=number, withheld=withheld, stat=SimCallStat.INCOMING)
        call.pcm_failures_left = self.config.cpcmreg_failures
        self.call = call
        self._call_tasks.spawn(self._ring_loop(call, give_up_after_s), "ring")

    async def caller_speaks(self, source: Path | str | bytes) -> float:
        """Queue caller speech (a WAV path or raw PCM16); returns its duration in seconds."""
        pcm = source if isinstance(source, bytes) else read_pcm_wav(source)
        self._speech.add(pcm)
        return len(pcm) / (2 * 8000)

    @property
    def speech_pending_bytes(self) -> int:
        return len(self._speech)

    async def caller_sends_dtmf(self, digits: str, gap_s: float = 0.05) -> None:
        call = self.call
        if call is None or call.stat is not SimCallStat.ACTIVE:
            raise SimulatorError("DTMF needs an active call")
        for digit in digits:
            if self.settings.ddet:
                self.urc(f"+RXDTMF: {digit}", doubled_cr=True)
            await asyncio.sleep(gap_s)

    async def caller_hangs_up(self) -> None:
        call = self.call
        if call is None:
            raise SimulatorError("no call to hang up")
        if call.direction == 1 and call.stat is SimCallStat.INCOMING:
            self._caller_gives_up(call)
            return
        duration = self.call_duration_s(call)
        was_active = call.stat is SimCallStat.ACTIVE
        self._teardown_call(call)
        if self.config.silent_remote_hangup:
            return
        self._clcc_urc(call, SimCallStat.DISCONNECTED)
        if was_active:
            self.urc(f"VOICE CALL: END: {duration:06d}")
        if self.config.no_carrier_after_remote_end:
            self.urc("NO CARRIER")

    async def remote_answers(self) -> None:
        """The party the box dialled picks up."""
        call = self.call
        if call is None or call.direction != 0 or call.stat not in (SimCallStat.DIALING, SimCallStat.ALERTING):
            raise SimulatorError("no outgoing call is ringing")
        self.urc("VOICE CALL: BEGIN")
        self.connect(call)
        self._clcc_urc(call)

    async def incoming_sms(self, sender: str, text: str, received: datetime | None = None) -> int:
        """Store a message and announce it with ``+CMTI`` (if ``AT+CNMI`` asked for that)."""
        if not self.booted:
            raise SimulatorError("module is not up (unplugged or booting)")
        free = [i for i in range(MAX_SMS_SLOTS) if i not in self.sms_store]
        if not free:
            raise SimulatorError("SMS storage full")
        index = free[0]
        self.sms_store[index] = StoredSms(sender=sender, text=text, received=received or datetime.now().astimezone())
        if self.settings.cnmi_mt in (1, 2, 3):
            self.urc(f'+CMTI: "{self.settings.read_storage}",{index}')
        return index

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                raise TimeoutError(f"simulator: {what} not reached within {timeout:g} s")
            await asyncio.sleep(0.005)

    async def wait_speech_done(self, timeout: float) -> None:
        await self.wait_until(lambda: len(self._speech) == 0, timeout, "caller speech played")

    def status(self) -> dict[str, Any]:
        call = self.call
        return {
            "plugged": self.plugged,
            "booted": self.booted,
            "at_tty": self._at.tty_name,
            "audio_tty": self._audio.tty_name,
            "echo": self.settings.echo,
            "pcm": self.settings.pcm,
            "call": None
            if call is None
            else {
                "number": call.number,
                "stat": call.stat.name.lower(),
                "direction": call.direction,
                "rings": call.rings_sent,
            },
            "stored_sms": len(self.sms_store),
            "sent_sms": [{"number": s.number, "text": s.text} for s in self.sent_sms],
            "dtmf_from_host": "".join(self.dtmf_from_host),
            "downlink_frames": self.counters.downlink_frames,
            "uplink_bytes": self.counters.uplink_bytes,
            "recordings": self.finished_calls,  # calls recorded (the audio of the last RECORDINGS_KEPT is kept)
        }


__all__ = ["FRAME_BYTES", "SimulatedModem", "SimulatorError"]
