"""engines.turn_end.smart_turn_wheel: Smart Turn v3's file and licence out of a wheel, sha256-checked, atomically."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engines.turn_end.smart_turn_wheel import (
    MODEL_SHA256,
    WHEEL_MEMBER,
    WheelError,
    licence_path,
    packaged_path,
    take_model,
)

REPO = Path(__file__).resolve().parents[2]
LICENCE = b"BSD 2-Clause License\n\nCopyright (c) 2024-2026, Daily\n"
DIST_INFO = "pipecat_ai-1.14.0.dist-info"


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def run_module(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engines.turn_end.smart_turn_wheel", *map(str, argv)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_the_right_file_and_its_licence_are_written_readable_and_nothing_else(tmp_path: Path) -> None:
    model = os.urandom(4096)
    wheel = make_wheel(tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl",
                       {WHEEL_MEMBER: model, f"{DIST_INFO}/licenses/LICENSE": LICENCE, "pipecat/__init__.py": b""})
    target = tmp_path / "venv" / "share" / "secretary" / "model.onnx"
    assert take_model(wheel, target, sha256=hashlib.sha256(model).hexdigest()) == target
    assert target.read_bytes() == model
    assert licence_path(target).read_bytes() == LICENCE
    assert files_under(target.parent) == ["model.onnx", "model.onnx.LICENSE"]  # no temporary file left
    for path in (target, licence_path(target)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the daemon's user reads what root wrote


def test_an_older_wheels_licence_place_is_taken_too(tmp_path: Path) -> None:
    model = b"onnx"
    wheel = make_wheel(tmp_path / "w.whl", {WHEEL_MEMBER: model, f"{DIST_INFO}/LICENSE": LICENCE})
    target = take_model(wheel, tmp_path / "m.onnx", sha256=hashlib.sha256(model).hexdigest())
    assert licence_path(target).read_bytes() == LICENCE


def test_a_different_file_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "pipecat_ai-9.9.9-py3-none-any.whl",
                       {WHEEL_MEMBER: b"not the pinned model", f"{DIST_INFO}/licenses/LICENSE": LICENCE})
    target = tmp_path / "share" / "model.onnx"
    result = run_module(wheel, target)  # the real pin
    assert result.returncode == 1
    assert "is not the pinned file" in result.stderr and MODEL_SHA256 in result.stderr
    assert "nothing written" in result.stderr
    assert not target.parent.exists()


def test_a_refused_wheel_leaves_an_earlier_model_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"earlier")
    licence_path(target).write_bytes(b"earlier licence")
    wheel = make_wheel(tmp_path / "w.whl", {WHEEL_MEMBER: b"other", f"{DIST_INFO}/licenses/LICENSE": LICENCE})
    with pytest.raises(WheelError, match="sha256"):
        take_model(wheel, target)
    assert target.read_bytes() == b"earlier" and licence_path(target).read_bytes() == b"earlier licence"
    assert files_under(tmp_path) == ["model.onnx", "model.onnx.LICENSE", "w.whl"]


def test_a_wheel_without_the_member_says_so(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl",
                       {"pipecat/audio/turn/smart_turn/data/smart-turn-v3.1.onnx": b"x",
                        f"{DIST_INFO}/licenses/LICENSE": LICENCE})
    result = run_module(wheel, tmp_path / "out" / "model.onnx")
    assert result.returncode == 1
    assert f"pipecat_ai-1.14.0-py3-none-any.whl has no {WHEEL_MEMBER}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_wheel_without_a_licence_or_not_a_zip_says_so(tmp_path: Path) -> None:
    model = b"onnx"
    bare = make_wheel(tmp_path / "bare.whl", {WHEEL_MEMBER: model})
    with pytest.raises(WheelError, match="bare.whl has no licence"):
        take_model(bare, tmp_path / "m.onnx", sha256=hashlib.sha256(model).hexdigest())
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    result = run_module(tmp_path / "broken.whl", tmp_path / "m.onnx")
    assert result.returncode == 1 and "cannot read the wheel" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_the_module_needs_only_the_standard_library() -> None:
    """build-rootfs and bootstrap run it before anything else of the box is known to import."""
    code = ("import sys, engines.turn_end.smart_turn_wheel; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'onnxruntime', 'pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(not packaged_path().is_file(),
                    reason=f"no turn-end model at {packaged_path()}: run scripts/bootstrap")
def test_the_installed_model_is_the_pinned_one_and_the_cli_takes_it(tmp_path: Path) -> None:
    """The model bootstrap installed, in a wheel of the real layout: the pin accepts it, default sha256 and all."""
    model = packaged_path().read_bytes()
    assert hashlib.sha256(model).hexdigest() == MODEL_SHA256
    wheel = make_wheel(tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl",
                       {WHEEL_MEMBER: model, f"{DIST_INFO}/licenses/LICENSE": LICENCE})
    target = tmp_path / "share" / "secretary" / packaged_path().name
    result = run_module(wheel, target)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == model and licence_path(target).read_bytes() == LICENCE
