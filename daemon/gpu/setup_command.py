"""``secretary gpu setup``: the GPU box in one command, step by step, each skipped when already done.

::

    [1/5] preflight     GPU + driver through NVML, CUDA for the pinned wheels, a Python for the venvs, free disk,
                        and the profile's VRAM budget against the card (nothing is changed before all pass)
    [2/5] engine venvs  vLLM and XTTS venvs at the config's paths, pinned by constraints-vllm.txt / -xtts.txt
    [3/5] models        the lock file's models into engines.models_dir (the Hub, HF_ENDPOINT, or --from DIR)
    [4/5] profile       the engine chains and the VRAM budget's figures written into the config (comments kept)
    [5/5] units         secretary-vllm.service enabled and started, secretaryd restarted, engines/*/state ready
                        on the GPU, the persona's greeting said in its voice and timed

The first problem stops it with what failed and what to do (exit 1); a rerun
skips what is done (a venv's stamp, a model's marker, a config already so,
engines already serving from the GPU) and resumes the rest. ``--dry-run``
prints every command and every file or key it would touch and changes
nothing. ``--from DIR`` takes the models from a stick (``secretary gpu
models --export DIR``) and, when ``DIR/wheels`` exists, the venvs' wheels too.
"""

from __future__ import annotations

# huggingface_hub reads HF_HUB_OFFLINE when first imported: the models' code first, before the engines' code
# (engine_wiring brings in engines/stt, which sets HF_HUB_OFFLINE=1 for the daemon).
from daemon.gpu.models.model_install import install_models

# isort: split
import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TextIO

from channels.bus_contract.topics import command, engine_state
from channels.bus_contract.verbs import SPEAK
from config.engines_schema import VllmConfig
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from daemon.engine_host.engine_wiring import models_dir_of
from daemon.gpu.engine_units import (
    READY_TIMEOUT_S,
    EngineGoal,
    EngineWatch,
    UnitsError,
    gpu_goals,
    speak_greeting,
    start_units,
    wait_until_ready,
    wav_seconds,
)
from daemon.gpu.engine_venvs import EngineVenv, VenvError, ensure_venv, parse_constraints, venv_root_of
from daemon.gpu.gpu_profiles import PROFILES, GpuProfile, get_profile
from daemon.gpu.models.model_errors import ModelInstallError
from daemon.gpu.models.model_lock import LockError, ModelLock, load_lock, repository_file
from daemon.gpu.models.models_command import DEFAULT_CONFIG
from daemon.gpu.nvml_probe import NvmlUnavailable
from daemon.gpu.preflight import Preflight, PreflightError, run_preflight
from daemon.gpu.profile_writer import NOTHING_TO_CHANGE, write_profile
from daemon.gpu.vram_budget import BudgetDoesNotFit, VramBudget, compute_budget

STEPS = ("preflight", "engine venvs", "models", "profile", "units")
DEFAULT_PROFILE = "rtx3060"
MODELS_UMASK = 0o022  # the models are no secret; `secretary`'s own umask (0o027) would hide them from the units
WHEELS_ON_STICK = "wheels"  # DIR/wheels: the venvs' wheels for a box without internet (pip --find-links)


class SetupStop(Exception):
    """A step failed: ``step`` is where, the message says what failed and what to do."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                        help=f"the card class to size the engines for (default {DEFAULT_PROFILE})")
    parser.add_argument("--from", dest="from_dir", type=Path, default=None, metavar="DIR",
                        help="take the models from DIR (a stick written by `secretary gpu models --export`), and the "
                             f"venvs' wheels from DIR/{WHEELS_ON_STICK} when it exists, instead of the internet")
    parser.add_argument("--dry-run", action="store_true",
                        help="print every command, file and config key it would touch; change nothing")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"the box's config (default {DEFAULT_CONFIG})")
    parser.add_argument("--index-url", default=None,
                        help="the package index for the venvs (default: pip's own, PIP_INDEX_URL honoured)")
    parser.add_argument("--endpoint", default=None, help="the Hub or mirror URL (default: HF_ENDPOINT, else the Hub)")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="also install models the lock file does not pin (checked only against the Hub's hashes)")
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT_S, metavar="S",
                        help=f"how long to wait for the engines to be ready on the GPU (default {READY_TIMEOUT_S:g} s)")


def run_setup(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        _Setup(args, out).run()
    except SetupStop as stop:
        out.flush()
        print(f"secretary gpu setup: stopped at {stop.step}: {stop}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("secretary gpu setup: interrupted; run it again: it skips what is done and resumes", file=sys.stderr)
        return 130
    return 0


def _load(path: Path) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise SetupStop("the config", exc.render()) from None


def _vllm_backend(loaded: LoadedConfig, profile: GpuProfile) -> tuple[str, str]:
    """The vllm backend's name and executable: the config's own if it has one, else the profile's."""
    for name, backend in loaded.settings.engines.llm.backends.items():
        if isinstance(backend, VllmConfig):
            return name, backend.executable if Path(backend.executable).is_absolute() else profile.vllm.executable
    return profile.vllm.backend, profile.vllm.executable


class _Setup:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.dry_run: bool = args.dry_run
        self.config_path: Path = args.config
        self.loaded = _load(self.config_path)
        try:
            self.profile = get_profile(args.profile)
            self.lock: ModelLock = load_lock()
        except (ValueError, LockError) as exc:
            raise SetupStop("the start", str(exc)) from None
        self.models_dir = models_dir_of(self.loaded.settings.engines, self.loaded.settings.data_dir)
        self.wheels = args.from_dir / WHEELS_ON_STICK if args.from_dir and (args.from_dir / WHEELS_ON_STICK).is_dir() \
            else None
        self.changed = False  # a venv, a model or the config changed: the daemon must restart on them

    def step(self, number: int, what: str) -> None:
        mode = " (dry run: nothing is changed)" if self.dry_run and number == 1 else ""
        print(f"\n[{number}/{len(STEPS)}] {STEPS[number - 1]}: {what}{mode}", file=self.out, flush=True)

    def run(self) -> None:
        venvs = self.venvs()
        preflight, budget = self.preflight(venvs)
        self.engine_venvs(venvs, preflight)
        self.models()
        self.write_profile(budget, preflight)
        self.units()
        done = "would be done" if self.dry_run else "done"
        print(f"\nsecretary gpu setup: {done} (profile {self.profile.name}); check it any time with "
              "`secretary doctor`", file=self.out)

    # -- the steps ------------------------------------------------------------------------------------

    def venvs(self) -> list[EngineVenv]:
        _, executable = _vllm_backend(self.loaded, self.profile)
        try:
            return [EngineVenv("vLLM", venv_root_of(executable), parse_constraints(repository_file("constraints-vllm.txt"))),
                    EngineVenv("XTTS", venv_root_of(self.loaded.settings.engines.tts.xtts.python),
                               parse_constraints(repository_file("constraints-xtts.txt")))]
        except VenvError as exc:
            raise SetupStop("the start", str(exc)) from None

    def preflight(self, venvs: list[EngineVenv]) -> tuple[Preflight, VramBudget]:
        self.step(1, "the NVIDIA driver and GPU (NVML), CUDA, Python, disk, and whether the profile fits the card")
        needs = [(self.models_dir, entry.total_bytes, f"model {entry.name}") for entry in self.lock.models
                 if not (self.models_dir / entry.target).is_dir()]
        try:
            preflight = run_preflight(venvs, needs, written=[self.models_dir, self.config_path])
        except (NvmlUnavailable, PreflightError) as exc:
            raise SetupStop("preflight", f"{exc}\nNothing was changed.") from None
        for line in preflight.lines:
            print(f"  {line}", file=self.out)
        try:
            budget = compute_budget(self.profile, preflight.gpu.total_mib)
        except BudgetDoesNotFit as exc:
            raise SetupStop("preflight", f"the {self.profile.name} profile does not fit {preflight.gpu.name} "
                                         f"({preflight.gpu.total_mib} MiB): {exc}\nNothing was changed.") from None
        print(f"  the {self.profile.name} profile fits {preflight.gpu.name}: {budget.planned_mib} MiB planned of "
              f"{budget.total_mib} MiB", file=self.out)
        return preflight, budget

    def engine_venvs(self, venvs: list[EngineVenv], preflight: Preflight) -> None:
        source = f"wheels from {self.wheels}" if self.wheels else (self.args.index_url or "pip's index")
        self.step(2, f"the engines' own venvs with `python -m venv` and pip ({source})")
        for venv in venvs:
            try:
                self.changed |= ensure_venv(venv, preflight.python, index_url=self.args.index_url,
                                            find_links=self.wheels, dry_run=self.dry_run, out=self.out)
            except VenvError as exc:
                raise SetupStop("engine venvs", str(exc)) from None

    def models(self) -> None:
        source = f"from {self.args.from_dir}" if self.args.from_dir else "from the Hub (HF_ENDPOINT honoured)"
        self.step(3, f"the models of {self.lock.path.name} into {self.models_dir}, {source}, each file's sha256 checked")
        ready_before = {e.name for e in self.lock.models if (self.models_dir / e.target).is_dir()}
        umask = os.umask(MODELS_UMASK)  # root writes them, the units' user (secretary) reads them
        try:
            install_models(self.lock, self.models_dir, from_dir=self.args.from_dir, endpoint=self.args.endpoint,
                           dry_run=self.dry_run, out=self.out, allow_unverified=self.args.allow_unverified)
        except ModelInstallError as exc:
            raise SetupStop("models", str(exc)) from None
        finally:
            os.umask(umask)
        self.changed |= ready_before != {e.name for e in self.lock.models if (self.models_dir / e.target).is_dir()}

    def write_profile(self, budget: VramBudget, preflight: Preflight) -> None:
        self.step(4, f"the {self.profile.name} engine chains and VRAM budget into {self.config_path} (comments kept)")
        for line in budget.lines(preflight.gpu.free_mib):
            print(f"  {line}", file=self.out)
        try:
            lines = write_profile(self.config_path, self.profile, budget, dry_run=self.dry_run)
        except ConfigError as exc:
            raise SetupStop("profile", f"the profile would not load, nothing written:\n{exc.render()}") from None
        except (OSError, ValueError) as exc:
            raise SetupStop("profile", f"cannot write {self.config_path}: {exc}. What to do: fix what it says "
                                       "(`secretary config check`), then run `secretary gpu setup` again.") from None
        for line in lines:
            print(f"  {line}", file=self.out)
        self.changed |= NOTHING_TO_CHANGE not in lines and not self.dry_run
        if not self.dry_run:
            self.loaded = _load(self.config_path)  # the daemon will read it so: it must load

    def units(self) -> None:
        self.step(5, "secretary-vllm.service enabled and started, secretaryd restarted, the engines ready on the GPU")
        backend, _ = _vllm_backend(self.loaded, self.profile)
        goals = gpu_goals(backend, self.profile.tts_chain, self.profile.stt_chain)
        settings = self.loaded.settings
        persona = settings.call.persona
        if self.dry_run:
            start_units(dry_run=True, out=self.out)
            wanted = ", ".join(f"{engine_state(g.engine)} ready on {g.backend} ({g.device})" for g in goals)
            print(f"  would wait up to {self.args.ready_timeout:g} s on {settings.mqtt.host}:{settings.mqtt.port} "
                  f"for {wanted}", file=self.out)
            print(f"  would ask the daemon ({command(SPEAK)}) to say {persona}'s greeting and time it", file=self.out)
            return
        try:
            asyncio.run(self._units(goals, persona))
        except UnitsError as exc:
            raise SetupStop("units", str(exc)) from None

    async def _units(self, goals: list[EngineGoal], persona: str) -> None:
        settings = self.loaded.settings
        async with EngineWatch(settings, self.loaded.secret) as watch:
            if not self.changed:
                try:
                    await wait_until_ready(watch, goals, after=None, timeout_s=2.0, out=self.out)
                    print("  the engines already serve from the GPU and nothing changed: units left as they are",
                          file=self.out)
                    after: float | None = None
                except UnitsError:
                    after = await asyncio.to_thread(start_units, out=self.out)
            else:
                after = await asyncio.to_thread(start_units, out=self.out)
            if after is not None:
                await wait_until_ready(watch, goals, after=after, timeout_s=self.args.ready_timeout, out=self.out)
            print("  every engine is ready on the GPU", file=self.out)
            timing = await speak_greeting(watch, persona, settings.personas[persona].greeting)
        voice = self.profile.tts_chain[0]
        spoken = wav_seconds(Path(timing.audio_file))
        length = f" for {spoken:.1f} s of speech (real-time factor {timing.total_ms / 1000 / spoken:.2f})" \
            if spoken else ""
        first = f"first audio after {timing.first_audio_ms:.0f} ms, " if timing.first_audio_ms is not None else ""
        print(f"  {persona}'s greeting in its voice ({timing.backend}): {first}{timing.total_ms:.0f} ms to the whole "
              f"WAV{length}", file=self.out)
        if timing.backend != voice:
            print(f"  warning: it was spoken by {timing.backend}, not {voice}: the cloned voice is not serving "
                  "(secretary doctor)", file=self.out)
