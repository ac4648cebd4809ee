"""The simulator rig: the real daemon in-process on the built-in SIM7600 simulator, driven over its bus.

It starts a private mosquitto and ``SecretaryApp`` from a config file
(``modem.driver: simulator``, answer after one ring, no web page, the
default CPU engines: Silero VAD, faster-whisper base, Piper, so the
conversation is the real one). The tester is the simulated network: it rings
the box with ``cmd/simulator/call``, speaks with ``cmd/simulator/speak``
(the simulator streams the WAV at real time on the modem's audio port),
presses keys with ``simulator/dtmf``, hangs up with ``simulator/hangup``,
texts with ``simulator/sms`` and unplugs/replugs the modem with
``simulator/unplug``/``replug``.

What the box says is what its modem driver writes to the simulator's audio
port; the simulator appends it to ``data_dir/run/simulator-uplink.wav``
(the header is kept valid after every write), which the call reads as it
grows. An SMS the box sends ends in the simulator (``AT+CMGS``): the rig
reads the simulator's ``sent_sms``, the one thing it takes from inside the
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from pathlib import Path
from typing import Any

import yaml
from box_bus import BoxBus
from rig import Rig, RigCall, RigTiming
from rig_audio import FRAME_S

from channels.bus_contract.clients import CLI
from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker

BOX_ID = "hil-box"
TESTER_NUMBER = "+15557654321"
READY_TIMEOUT_S = 100.0  # first run: whisper assembled from its packages, Piper loaded, phrases synthesized
STOP_TIMEOUT_S = 15.0


def sim_config(data_dir: Path, broker: MosquittoBroker) -> dict[str, Any]:
    """The box's config on ``broker`` (its users'): the simulator as modem, the default engines (no ``engines``)."""
    return {
        "box_id": BOX_ID,
        "data_dir": str(data_dir),
        "modem": {"driver": "simulator", "answer_after_rings": 1},
        "mqtt": {**broker.mqtt_fields(), "keepalive_s": 5, "reconnect_max_s": 0.5},
        "supervisor": {"backoff_initial_s": 0.05, "backoff_max_s": 0.5},
        "web": {"enabled": False},
    }


class UplinkTail:
    """The data of a PCM WAV that another writer keeps appending to (and whose header it keeps valid)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _data_chunk(self, head: bytes) -> int | None:
        """Offset of the data chunk's first byte, None until the header is written."""
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= len(head):
            chunk, size = head[offset:offset + 4], struct.unpack("<I", head[offset + 4:offset + 8])[0]
            if chunk == b"data":
                return offset + 8
            offset += 8 + size + (size & 1)
        return None

    def read_from(self, start: int) -> tuple[int, bytes]:
        """(data bytes now in the file, the whole samples from byte ``start`` of the data on)."""
        try:
            with self.path.open("rb") as wav:
                offset = self._data_chunk(wav.read(256))
                if offset is None:
                    return 0, b""
                wav.seek(0, 2)
                size = wav.tell() - offset
                if start >= size:
                    return size, b""
                wav.seek(offset + start)
                data = wav.read(size - start)
        except FileNotFoundError:
            return 0, b""
        return size, data[: len(data) - len(data) % 2]


class SimCall(RigCall):
    def __init__(self, rig: SimRig, box_call_id: str, answered_at: float, mark: int, audio_from: int) -> None:
        super().__init__(rig.box_events, box_call_id, answered_at, mark)
        self._rig = rig
        self._cursor = audio_from  # the uplink WAV's data size before this call rang
        self._hung_up = False
        self._poller = asyncio.create_task(self._poll(), name=f"hil-uplink-{box_call_id}")

    async def _poll(self) -> None:
        while True:
            self._refresh()
            await asyncio.sleep(FRAME_S)

    def _refresh(self) -> None:
        size, data = self._rig.uplink.read_from(self._cursor)
        if size < self._cursor:  # the modem service restarted and the simulator began a new file
            self._cursor = 0
            return
        self._cursor += len(data)
        self.recording.extend(data)

    async def _play(self, wav: Path) -> None:
        await self.bus.request("simulator/speak", {"wav": str(wav)})

    async def press(self, digits: str) -> None:
        await self.bus.request("simulator/dtmf", {"digits": digits})

    async def hang_up(self) -> None:
        self._hung_up = True
        await self.bus.request("simulator/hangup")

    @property
    def live(self) -> bool:
        if self._hung_up:
            return False
        states = self.bus.seen("call/state", self.mark)
        return not any(isinstance(m.payload, dict) and m.payload.get("state") == "idle" for m in states)

    async def _stop_audio(self) -> None:
        self._poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._poller
        self._refresh()


class SimRig(Rig):
    name = "simulator"
    timing = RigTiming(voice_round_trip_s=0.0, modem_boot_s=0.0, call_setup_s=0.0)

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.uplink = UplinkTail(self.data_dir / "run" / "simulator-uplink.wav")
        self.app: SecretaryApp | None = None
        self._box_number: str | None = None

    @property
    def box_number(self) -> str:
        assert self._box_number is not None, "the rig is not started"
        return self._box_number

    @property
    def tester_number(self) -> str:
        return TESTER_NUMBER

    async def _start(self) -> None:
        broker_dir = self.workdir / "mosquitto"
        broker_dir.mkdir(parents=True, exist_ok=True)
        broker = MosquittoBroker(workdir=broker_dir, box_id=BOX_ID)  # secured as on a box: users and ACL for hil-box
        await asyncio.to_thread(broker.start)
        self._stack.callback(broker.close)
        config_path = self.workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(sim_config(self.data_dir, broker)), encoding="utf-8")
        app = SecretaryApp(load_config(config_path, {}), config_path=config_path, notifier=SystemdNotifier(environ={}))
        self.app = app
        running = asyncio.create_task(app.run(), name="hil-secretaryd")
        self._stack.push_async_callback(self._stop_app, app, running)
        owner = BoxBus(broker.url, broker.topics, password=broker.login(CLI).password)  # the owner's tool's user
        self.box_events = await self._stack.enter_async_context(owner)
        self._stack.push_async_callback(self.settle)  # runs first on exit: no call left behind
        ready = asyncio.ensure_future(self._wait_ready())
        done, _ = await asyncio.wait({ready, running}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if running in done:
                running.result()
                raise RuntimeError("the daemon stopped before it was ready")
            raise TimeoutError(f"the box was not ready to answer within {READY_TIMEOUT_S:g} s")
        self._box_number = ready.result()

    async def _wait_ready(self) -> str:
        bus = self.box_events
        await bus.wait_state("services/calls/state", lambda s: isinstance(s, dict) and s.get("state") == "running",
                             timeout=READY_TIMEOUT_S)
        modem = await bus.wait_state("modem/state", lambda s: isinstance(s, dict) and bool(s.get("registered"))
                                     and bool(s.get("own_number")), timeout=READY_TIMEOUT_S)
        return str(modem["own_number"])

    @staticmethod
    async def _stop_app(app: SecretaryApp, running: asyncio.Task[None]) -> None:
        app.stop()
        await asyncio.wait_for(running, STOP_TIMEOUT_S)

    def _simulator(self) -> Any:
        assert self.app is not None
        return self.app.supervisor.service("modem").simulator  # type: ignore[attr-defined]

    # -- calls ----------------------------------------------------------------------
    async def _place_call(self, mark: int, timeout: float) -> SimCall:
        audio_from, _ = self.uplink.read_from(0)
        await self.box_events.request("simulator/call", {"from": TESTER_NUMBER})
        try:
            answered = await self.box_events.wait_event("call/event", "answered", timeout=timeout, after=mark,
                                                        caller=TESTER_NUMBER)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.box_events.request("simulator/hangup")  # the caller gives up
            raise
        return SimCall(self, answered.payload["call_id"], answered.at, mark, audio_from)

    # -- SMS ------------------------------------------------------------------------
    async def send_sms(self, text: str) -> None:
        await self.box_events.request("simulator/sms", {"from": TESTER_NUMBER, "text": text})

    def _sms_mark(self) -> int:
        return len(self._simulator().sent_sms)

    async def _received_sms(self, since: Any, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for sms in self._simulator().sent_sms[since:]:
                if sms.number == TESTER_NUMBER:
                    return str(sms.text)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no SMS from the box to {TESTER_NUMBER} within {timeout:g} s")
            await asyncio.sleep(0.05)

    # -- USB ------------------------------------------------------------------------
    async def unplug_box_modem(self) -> None:
        await self.box_events.request("simulator/unplug")

    async def replug_box_modem(self) -> None:
        await self.box_events.request("simulator/replug")
