"""The GPU engines' own venvs (vLLM, XTTS), made and kept at the versions of the repository's constraint files.

A constraint file (``constraints-vllm.txt``, ``constraints-xtts.txt`` next to
``constraints.txt``) pins every package of its venv, and its header says the
rest (one home for these facts, next to the pins they follow from)::

    # @install: vllm                      what pip installs (the pins decide every version)
    # @python: >=3.10,<3.14                the Pythons the pinned packages support
    # @cuda-driver: 12.0                   the oldest CUDA the driver must support (NVML's CUDA driver version)
    # @disk-gib: 14                        the disk the venv takes, with pip's download cache (the preflight's check)

``ensure_venv`` runs ``python -m venv`` (when the venv has no python yet) and
``pip install -c FILE <install>``, checks that pip installed the pinned
versions, then writes a stamp holding the file's sha256: the next run with the
same file skips the venv, a changed file installs again. A run that stops
half-way (network, disk) leaves no stamp, so the next run simply runs pip
again, which resumes from what is there. ``PIP_INDEX_URL`` and the rest of
pip's environment pass through; ``index_url`` / ``find_links`` name an index
or a wheel directory (a USB stick) explicitly. This blocks (pip runs for
minutes): async callers use a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from tqdm import tqdm

STAMP_NAME: Final = ".secretary-constraints.sha256"
PIP_ERROR_LINES: Final = 25  # the tail of pip's output kept for the error message
# The venvs are root's, and the units' user (secretary) runs them: readable and executable by all, whatever
# umask the owner's `secretary` command runs under (its own is private: channels/standalone.py).
VENV_UMASK: Final = 0o022
_HEADER = re.compile(r"^#\s*@(?P<key>[a-z-]+):\s*(?P<value>.+?)\s*$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>[^\s;#]+)")
_PROGRESS = re.compile(r"^(Collecting|Requirement already satisfied:|Processing) ")


class VenvError(RuntimeError):
    """A venv could not be made or filled; the message says what failed and what to do."""


def normalize(name: str) -> str:
    """PEP 503's form of a project name: ``Coqui_TTS`` -> ``coqui-tts``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Constraints:
    """One constraint file: its pins and its header's facts."""

    path: Path
    install: tuple[str, ...]
    python: str  # a PEP 440 specifier set, e.g. ">=3.10,<3.14"
    cuda_driver: tuple[int, int]
    disk_bytes: int
    pins: dict[str, str] = field(repr=False)
    digest: str = field(repr=False)

    @property
    def cuda_text(self) -> str:
        return f"{self.cuda_driver[0]}.{self.cuda_driver[1]}"

    def python_ok(self, version: tuple[int, int]) -> bool:
        """Whether Python ``major.minor`` satisfies the header's ``@python`` (``>=``/``<``/``<=``/``==`` clauses)."""
        for clause in (c.strip() for c in self.python.split(",") if c.strip()):
            match = re.fullmatch(r"(>=|<=|<|>|==)\s*(\d+)\.(\d+)", clause)
            if match is None:
                raise VenvError(f"{self.path}: @python clause {clause!r} is not like >=3.10 or <3.14")
            op, bound = match.group(1), (int(match.group(2)), int(match.group(3)))
            ok = {">=": version >= bound, "<=": version <= bound, "<": version < bound, ">": version > bound,
                  "==": version == bound}[op]
            if not ok:
                return False
        return True


def parse_constraints(path: Path) -> Constraints:
    """Read a constraint file; VenvError naming the file and what is missing or malformed."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VenvError(f"cannot read the constraint file {path}: {exc.strerror or exc}") from None
    header: dict[str, str] = {}
    pins: dict[str, str] = {}
    for number, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        text = line.strip()
        if (match := _HEADER.match(text)) is not None:
            header[match.group("key")] = match.group("value")
        elif text and not text.startswith("#"):
            pin = _PIN.match(text)
            if pin is None:
                raise VenvError(f"{path}:{number}: {text!r} is not an exact pin (name==version)")
            pins[normalize(pin.group("name"))] = pin.group("version")
    missing = [key for key in ("install", "python", "cuda-driver", "disk-gib") if key not in header]
    if missing:
        raise VenvError(f"{path}: the header lacks {', '.join('# @' + k + ':' for k in missing)}")
    cuda = re.fullmatch(r"(\d+)\.(\d+)", header["cuda-driver"])
    if cuda is None:
        raise VenvError(f"{path}: @cuda-driver {header['cuda-driver']!r} is not like 12.0")
    if not re.fullmatch(r"\d+(\.\d+)?", header["disk-gib"]):
        raise VenvError(f"{path}: @disk-gib {header['disk-gib']!r} is not a number of GiB like 14")
    install = tuple(header["install"].split())
    unpinned = [req for req in install if normalize(re.split(r"[\[=<>!~ ]", req)[0]) not in pins]
    if unpinned:
        raise VenvError(f"{path}: @install names {', '.join(unpinned)}, which the file does not pin")
    return Constraints(path=path, install=install, python=header["python"],
                       cuda_driver=(int(cuda.group(1)), int(cuda.group(2))),
                       disk_bytes=int(float(header["disk-gib"]) * 1024**3), pins=pins,
                       digest=hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class EngineVenv:
    """One engine's venv: where the config says it is and the constraint file that fills it."""

    engine: str  # "vLLM", "XTTS": for people
    path: Path
    constraints: Constraints

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def stamp(self) -> Path:
        return self.path / STAMP_NAME

    def is_current(self) -> bool:
        """Made from this very constraint file already (its stamp holds the same sha256, its python exists)."""
        try:
            return self.python.exists() and self.stamp.read_text().split()[0] == self.constraints.digest
        except (OSError, IndexError):
            return False


def venv_root_of(executable: str | Path) -> Path:
    """The venv that holds ``executable`` (``/opt/vllm/bin/vllm`` -> ``/opt/vllm``); VenvError if it is no path."""
    path = Path(executable)
    if not path.is_absolute() or path.parent.name != "bin":
        raise VenvError(f"{executable!r} is not a program inside a venv (like /opt/vllm/bin/vllm): "
                        "set the engine's path in the config to one")
    return path.parent.parent


def pip_command(venv: EngineVenv, *, index_url: str | None = None, find_links: Path | None = None) -> list[str]:
    """The ``pip install`` that fills ``venv`` (pip's own environment, ``PIP_INDEX_URL`` among it, applies too)."""
    argv = [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
            "-c", str(venv.constraints.path)]
    if index_url:
        argv += ["--index-url", index_url]
    if find_links is not None:
        argv += ["--no-index", "--find-links", str(find_links)]
    return argv + list(venv.constraints.install)


def venv_commands(venv: EngineVenv, python: str, *, index_url: str | None = None,
                  find_links: Path | None = None) -> list[list[str]]:
    """Every command ``ensure_venv`` would run now for ``venv`` (none when it is current)."""
    if venv.is_current():
        return []
    create = [] if venv.python.exists() else [[python, "-m", "venv", str(venv.path)]]
    return [*create, pip_command(venv, index_url=index_url, find_links=find_links)]


def _run_pip(argv: Sequence[str], venv: EngineVenv, out: TextIO) -> None:
    """Run pip with a progress bar over the pinned packages; VenvError with pip's last lines if it fails."""
    tail: deque[str] = deque(maxlen=PIP_ERROR_LINES)
    with tqdm(total=len(venv.constraints.pins), desc=f"  {venv.engine} packages", unit="pkg", file=out,
              leave=True, dynamic_ncols=True) as bar:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "PIP_NO_INPUT": "1"}, umask=VENV_UMASK)
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            if _PROGRESS.match(line) and bar.n < bar.total:
                bar.update(1)
        code = process.wait()
        if code == 0:
            bar.update(bar.total - bar.n)
    if code != 0:
        lines = [line for line in tail if line.strip()]
        first = next((i for i, line in enumerate(lines) if line.startswith(("ERROR", "The conflict"))), len(lines) - 5)
        errors = [line.strip() for line in lines[max(first, 0):]]
        raise VenvError(f"pip could not fill the {venv.engine} venv {venv.path} (exit {code}):\n    "
                        + "\n    ".join(errors)
                        + "\n  What to do: check the network and the package index (PIP_INDEX_URL or --index-url; "
                          f"pins in {venv.constraints.path}), then run `secretary gpu setup` again: it resumes.")


def _check_pins(venv: EngineVenv) -> None:
    """Every installed package that the file pins is at its pinned version (pip honoured the constraints)."""
    script = ("import importlib.metadata as m, json, re\n"
              "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
              "for d in m.distributions()}))")
    done = subprocess.run([str(venv.python), "-c", script], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VenvError(f"the {venv.engine} venv's python {venv.python} does not run: {done.stderr.strip()[-300:]}")
    installed: dict[str, str] = json.loads(done.stdout)
    wrong = [f"{name} {installed[name]} (pinned {version})" for name, version in venv.constraints.pins.items()
             if name in installed and installed[name] != version]
    absent = [req for req in venv.constraints.install if normalize(re.split(r"[\[=<>!~ ]", req)[0]) not in installed]
    if wrong or absent:
        raise VenvError(f"the {venv.engine} venv {venv.path} does not match {venv.constraints.path}: "
                        + ", ".join([*wrong, *(f"{a} not installed" for a in absent)])
                        + ". Remove the venv and run `secretary gpu setup` again.")


def ensure_venv(venv: EngineVenv, python: str = sys.executable, *, index_url: str | None = None,
                find_links: Path | None = None, dry_run: bool = False, out: TextIO = sys.stdout) -> bool:
    """Make or update ``venv`` to its constraint file. True if it did (or would) install, False if it was current."""
    commands = venv_commands(venv, python, index_url=index_url, find_links=find_links)
    if not commands:
        print(f"  {venv.engine} venv {venv.path}: current (stamp {venv.stamp.name} matches "
              f"{venv.constraints.path.name}), skipped", file=out)
        return False
    verb = "would run" if dry_run else "runs"
    print(f"  {venv.engine} venv {venv.path} ({venv.constraints.path.name}, {len(venv.constraints.pins)} pins) "
          f"{verb}:", file=out)
    for argv in commands:
        print(f"    $ {' '.join(argv)}", file=out)
    if index_url is None and os.environ.get("PIP_INDEX_URL"):
        print(f"    (pip's index: PIP_INDEX_URL={os.environ['PIP_INDEX_URL']})", file=out)
    print(f"    then writes {venv.stamp}", file=out)
    if dry_run:
        return True
    venv.stamp.unlink(missing_ok=True)  # from here on the venv is not current until pip has succeeded again
    for argv in commands:
        if argv[1:3] == ["-m", "venv"]:
            try:
                venv.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise VenvError(f"cannot create {venv.path.parent}: {exc.strerror or exc} (run as root?)") from None
            done = subprocess.run(argv, capture_output=True, text=True, check=False, umask=VENV_UMASK)
            if done.returncode != 0:
                raise VenvError(f"`{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()[-400:]}\n"
                                "  What to do: fix what it says (no venv module: apt-get install python3-venv; "
                                "not writable: run as root), then run `secretary gpu setup` again.")
        else:
            _run_pip(argv, venv, out)
    _check_pins(venv)
    temporary = venv.stamp.with_suffix(".tmp")
    temporary.write_text(f"{venv.constraints.digest}  {venv.constraints.path.name}\n")
    temporary.chmod(0o644)
    temporary.replace(venv.stamp)
    return True
