"""Memory and first-voice latency over many calls: a real ``secretaryd`` taking ``--calls`` calls back to back.

The box runs as a user's box does: ``secretaryd`` as a child process on the
default CPU engines (Silero VAD, faster-whisper base, the packaged SmolLM2,
Piper), the real SIM7600 driver on the pseudo-terminals of the SIM7600
simulator running as its own process (``python -m drivers.sim7600.simulator
run``, scripted over its control socket, as ``tests/faults/test_crash_restart.py``
does), and a private, secured mosquitto (``daemon/tools/private_broker.py``).
The simulator lives outside the daemon so that the daemon's memory is the
product's alone (the built-in ``modem.driver: simulator`` keeps every call's
audio in the daemon). The web page is off.

Each call: the simulator rings (the box answers after one ring), the box
greets, the caller says the first ``--lines`` (default 2) bundled English
caller recordings (``daemon/tools/demo_caller/``), each once the secretary's
previous turn is out and the line has been quiet for 0.5 s, then hangs up
after the box's last answer. Per call it prints:

- the daemon's RSS (``VmRSS`` of ``/proc/<pid>/status``; ``RssAnon`` too) once
  the call has ended and the line is idle, after ``--settle-s``;
- the first-voice latency as the caller hears it: from the moment the
  simulator reports the call connected (its ``status`` polled every 10 ms
  after the ring: ATA seen) to the first 20 ms frame of the box's audio
  (the simulator's uplink recording) whose RMS is above 300 (speech, not
  line silence), dated from the paced 16 kB/s stream that followed it.
  Accurate to about +-10 ms (the poll). The bus's own figure is printed
  beside it: the greeting utterance's ``latency_ms.greeting_ms`` (PCM up ->
  first greeting frame, the daemon's clock);
- the call's outcome and end reason as the bus's ``ended`` says them, and
  whether the record (``transcript.json``), the index (``secretary.db``) and
  the bus agree.

With tracemalloc on (the default; ``--no-tracemalloc`` to measure RSS
without its overhead) the daemon runs with ``SECRETARY_TRACEMALLOC=<frames>``
(``daemon/runtime/heap_trace.py``) and gets SIGUSR2 after call
``--early-snapshot-after`` (default 20; at most calls - 1) and after the last
call, once RSS was read (so a snapshot's own memory falls between the two
fitted ranges); the two snapshots are compared here: the top growers by line,
each with the project frames of its biggest traceback.

At the end: RSS growth per call as a least-squares slope over calls 1-20
and over calls 21 on, the start (engines loaded, before call 1), end and
peak RSS, the first-voice latency's median, p95 and p99 over every call
that had one (a call without any box audio is counted as excluded, with its
call number), and ONE line of JSON with all of it. Never fails on time; it
exits 1 only if the daemon does not start or dies.

    .venv/bin/python bench/soak.py [--calls 100] [--lines 2] [--no-tracemalloc] [--trace-frames 8]
                                   [--early-snapshot-after 20] [--settle-s 1.0]
                                   [--models-dir /tmp/secretary-bench-models] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.json_line import machine, print_json_line  # noqa: E402
from channels.bus_contract.topics import CALL_EVENT, engine_state, service_state  # noqa: E402
from daemon.engine_host.speech_readiness import SPEECH_ENGINES  # noqa: E402
from daemon.runtime.heap_trace import ENV as TRACE_ENV  # noqa: E402
from daemon.runtime.heap_trace import snapshot_path  # noqa: E402
from daemon.tools.demo_caller import caller_script  # noqa: E402
from daemon.tools.private_broker import MosquittoBroker  # noqa: E402
from tests.support.daemon_runner import secretaryd_command  # noqa: E402
from tests.support.mqtt_watch import MqttWatch  # noqa: E402

BOX_ID = "soak-box"
CALLER = "+79161234567"
LANGUAGE = "en"
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16: the line's frame
LINE_BYTES_PER_S = 16_000
WAV_HEADER = 44  # the simulator's uplink WAV (Python's wave module): the data starts here
VOICE_RMS = 300.0  # a 20 ms frame louder than this is speech (tests/faults/test_sigterm.py's threshold)
QUIET_S, QUIET_PEAK = 0.5, 100  # the caller speaks once the line has been this quiet (s, PCM16 peak)
POLL_S = 0.01  # the simulator's status while ringing: the answer is dated to this
ENGINES = (*SPEECH_ENGINES, "llm")
WARMUP_CALLS = 20  # the warm-up: RSS is fitted over calls 1..20 and 21..N
TOP_GROWERS = 15
START_TIMEOUT_S = 900.0  # a first start stages the whisper model; a loaded 2-core machine loads slowly
CALL_STEP_TIMEOUT_S = 90.0
SNAPSHOT_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 20.0


class DaemonDied(Exception):
    pass


# -- the simulated modem, over its control socket ----------------------------------------


class SimControl:
    """One connection to the simulator's control socket; one command at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(str(self.path))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def send(self, line: str, timeout_s: float = 30.0) -> str:
        assert self._reader is not None and self._writer is not None
        async with self._lock:
            self._writer.write(line.encode() + b"\n")
            await self._writer.drain()
            async with asyncio.timeout(timeout_s):
                return (await self._reader.readline()).decode().rstrip("\n")

    async def ok(self, line: str) -> str:
        reply = await self.send(line)
        if not reply.startswith("ok"):
            raise RuntimeError(f"simulator: {line}: {reply}")
        return reply.removeprefix("ok").strip()

    async def status(self) -> dict[str, Any]:
        return json.loads(await self.ok("status"))  # type: ignore[no-any-return]


class Uplink:
    """What the box has sent the caller: the simulator's growing uplink WAV (its header is patched on every write)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            return max(0, self.path.stat().st_size - WAV_HEADER)
        except FileNotFoundError:
            return 0

    def read(self, start: int, end: int) -> bytes:
        with self.path.open("rb") as wav:
            wav.seek(WAV_HEADER + start)
            return wav.read(max(0, end - start))

    def quiet(self, seconds: float) -> bool:
        """The last ``seconds`` the box sent were silence."""
        window = int(seconds * LINE_BYTES_PER_S)
        end = self.size()
        tail = self.read(max(0, end - window), end)
        tail = tail[: len(tail) - len(tail) % 2]
        return len(tail) == window and int(np.abs(np.frombuffer(tail, "<i2").astype(np.int32)).max()) < QUIET_PEAK


def loud_frame(pcm: bytes) -> int | None:
    """Index of the first 20 ms frame of ``pcm`` (whole frames) whose RMS says speech; None if none."""
    frames = np.frombuffer(pcm, "<i2").astype(np.float64).reshape(-1, FRAME_BYTES // 2)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > VOICE_RMS)
    return int(loud[0]) if loud.size else None


async def first_voice(uplink: Uplink, start: int, answered_at: float, timeout_s: float) -> tuple[float, float] | None:
    """(ms from ``answered_at`` to the first loud frame after uplink byte ``start``, ms of line audio before it).

    The frame's arrival is dated from the stream after it: the box writes one frame per 20 ms, so the bytes
    that followed it took (bytes / 16 kB/s) to arrive.
    """
    checked = start
    deadline = time.monotonic() + timeout_s
    while True:
        now = time.monotonic()
        total = uplink.size()
        whole = (total - checked) - (total - checked) % FRAME_BYTES
        if whole > 0:
            found = loud_frame(uplink.read(checked, checked + whole))
            if found is not None:
                at = checked + found * FRAME_BYTES
                arrived = now - (total - at) / LINE_BYTES_PER_S
                return (arrived - answered_at) * 1000, (at - start) / LINE_BYTES_PER_S * 1000
            checked += whole
        if now > deadline:
            return None
        await asyncio.sleep(0.02)


# -- the daemon --------------------------------------------------------------------------


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, VmHWM of ``pid`` in kB (DaemonDied if it is gone)."""
    try:
        rows = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError as exc:
        raise DaemonDied(f"secretaryd (pid {pid}) is gone") from exc
    wanted = {"VmRSS", "RssAnon", "VmHWM"}
    found: dict[str, int] = {}
    for row in rows:
        key, _, value = row.partition(":")
        if key in wanted:
            found[key] = int(value.split()[0])
    return found


STEP_MB = 16.0  # an RSS rise this big between two calls is a step: the bench names the mappings that grew


def mapping_rss_kb(pid: int) -> dict[str, int]:
    """Rss (kB) of each mapping of ``pid`` from ``/proc/<pid>/smaps``, keyed ``"start-end path"`` (``[anon]``).

    A mapping is the same one across reads when its start and path are (``[heap]`` grows at its end).
    """
    rss: dict[str, int] = {}
    key: str | None = None
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise DaemonDied(f"secretaryd {pid} is gone") from exc
    for line in text.splitlines():
        head = line.split(maxsplit=1)[0] if line else ""
        if "-" in head and not head.endswith(":"):  # a mapping's header: range perms offset dev inode [path]
            parts = line.split(maxsplit=5)
            key = f"{parts[0]} {parts[5].strip() if len(parts) > 5 else '[anon]'}"
        elif head == "Rss:" and key is not None:
            rss[key] = int(line.split()[1])
    return rss


def grown_mappings(before: dict[str, int], after: dict[str, int], top: int = 5) -> list[dict[str, Any]]:
    """The mappings whose Rss grew most between two reads (a new one says so; a 64 MB [anon] is a malloc arena)."""
    def same(key: str) -> str:  # start address and path
        return key.split("-", 1)[0] + " " + key.split(" ", 1)[1]

    earlier = {same(key): kb for key, kb in before.items()}
    grew = []
    for key, kb in after.items():
        delta = kb - earlier.get(same(key), 0)
        if delta > 0:
            start, end = (int(x, 16) for x in key.split(" ", 1)[0].split("-"))
            grew.append({"mapping": key.split(" ", 1)[1], "size_mb": round((end - start) / 2**20, 1),
                         "new": same(key) not in earlier, "grew_mb": round(delta / 1024, 1)})
    return sorted(grew, key=lambda g: -g["grew_mb"])[:top]


def daemon_config(path: Path, data: Path, models: Path, sim_dir: Path, broker: MosquittoBroker) -> Path:
    path.write_text(
        f"box_id: {BOX_ID}\n"
        f"data_dir: {data}\n"
        "log:\n  level: info\n  format: json\n"
        f"modem:\n  driver: sim7600\n  at_port: {sim_dir / 'at'}\n  audio_port: {sim_dir / 'audio'}\n"
        "  answer_after_rings: 1\n"
        f"mqtt:\n{broker.mqtt_yaml()}"
        f"engines:\n  models_dir: {models}\n"
        "call:\n  max_answer_wait_s: 120\n"
        "web:\n  enabled: false\n",
        encoding="utf-8",
    )
    return path


def child_env(trace_frames: int) -> dict[str, str]:
    dropped = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", TRACE_ENV)  # no systemd here; tracing as asked
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    if trace_frames:
        env[TRACE_ENV] = str(trace_frames)
    return env


@contextlib.contextmanager
def simulator(work: Path, env: dict[str, str]) -> Iterator[Path]:
    """The SIM7600 simulator as its own process; yields its directory (at, audio, ctl.sock, uplink.wav)."""
    sim_dir = work / "sim"
    sim_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "drivers.sim7600.simulator", "run", "--at", str(sim_dir / "at"),
               "--audio", str(sim_dir / "audio"), "--control", str(sim_dir / "ctl.sock"),
               "--record", str(sim_dir / "uplink.wav"), "--ring-period", "1"]
    with (work / "simulator.log").open("ab") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (sim_dir / "ctl.sock").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start: " + (work / "simulator.log").read_text()[-2000:])
            time.sleep(0.05)
        yield sim_dir
    finally:
        stop_process(proc, 10)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def log_tail(work: Path) -> str:
    path = work / "secretaryd.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


# -- one call ----------------------------------------------------------------------------


@dataclass
class CallFigures:
    number: int
    call_id: str | None = None
    rss_mb: float | None = None
    anon_mb: float | None = None
    first_voice_ms: float | None = None
    line_ms_before_voice: float | None = None  # line audio the box sent before its first voice
    bus_greeting_ms: float | None = None
    outcome: str | None = None  # the bus's ended
    reason: str | None = None
    record: list[str | None] = field(default_factory=list)  # [outcome, end_reason] in transcript.json
    index: list[str | None] = field(default_factory=list)  # [outcome, end_reason] in secretary.db
    agree: bool = False  # record, index and bus say the same, and none says in_progress
    secretary_turns: int = 0
    caller_turns: int = 0  # caller utterances in the record
    greeting_heard: bool = False  # the record's greeting has end_s > start_s
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    step: list[dict[str, Any]] = field(default_factory=list)  # RSS jumped > STEP_MB: the mappings that grew


class Caller:
    """Places calls over the simulator and reads what they left on the bus, in the record and the index."""

    def __init__(self, sim: SimControl, uplink: Uplink, bus: MqttWatch, data: Path, topics: Callable[[str], str],
                 pid: int, lines: int) -> None:
        self.sim, self.uplink, self.bus, self.data = sim, uplink, bus, data
        self.mappings: dict[str, int] | None = None  # the daemon's mappings after the last call (steps)
        self.last_rss_mb: float | None = None
        self.event_topic = topics(CALL_EVENT)
        self.pid = pid
        self.lines = caller_script(LANGUAGE)[:lines]
        self.mark = 0  # where the current call's messages start in bus.seen

    def events(self, call_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The call's ``call/event``s (only what came since this call was placed is looked at)."""
        return [e for m in self.bus.seen[self.mark:] if m.topic == self.event_topic
                and (e := m.json()).get("call_id") == call_id and (kind is None or e["type"] == kind)]

    def secretary_turns(self, call_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events(call_id, "utterance") if e["role"] == "secretary"]

    def ended(self, call_id: str) -> dict[str, Any] | None:
        found = self.events(call_id, "ended")
        return found[0] if found else None

    async def until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            memory_kb(self.pid)  # DaemonDied if it is gone
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def secretary_done(self, call_id: str, turns: int) -> bool:
        """The secretary's ``turns``-th utterance is out and the line stayed quiet ``QUIET_S`` after it
        (if she goes on talking, wait for that utterance too)."""
        while True:
            if not await self.until(
                lambda: len(self.secretary_turns(call_id)) >= turns or self.ended(call_id) is not None,
                CALL_STEP_TIMEOUT_S,
            ):
                return False
            await asyncio.sleep(QUIET_S)
            if self.ended(call_id) is not None or self.uplink.quiet(QUIET_S):
                return True
            turns = len(self.secretary_turns(call_id)) + 1

    async def answered(self) -> tuple[float, int]:
        """Poll the simulator until the call is connected: (monotonic time of that poll, uplink bytes then)."""
        deadline = time.monotonic() + 150  # the box may hold a call until it can speak (max_answer_wait_s 120)
        while time.monotonic() < deadline:
            asked = time.monotonic()
            status = await self.sim.status()
            call = status["call"]
            if isinstance(call, dict) and call["stat"] == "active":
                return asked, int(status["uplink_bytes"])
            memory_kb(self.pid)
            await asyncio.sleep(POLL_S)
        raise TimeoutError("the box did not answer within 150 s")

    async def place(self, figures: CallFigures) -> None:
        """One call, into ``figures``: ring, greeting, the caller's lines, hang-up, and what it left."""
        self.mark = len(self.bus.seen)
        await self.sim.ok(f"call {CALLER}")
        answered_at, uplink_start = await self.answered()
        voice = asyncio.create_task(first_voice(self.uplink, uplink_start, answered_at, 30.0))
        try:
            answer = await self.bus.wait_for(
                lambda m: m.topic == self.event_topic and m.json()["type"] == "answered", 30, after=self.mark)
            call_id = figures.call_id = str(answer.json()["call_id"])
            if not await self.secretary_done(call_id, 1):
                figures.problems.append("no greeting")
            for line in self.lines:
                if self.ended(call_id) is not None:
                    figures.problems.append("the call ended before the caller said everything")
                    break
                before = len(self.secretary_turns(call_id))
                await self.sim.ok(f"speak {line.wav}")
                if not await self.secretary_done(call_id, before + 1):
                    figures.problems.append(f"no answer to {line.wav.name}")
            if self.ended(call_id) is None and (await self.sim.status())["call"] is not None:
                await self.sim.send("hangup")  # the caller hangs up after the box's last answer
            if not await self.until(lambda: self.ended(call_id) is not None, 60):
                figures.problems.append("no ended event within 60 s")
            await self.idle(figures)
        finally:
            measured = await voice
        if measured is not None:
            figures.first_voice_ms, figures.line_ms_before_voice = (round(v, 1) for v in measured)
        greeting = next((e for e in self.secretary_turns(call_id) if e.get("source") == "greeting"), None)
        if greeting is not None and "greeting_ms" in (greeting.get("latency_ms") or {}):
            figures.bus_greeting_ms = float(greeting["latency_ms"]["greeting_ms"])
        ended = self.ended(call_id)
        if ended is not None:
            figures.outcome, figures.reason = ended.get("outcome"), ended.get("reason")
        await self.check_record(figures)

    async def idle(self, figures: CallFigures, hang_up_after_s: float = 10.0) -> None:
        """Until the simulator has no call; the caller hangs up if it still has one after ``hang_up_after_s``."""
        started = time.monotonic()
        deadline = started + 60
        while (await self.sim.status())["call"] is not None:
            if time.monotonic() >= started + hang_up_after_s:
                await self.sim.send("hangup")
            if time.monotonic() > deadline:
                figures.problems.append("the simulator still has the call after 60 s")
                return
            memory_kb(self.pid)
            await asyncio.sleep(0.05)

    def measure(self, figures: CallFigures) -> None:
        memory = memory_kb(self.pid)
        figures.rss_mb, figures.anon_mb = round(memory["VmRSS"] / 1024, 2), round(memory["RssAnon"] / 1024, 2)
        mappings = mapping_rss_kb(self.pid)
        if self.mappings is not None and self.last_rss_mb is not None and figures.rss_mb - self.last_rss_mb > STEP_MB:
            figures.step = grown_mappings(self.mappings, mappings)
        self.mappings, self.last_rss_mb = mappings, figures.rss_mb

    async def check_record(self, figures: CallFigures) -> None:
        """The record once it is final, its index row, and whether they say what the bus said."""
        assert figures.call_id is not None
        path = self.data / "calls" / figures.call_id / "transcript.json"
        record: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                record = json.loads(path.read_text(encoding="utf-8"))
                if record.get("outcome") != "in_progress":
                    break
            await asyncio.sleep(0.1)
        figures.record = [record.get("outcome"), record.get("end_reason")]
        try:
            with sqlite3.connect(f"file:{self.data / 'secretary.db'}?mode=ro", uri=True) as db:
                row = db.execute("SELECT outcome, end_reason FROM calls WHERE call_id = ?",
                                 (figures.call_id,)).fetchone()
        except sqlite3.Error as exc:
            figures.problems.append(f"index: {exc}")
            row = None
        figures.index = list(row) if row is not None else []
        said: list[dict[str, Any]] = record.get("utterances", [])
        figures.secretary_turns = sum(u["role"] == "secretary" for u in said)
        figures.caller_turns = sum(u["role"] == "caller" for u in said)
        figures.greeting_heard = any(u.get("source") == "greeting" and u["end_s"] > u["start_s"] for u in said)
        bus = [figures.outcome, figures.reason]
        figures.agree = figures.record == figures.index == bus and "in_progress" not in bus and None not in bus
        if not figures.agree:
            figures.problems.append(f"record {figures.record}, index {figures.index}, bus {bus}")


# -- snapshots and figures ---------------------------------------------------------------


async def snapshot(pid: int, directory: Path, number: int) -> tuple[Path, float]:
    """SIGUSR2 the daemon; (the snapshot file once written, seconds it took)."""
    path = snapshot_path(directory, pid, number)
    started = time.monotonic()
    os.kill(pid, signal.SIGUSR2)
    while not path.exists():
        memory_kb(pid)
        if time.monotonic() - started > SNAPSHOT_TIMEOUT_S:
            raise TimeoutError(f"no heap snapshot {path.name} within {SNAPSHOT_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.1)
    return path, time.monotonic() - started


STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def short(filename: str) -> str:
    """A traced file as the report names it: relative to the repo, to site-packages, or the standard library."""
    path = Path(filename)
    if "site-packages" in path.parts:
        return str(Path(*path.parts[path.parts.index("site-packages") + 1:]))
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(REPO))
    with contextlib.suppress(ValueError):
        return "stdlib/" + str(path.resolve().relative_to(STDLIB))
    return filename


def ours(filename: str) -> bool:
    with contextlib.suppress(ValueError):
        return Path(filename).resolve().relative_to(REPO).parts[0] in ("daemon", "drivers", "engines", "channels",
                                                                       "config")
    return False


NOISE = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
         tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"), tracemalloc.Filter(False, "<unknown>"))


def growers(early: Path, late: Path, calls_between: int) -> dict[str, Any]:
    """Top growers by line between two snapshots, each with the project frames of its biggest traceback."""
    before = tracemalloc.Snapshot.load(str(early)).filter_traces(NOISE)
    after = tracemalloc.Snapshot.load(str(late)).filter_traces(NOISE)
    by_line = [d for d in after.compare_to(before, "lineno") if d.size_diff > 0][:TOP_GROWERS]
    by_stack = [d for d in after.compare_to(before, "traceback") if d.size_diff > 0]
    top: list[dict[str, Any]] = []
    for diff in by_line:
        frame = diff.traceback[0]
        stack = next((d.traceback for d in by_stack if d.traceback[-1] == frame), None)  # most recent frame last
        where = f"{short(frame.filename)}:{frame.lineno}"
        project: list[str] = []  # the project's frames on the way there, most recent first, not repeating
        for f in reversed(stack or []):
            name = f"{short(f.filename)}:{f.lineno}"
            if ours(f.filename) and name != where and name not in project and len(project) < 4:
                project.append(name)
        top.append({
            "where": where, "kb": round(diff.size_diff / 1024, 1),
            "blocks": diff.count_diff, "bytes_per_call": round(diff.size_diff / max(1, calls_between)),
            "size_kb_now": round(diff.size / 1024, 1), "via": project,
        })
    traced_before = sum(t.size for t in before.traces)
    traced_after = sum(t.size for t in after.traces)
    return {
        "traced_mb_early": round(traced_before / 2**20, 2), "traced_mb_late": round(traced_after / 2**20, 2),
        "traced_kb_per_call": round((traced_after - traced_before) / 1024 / max(1, calls_between), 1),
        "top_growers": top,
    }


def slope_kb_per_call(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of (call number, MB) in kB per call; None with fewer than two points."""
    if len(points) < 2:
        return None
    x = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    return round(float(np.polyfit(x, y, 1)[0]) * 1024, 1)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the house style of bench/voice_to_voice.py); None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def latency(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 1) if values else None, "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": max(values, default=None), "n": len(values)}



def summarize(calls: list[CallFigures], start: dict[str, int], end: dict[str, int], trace: dict[str, Any] | None,
              args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    rss = [(c.number, c.rss_mb) for c in calls if c.rss_mb is not None]
    anon = [(c.number, c.anon_mb) for c in calls if c.anon_mb is not None]
    warm = WARMUP_CALLS
    voiced = [c.first_voice_ms for c in calls if c.first_voice_ms is not None]
    return {
        "calls": len(calls), "calls_asked": args.calls, "caller_lines": args.lines,
        "completed_truthfully": sum(c.agree for c in calls),
        "outcomes": dict(Counter(f"{c.outcome}/{c.reason}" for c in calls)),
        "first_voice_ms": {
            **latency(voiced),
            "measured": "simulator: call connected (ATA) -> first speech frame the caller received, +-10 ms",
            "excluded_calls": [c.number for c in calls if c.first_voice_ms is None],
            "excluded_why": "no speech frame from the box within 30 s of the answer",
        },
        "bus_greeting_ms": {**latency([c.bus_greeting_ms for c in calls if c.bus_greeting_ms is not None]),
                            "measured": "daemon: PCM up -> first greeting frame (call/event utterance latency_ms)"},
        "rss_mb": {"start": round(start["VmRSS"] / 1024, 1), "after_call_1": rss[0][1] if rss else None,
                   "end": rss[-1][1] if rss else None, "peak_hwm": round(end.get("VmHWM", 0) / 1024, 1)},
        "rss_kb_per_call": {f"calls_1_{warm}": slope_kb_per_call([p for p in rss if p[0] <= warm]),
                            f"calls_{warm + 1}_on": slope_kb_per_call([p for p in rss if p[0] > warm])},
        "anon_mb": {"start": round(start["RssAnon"] / 1024, 1), "end": anon[-1][1] if anon else None},
        "anon_kb_per_call": {f"calls_1_{warm}": slope_kb_per_call([p for p in anon if p[0] <= warm]),
                             f"calls_{warm + 1}_on": slope_kb_per_call([p for p in anon if p[0] > warm])},
        "tracemalloc": trace,
        "rss_steps": [{"call": c.number, "mappings": c.step} for c in calls if c.step],
        "per_call": [asdict(c) for c in calls],
        "machine": machine(),
        **extra,
    }


def print_call(c: CallFigures, previous: float | None) -> None:
    grew = "" if previous is None or c.rss_mb is None else f" ({(c.rss_mb - previous) * 1024:+7.0f} kB)"
    rss = "-" if c.rss_mb is None else f"{c.rss_mb:8.1f} MB"
    anon = "-" if c.anon_mb is None else f"{c.anon_mb:8.1f} MB"
    voice = "-" if c.first_voice_ms is None else f"{c.first_voice_ms:6.0f} ms"
    bus = "-" if c.bus_greeting_ms is None else f"{c.bus_greeting_ms:.0f} ms"
    truth = "record=index=bus" if c.agree else f"DISAGREE {c.record} {c.index}"
    notes = f"  [{'; '.join(c.problems)}]" if c.problems else ""
    print(f"call {c.number:3}  rss {rss}{grew}  anon {anon}  first voice {voice} "
          f"(bus greeting {bus})  {c.outcome}/{c.reason}  {truth}  {c.seconds:5.1f} s{notes}", flush=True)
    for g in c.step:
        print(f"    step: {g['mapping']} ({g['size_mb']} MB{', new' if g['new'] else ''}) +{g['grew_mb']} MB", flush=True)


def print_report(s: dict[str, Any]) -> None:
    f, r, k = s["first_voice_ms"], s["rss_mb"], s["rss_kb_per_call"]
    print(f"\n{s['calls']} calls ({s['caller_lines']} caller lines each), {s['completed_truthfully']} with record, "
          f"index and bus agreeing; outcomes {s['outcomes']}")
    print(f"first voice (caller's side): median {f['median']} ms, p95 {f['p95']} ms, p99 {f['p99']} ms, "
          f"max {f['max']} ms over {f['n']} calls; excluded {f['excluded_calls'] or 'none'}")
    g = s["bus_greeting_ms"]
    print(f"bus greeting_ms (PCM up -> greeting): median {g['median']}, p95 {g['p95']}, p99 {g['p99']} ms")
    print(f"RSS: {r['start']} MB before call 1, {r['after_call_1']} MB after it, {r['end']} MB at the end "
          f"(peak {r['peak_hwm']} MB); growth per call (least squares): "
          + ", ".join(f"{n} {v} kB" for n, v in k.items()))
    a = s["anon_kb_per_call"]
    print("RssAnon growth per call: " + ", ".join(f"{n} {v} kB" for n, v in a.items()))
    t = s["tracemalloc"]
    if t is None:
        print("tracemalloc: off")
        return
    if not t.get("top_growers") and "note" in t:
        print(f"tracemalloc: {t['note']}")
        return
    print(f"tracemalloc ({t['frames']} frames): traced Python heap {t['traced_mb_early']} MB after call "
          f"{t['early_after_call']}, {t['traced_mb_late']} MB after call {t['late_after_call']} "
          f"({t['traced_kb_per_call']} kB per call); snapshots took {t['snapshot_s']} s")
    print(f"top growers between them:\n{'kB':>9} {'blocks':>8} {'B/call':>8}  where  (via)")
    for g in t["top_growers"]:
        via = f"  (via {' <- '.join(g['via'])})" if g["via"] else ""
        print(f"{g['kb']:9.1f} {g['blocks']:8d} {g['bytes_per_call']:8d}  {g['where']}{via}")


# -- the run -----------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data, models = work / "data", Path(args.models_dir)
    models.mkdir(parents=True, exist_ok=True)
    frames = 0 if args.no_tracemalloc else args.trace_frames
    env = child_env(frames)
    early_after = max(1, min(args.early_snapshot_after, args.calls - 1))
    (work / "mosquitto").mkdir(parents=True, exist_ok=True)
    with MosquittoBroker(workdir=work / "mosquitto", box_id=BOX_ID) as broker, simulator(work, child_env(0)) as sim_dir:
        topics = broker.topics
        config = daemon_config(work / "config.yaml", data, models, sim_dir, broker)
        async with MqttWatch(broker, topics("#")) as bus:
            with (work / "secretaryd.log").open("ab") as log:
                daemon = subprocess.Popen(secretaryd_command(config), env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                return await drive(args, work, data, bus, topics, daemon, sim_dir, frames, early_after)
            finally:
                code = stop_process(daemon, STOP_TIMEOUT_S)
                print(f"secretaryd stopped (exit code {code})", flush=True)


async def wait_ready(
    bus: MqttWatch, topics: Callable[[str], str], daemon: subprocess.Popen[bytes], work: Path,
) -> dict[str, str]:
    """Until the calls service runs and every engine has loaded (or failed): {engine: backend or state}."""
    started = time.monotonic()

    def latest(suffix: str) -> dict[str, Any] | None:
        seen = [m for m in bus.seen if m.topic == topics(suffix)]
        return seen[-1].json() if seen else None

    while True:
        if daemon.poll() is not None:
            raise DaemonDied(f"secretaryd exited with {daemon.returncode} while starting:\n{log_tail(work)}")
        states = {name: latest(engine_state(name)) for name in ENGINES}
        calls = latest(service_state("calls"))
        if calls is not None and calls["state"] == "running" and all(
                s is not None and s["state"] in ("ready", "degraded", "failed") for s in states.values()):
            return {name: (s["backend"] if s["state"] != "failed" else "failed") or s["state"]
                    for name, s in states.items() if s is not None}
        if time.monotonic() - started > START_TIMEOUT_S:
            raise DaemonDied(f"secretaryd not ready within {START_TIMEOUT_S:.0f} s: {states}\n{log_tail(work)}")
        await asyncio.sleep(0.2)


async def drive(args: argparse.Namespace, work: Path, data: Path, bus: MqttWatch, topics: Callable[[str], str],
                daemon: subprocess.Popen[bytes], sim_dir: Path, frames: int, early_after: int) -> dict[str, Any]:
    began = time.monotonic()
    engines = await wait_ready(bus, topics, daemon, work)
    ready_s = time.monotonic() - began
    print(f"secretaryd {daemon.pid} ready in {ready_s:.0f} s; engines {engines}; "
          f"tracemalloc {'off' if not frames else f'{frames} frames'}", flush=True)
    await asyncio.sleep(3.0)  # let the start-up's last work (phrase cache, first GC) finish
    start = memory_kb(daemon.pid)
    print(f"RSS before the first call: {start['VmRSS'] / 1024:.1f} MB (anon {start['RssAnon'] / 1024:.1f} MB)",
          flush=True)
    sim = SimControl(sim_dir / "ctl.sock")
    await sim.open()
    caller = Caller(sim, Uplink(sim_dir / "uplink.wav"), bus, data, topics, daemon.pid, args.lines)
    caller.mappings, caller.last_rss_mb = mapping_rss_kb(daemon.pid), start["VmRSS"] / 1024
    calls: list[CallFigures] = []
    snaps: list[Path] = []
    snapshot_s: list[float] = []
    died: str | None = None
    calls_began = time.monotonic()
    try:
        for number in range(1, args.calls + 1):
            previous = calls[-1].rss_mb if calls else start["VmRSS"] / 1024
            figures = CallFigures(number)
            began_call = time.monotonic()
            try:
                await caller.place(figures)
            except (TimeoutError, AssertionError, RuntimeError, OSError) as exc:  # this call failed; the next one runs
                figures.problems.append(f"call not completed: {type(exc).__name__}: {str(exc)[:300]}")
                with contextlib.suppress(TimeoutError, RuntimeError, OSError):
                    await caller.idle(figures, hang_up_after_s=0)
            await asyncio.sleep(args.settle_s)
            caller.measure(figures)
            figures.seconds = round(time.monotonic() - began_call, 1)
            calls.append(figures)
            print_call(figures, previous)
            if frames and number in (early_after, args.calls) and not (number == early_after == args.calls):
                path, took = await snapshot(daemon.pid, data / "run", len(snaps) + 1)
                snaps.append(path)
                snapshot_s.append(round(took, 1))
                print(f"  heap snapshot {path.name} after call {number} ({took:.1f} s)", flush=True)
    except DaemonDied as exc:
        died = str(exc)
        print(f"secretaryd died: {exc}\n{log_tail(work)}", file=sys.stderr, flush=True)
    finally:
        await sim.close()
    calls_s = time.monotonic() - calls_began
    end = memory_kb(daemon.pid) if died is None else {}
    trace: dict[str, Any] | None = None
    if frames:
        trace = {"frames": frames, "early_after_call": early_after, "late_after_call": len(calls),
                 "snapshot_s": snapshot_s, "top_growers": []}
        if len(snaps) == 2:
            trace |= growers(snaps[0], snaps[1], len(calls) - early_after)
        else:
            trace["note"] = "fewer than two snapshots (a single call, or the daemon died): no comparison"
    extra = {"daemon_died": died, "engines": engines, "ready_s": round(ready_s, 1), "wall_s": round(calls_s, 1),
             "settle_s": args.settle_s, "workdir": str(work)}
    return summarize(calls, start, end, trace, args, extra)




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="calls to place back to back (default 100)")
    parser.add_argument("--lines", type=int, default=2, choices=range(1, 5),
                        help="caller recordings said per call, in order (default 2; 3 lets the box end the call)")
    parser.add_argument("--no-tracemalloc", action="store_true", help="run the daemon without tracing (RSS only)")
    parser.add_argument("--trace-frames", type=int, default=8, help="traceback frames kept per allocation (default 8)")
    parser.add_argument("--early-snapshot-after", type=int, default=WARMUP_CALLS,
                        help=f"the early heap snapshot is taken after this call (default {WARMUP_CALLS}, "
                             "at most calls - 1); the late one after the last call")
    parser.add_argument("--settle-s", type=float, default=1.0, help="idle seconds after a call before RSS is read")
    parser.add_argument("--models-dir", default="/tmp/secretary-bench-models",
                        help="persistent models dir (the packaged whisper model is staged there once)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the broker, simulator, daemon log and data dir here (default: a temporary dir)")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    try:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            summary = asyncio.run(run(args, args.workdir.resolve()))
        else:
            with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
                summary = asyncio.run(run(args, Path(tmp)))
    except DaemonDied as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    print_report(summary)
    print_json_line(summary, digits=2)
    return 1 if summary["daemon_died"] else 0


if __name__ == "__main__":
    sys.exit(main())
