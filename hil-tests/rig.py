"""What a human tester does to the box, as an interface: the rig.

A ``Rig`` is an async context manager that owns the box's bus view
(``box_events``) and a "tester" phone: it calls the box (``call_box``
returns once the box answered), sends it SMS and asks it for one, and can
pull the box's modem off USB and put it back. On a ``RigCall`` the tester
speaks a WAV at real time (``say``), listens (``listen``/``recorded``: what
the box said, 8 kHz mono int16 on the call's timeline), presses keys and
hangs up. Two rigs implement it: ``SimRig`` (the daemon in-process on the
SIM7600 simulator, the caller scripted over the bus) and ``RealRig`` (a box
running secretaryd with its own SIM7600, called by a second SIM7600).

Timeline: a call's recording starts with the first frame of the box's audio
the rig received (position 0.0) and runs in real time; ``Said`` places a
caller line on the same timeline, so "the box went quiet 140 ms after the
caller started" is a subtraction of positions. (A line said before any of
the box's audio arrived is placed at 0.0.)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from box_bus import BoxBus
from rig_audio import (
    FRAME_S,
    SAMPLE_RATE,
    BoxRecording,
    Samples,
    first_audible_s,
    last_audible_end_s,
    read_line_wav,
    speech_span_s,
)

SETTLE_TIMEOUT_S = 30.0


class Feature(StrEnum):
    UNPLUG = "unplug the box's modem"
    SMS_FROM_BOX = "receive an SMS from the box"


@dataclass(frozen=True)
class RigTiming:
    """What the rig adds to the box's own times (all zero on the simulator)."""

    voice_round_trip_s: float  # caller's audio to the box plus the box's audio back, through the network
    modem_boot_s: float  # after USB power returns: the modem's boot and network registration
    call_setup_s: float  # from dialling the box to its first ring


@dataclass(frozen=True)
class BoxPersona:
    id: str
    display_name: str
    language: str


@dataclass(frozen=True)
class Said:
    """A caller line placed on the call's timeline (seconds from the first sample of the box's audio)."""

    wav: Path
    start_s: float  # the line's first sample went out
    duration_s: float
    speech_start_s: float  # its voice begins (after the recording's leading silence)
    speech_end_s: float

    @classmethod
    def placed(cls, wav: Path, start_s: float) -> Said:
        samples = read_line_wav(wav)
        voice_start, voice_end = speech_span_s(samples)
        return cls(wav, start_s, len(samples) / SAMPLE_RATE, start_s + voice_start, start_s + voice_end)


def same_number(a: str | None, b: str | None) -> bool:
    """The same subscriber, whatever the prefix (+7916..., 8916..., 916...)."""
    if not a or not b:
        return False
    da, db = "".join(c for c in a if c.isdigit()), "".join(c for c in b if c.isdigit())
    return len(da) >= 7 and len(db) >= 7 and da[-9:] == db[-9:]


class RigCall(ABC):
    """One call from the tester to the box, from the box's answer until it ends."""

    def __init__(self, bus: BoxBus, box_call_id: str, answered_at: float, mark: int) -> None:
        self.bus = bus
        self.box_call_id = box_call_id
        self.answered_at = answered_at  # monotonic: the tester saw the call connect
        self.mark = mark  # bus index before the call was placed
        self.recording = BoxRecording()
        self.ended: dict[str, Any] | None = None

    async def __aenter__(self) -> RigCall:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- what each rig does ---------------------------------------------------------
    @abstractmethod
    def _refresh(self) -> None:
        """Take in the box's audio that has arrived up to now."""

    @abstractmethod
    async def _play(self, wav: Path) -> None:
        """Start sending the line (returns as soon as its first frame is on its way)."""

    @abstractmethod
    async def press(self, digits: str) -> None:
        """Press keys on the tester's phone (DTMF to the box)."""

    @abstractmethod
    async def hang_up(self) -> None:
        """The tester hangs up."""

    @abstractmethod
    async def _stop_audio(self) -> None:
        """Stop taking in audio (the call is over or abandoned)."""

    @property
    @abstractmethod
    def live(self) -> bool:
        """The tester's side of the call is still up."""

    # -- shared ---------------------------------------------------------------------
    def position_s(self) -> float:
        """Now, on the call's timeline."""
        self._refresh()
        return self.recording.seconds

    def recorded(self) -> Samples:
        """Everything the box said on this call so far."""
        self._refresh()
        return self.recording.samples()

    def time_of(self, position_s: float) -> float:
        """The monotonic time of a position on the call's timeline."""
        return self.recording.time_of(position_s)

    async def listen(self, seconds: float) -> Samples:
        """Listen for ``seconds`` of real time; what the box said meanwhile."""
        start = self.position_s()
        await asyncio.sleep(seconds)
        self._refresh()
        return self.recording.samples(start)

    async def say(self, wav: Path) -> Said:
        """Say a caller line at real time; returns when it has been said, placed on the timeline."""
        start = self.position_s()
        await self._play(wav)
        said = Said.placed(wav, start)
        await self._until_position(said.start_s + said.duration_s, timeout=said.duration_s + 5)
        return said

    async def _until_position(self, position_s: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.position_s() < position_s and self.live:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the call's audio stalled at {self.position_s():.2f} s (waited for {position_s:.2f} s)")
            await asyncio.sleep(FRAME_S)

    def _recorded_since(self, since_s: float) -> tuple[float, Samples]:
        """The audio from the 20 ms frame holding ``since_s`` on, and that frame's position."""
        self._refresh()
        base = max(0.0, math.floor(since_s / FRAME_S) * FRAME_S)
        return base, self.recording.samples(base)

    async def wait_speech(self, since_s: float = 0.0, *, timeout: float) -> float:
        """Position of the first audible frame of the box at or after ``since_s``."""
        deadline = time.monotonic() + timeout
        while True:
            base, audio = self._recorded_since(since_s)
            found = first_audible_s(audio, since_s - base)
            if found is not None:
                return base + found
            if time.monotonic() >= deadline or not self.live:
                raise AssertionError(f"the box said nothing audible from {since_s:.2f} s on within {timeout:g} s")
            await asyncio.sleep(FRAME_S)

    async def wait_quiet(self, quiet_s: float, since_s: float = 0.0, *, timeout: float) -> float:
        """Wait until the box has been quiet for ``quiet_s`` after speaking; the end of its last audible frame."""
        deadline = time.monotonic() + timeout
        while True:
            base, audio = self._recorded_since(since_s)
            found = last_audible_end_s(audio, since_s - base)
            last = None if found is None else base + found
            if last is not None and (self.recording.seconds - last >= quiet_s or not self.live):
                return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"the box did not go quiet for {quiet_s:g} s within {timeout:g} s")
            await asyncio.sleep(FRAME_S)

    async def utterance(self, role: str, *, timeout: float, after: int | None = None, **fields: Any) -> dict[str, Any]:
        """The box's next ``utterance`` event of this call by ``role`` (caller|secretary) with ``fields``."""
        found = await self.bus.wait_event(
            "call/event", "utterance", timeout=timeout, after=self.mark if after is None else after,
            call_id=self.box_call_id, role=role, **fields,
        )
        return dict(found.payload)

    async def wait_ended(self, timeout: float) -> dict[str, Any]:
        """The box's ``ended`` event for this call."""
        if self.ended is None:
            found = await self.bus.wait_event("call/event", "ended", timeout=timeout, after=self.mark,
                                              call_id=self.box_call_id)
            self.ended = dict(found.payload)
        return self.ended

    async def close(self) -> None:
        """Hang up if the call is still up, wait for the box to end it, stop listening."""
        try:
            if self.live:
                with contextlib.suppress(Exception):
                    await self.hang_up()
            with contextlib.suppress(TimeoutError):
                await self.wait_ended(SETTLE_TIMEOUT_S)
        finally:
            await self._stop_audio()


class Rig(ABC):
    """The tester's side of the box; an async context manager."""

    name: str
    timing: RigTiming
    box_events: BoxBus

    def __init__(self) -> None:
        self._calls: list[RigCall] = []
        self._stack = contextlib.AsyncExitStack()  # what ``_start`` set up, undone in reverse on exit

    @property
    @abstractmethod
    def box_number(self) -> str:
        """The number of the box's SIM."""

    @property
    @abstractmethod
    def tester_number(self) -> str | None:
        """The tester's own number (None if the rig does not know it)."""

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    @abstractmethod
    async def _start(self) -> None:
        """Bring the rig up, pushing every clean-up onto ``self._stack``."""

    @abstractmethod
    async def _place_call(self, mark: int, timeout: float) -> RigCall:
        """Call the box; return once it answered (``mark``: the bus index before dialling)."""

    @abstractmethod
    async def send_sms(self, text: str) -> None:
        """The tester texts the box."""

    @abstractmethod
    async def _received_sms(self, since: Any, timeout: float) -> str:
        """The text of the first SMS the tester got from the box after ``since`` (from ``_sms_mark``)."""

    @abstractmethod
    def _sms_mark(self) -> Any:
        """Where the tester's inbox is now."""

    @abstractmethod
    async def unplug_box_modem(self) -> None: ...

    @abstractmethod
    async def replug_box_modem(self) -> None: ...

    def missing(self, feature: Feature) -> str | None:
        """Why this rig cannot do ``feature`` (None: it can)."""
        return None

    # -- shared ---------------------------------------------------------------------
    async def call_box(self, timeout: float = 30.0) -> RigCall:
        """Dial the box and return once it answered."""
        await self.settle()
        call = await self._place_call(self.box_events.mark(), timeout + self.timing.call_setup_s)
        self._calls.append(call)
        return call

    async def sms_from_box(self, text: str, timeout: float = 30.0) -> str:
        """Ask the box (``cmd/sms/send``) to text the tester; the text the tester received."""
        number = self.tester_number
        if number is None:
            raise RuntimeError(self.missing(Feature.SMS_FROM_BOX) or "the tester's number is unknown")
        since = self._sms_mark()
        await self.box_events.request("sms/send", {"number": number, "text": text}, timeout=timeout)
        return await self._received_sms(since, timeout)

    async def box_persona(self) -> BoxPersona:
        """The persona that answers the box's calls (``cmd/personas``)."""
        result = await self.box_events.request("personas")
        chosen = next(p for p in result["personas"] if p["id"] == result["default"])
        return BoxPersona(chosen["id"], chosen["display_name"], chosen["language"])

    async def settle(self, timeout: float = SETTLE_TIMEOUT_S) -> None:
        """End what a previous step left running and wait until the box is idle."""
        calls, self._calls = self._calls, []
        for call in calls:
            await call.close()
        await self.box_events.wait_state("call/state", lambda s: isinstance(s, dict) and s.get("state") == "idle",
                                         timeout=timeout)
