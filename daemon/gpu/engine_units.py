"""The GPU engines started and proven: the units, the engines' ready states on the bus, the greeting's audio time.

``start_units`` enables and starts ``secretary-vllm.service`` and restarts
``secretaryd.service`` with ``systemctl`` (the box's own tool: its exit
code and words are what the owner would see). ``wait_until_ready`` then
watches ``engines/<name>/state`` on the box's broker (logged in as the
owner's tools, ``CLI``) until every engine the profile puts on the GPU says
``ready`` with its GPU backend on a CUDA device, in a state published after
the restart (older retained states are the previous daemon's), or stops at
its timeout saying what each engine reports. ``speak_greeting`` asks the
daemon (``cmd/speak``) to say the persona's greeting and times the reply:
the whole greeting synthesized in the persona's voice, an upper bound of its
first audio (the command returns the finished WAV, not its first chunk).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from tqdm import tqdm

from channels.bus_client import BusUnavailable, ChannelBus, CommandFailed
from channels.bus_contract import verbs
from channels.bus_contract.box_payloads import EngineState
from channels.bus_contract.clients import CLI, bus_login
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.topics import EVERY_ENGINE_STATE, engine_name, engine_state
from config.schema import SecretaryConfig
from daemon.runtime.systemd_units import BOX_UNITS

_MODEM_MANAGER, _BROKER, VLLM_UNIT, DAEMON_UNIT = BOX_UNITS
SYSTEMCTL: Final = "systemctl"
READY_TIMEOUT_S: Final = 900.0  # secretary-vllm.service's TimeoutStartSec: a 7B model's first load takes minutes
GREETING_TIMEOUT_S: Final = 120.0
CONNECT_TIMEOUT_S: Final = 10.0
READY: Final = "ready"
CUDA: Final = "cuda"


class UnitsError(RuntimeError):
    """A unit would not start, or the engines did not come up on the GPU; the message says what to do."""


@dataclass(frozen=True)
class EngineGoal:
    """An engine that must serve from the GPU: ``ready`` on ``backend`` (its chain's first), on a CUDA device."""

    engine: str  # llm | tts | stt
    backend: str
    device: str = CUDA  # the device's prefix (cuda, cuda:0, ...)

    def met_by(self, state: EngineState) -> bool:
        return state.state == READY and state.backend == self.backend and (state.device or "").startswith(self.device)


def describe_state(state: EngineState | None) -> str:
    if state is None:
        return "no state on the bus yet"
    text = f"{state.state} on {state.backend or 'no backend'}" + (f" ({state.device})" if state.device else "")
    if state.detail:
        text += f": {state.detail}"
    if state.failures:
        text += f"; failed: {'; '.join(state.failures)}"
    return text


def unit_commands() -> list[list[str]]:
    """What ``start_units`` runs: the vLLM server enabled and started, then the daemon restarted on the new config."""
    return [[SYSTEMCTL, "enable", "--now", VLLM_UNIT], [SYSTEMCTL, "restart", DAEMON_UNIT]]


def start_units(*, dry_run: bool = False, out: TextIO = sys.stdout) -> float:
    """Run ``unit_commands``; returns the wall time before the restart (states older than it are stale)."""
    commands = unit_commands()
    if dry_run:
        for argv in commands:
            print(f"  would run: {' '.join(argv)}", file=out)
        return time.time()
    if shutil.which(SYSTEMCTL) is None:
        raise UnitsError(f"{SYSTEMCTL} is not on PATH: this is not a systemd box. Start {VLLM_UNIT} and "
                         f"{DAEMON_UNIT}'s equivalents by hand, then run `secretary doctor`.")
    started = time.time()
    for argv in commands:
        print(f"  $ {' '.join(argv)}", file=out)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            unit = argv[-1]
            said = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
            raise UnitsError(f"`{' '.join(argv)}` failed: {said}\n  What to do: read `journalctl -u {unit} -n 50` "
                             f"and `systemctl status {unit}`, fix what it says, then run `secretary gpu setup` again.")
    return started


class EngineWatch:
    """The engines' newest states on the bus, as a CLI client sees them."""

    def __init__(self, settings: SecretaryConfig, secret: Callable[[str], str | None]) -> None:
        self.states: dict[str, EngineState] = {}
        self.changed = asyncio.Event()
        self.bus = ChannelBus(settings.mqtt, settings.box_id, CLI.client_id(settings.box_id), [EVERY_ENGINE_STATE],
                              self._on_message, login=bus_login(settings.mqtt, CLI, secret))
        self._task: asyncio.Task[None] | None = None

    def _on_message(self, suffix: str, payload: Any) -> None:
        name = engine_name(suffix)
        if name is None or payload is None:
            return
        try:
            self.states[name] = EngineState.decode(payload)
        except PayloadError:
            return  # a bad payload is the publisher's fault; the next good one counts
        self.changed.set()

    async def __aenter__(self) -> EngineWatch:
        self._task = asyncio.create_task(self.bus.run(), name="gpu-setup-bus")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self.bus.connected.wait()
        except TimeoutError:
            await self.__aexit__()
            cfg = self.bus.mqtt
            raise UnitsError(f"cannot reach the box's broker at {cfg.host}:{cfg.port} within {CONNECT_TIMEOUT_S:g} s: "
                             "is mosquitto running (systemctl status mosquitto)? Is mqtt.credentials_file readable "
                             "(run as root)?") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def fresh(self, name: str, after: float | None) -> EngineState | None:
        state = self.states.get(name)
        if state is None or (after is not None and (state.since or 0.0) < after):
            return None
        return state


async def wait_until_ready(watch: EngineWatch, goals: Sequence[EngineGoal], *, after: float | None,
                           timeout_s: float = READY_TIMEOUT_S, out: TextIO = sys.stdout) -> dict[str, EngineState]:
    """Until every goal is met by a state newer than ``after``; UnitsError at ``timeout_s`` with each engine's state.

    A bar counts the engines ready on the GPU (vLLM's first load takes minutes); each change of state is printed.
    """
    said: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    with tqdm(total=len(goals), desc="  engines ready on the GPU", unit="engine", file=out, leave=False) as bar:
        while True:
            watch.changed.clear()
            fresh = {goal.engine: watch.fresh(goal.engine, after) for goal in goals}
            for goal in goals:
                line = describe_state(fresh[goal.engine])
                if said.get(goal.engine) != line:
                    said[goal.engine] = line
                    bar.write(f"  {engine_state(goal.engine)}: {line}", file=out)
            met = [goal for goal in goals if (state := fresh[goal.engine]) is not None and goal.met_by(state)]
            bar.update(len(met) - bar.n)
            if len(met) == len(goals):
                return {goal.engine: fresh[goal.engine] for goal in goals}  # type: ignore[misc]
            remaining = deadline - loop.time()
            if remaining <= 0:
                missing = [f"{g.engine} (wanted ready on {g.backend}, {g.device}; now {said[g.engine]})"
                           for g in goals if g not in met]
                raise UnitsError(
                    f"the engines did not come up on the GPU within {timeout_s:g} s: {'; '.join(missing)}.\n"
                    f"  What to do: `journalctl -u {VLLM_UNIT} -u {DAEMON_UNIT} -n 100`, then `secretary doctor` "
                    "(the VRAM budget and the models); run `secretary gpu setup` again once fixed.")
            try:
                async with asyncio.timeout(min(remaining, 1.0)):  # the bar's clock moves even while nothing changes
                    await watch.changed.wait()
            except TimeoutError:
                bar.refresh()


@dataclass(frozen=True)
class GreetingTiming:
    persona: str
    backend: str | None
    total_ms: float
    audio_file: str
    first_audio_ms: float | None  # the daemon's own figure: the request reached it -> the voice's first audio


async def speak_greeting(watch: EngineWatch, persona: str, text: str,
                         timeout_s: float = GREETING_TIMEOUT_S) -> GreetingTiming:
    """Have the daemon say ``persona``'s greeting in its voice (``cmd/speak``): its first audio, and the whole WAV."""
    started = time.perf_counter()
    try:
        result = await watch.bus.request(verbs.SPEAK, {"persona": persona, "text": text}, timeout_s=timeout_s)
    except (CommandFailed, BusUnavailable, TimeoutError) as exc:
        raise UnitsError(f"the daemon did not say {persona}'s greeting: {exc or 'no reply in time'}. "
                         f"What to do: `journalctl -u {DAEMON_UNIT} -n 100`; `secretary doctor`.") from None
    total_ms = (time.perf_counter() - started) * 1000
    result = result if isinstance(result, dict) else {}
    first = result.get("first_audio_ms")
    return GreetingTiming(persona, result.get("backend"), total_ms, str(result.get("audio_file", "")),
                          float(first) if isinstance(first, (int, float)) else None)


def gpu_goals(llm_backend: str, tts_chain: Iterable[str], stt_chain: Iterable[str]) -> list[EngineGoal]:
    """The goals of a GPU profile: each chain's first backend (the GPU one) must be the one serving."""
    return [EngineGoal("llm", llm_backend), EngineGoal("tts", next(iter(tts_chain))),
            EngineGoal("stt", next(iter(stt_chain)))]


def wav_seconds(path: Path) -> float | None:
    """How long the WAV at ``path`` plays; None when it cannot be read (the daemon's spool, another user's)."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate() if wav.getframerate() else None
    except (OSError, EOFError, wave.Error):
        return None
