"""Channels run as their own processes: ``python -m channels.<name> --config PATH`` says why it has nothing to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(module: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, "--config", str(config)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("module, reason", [
    ("channels.telegram", "channels.telegram.bots is empty; nothing to run"),
    ("channels.widget", "channels.widget.widgets is empty; nothing to serve"),
])
def test_a_channel_with_nothing_configured_says_so(module: str, reason: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"box_id: b\ndata_dir: {tmp_path}\n")
    result = _run(module, config)
    assert result.returncode == 2 and f"{config}: {reason}" in result.stdout


def test_a_broken_config_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("box_id: b\nchannels: {widget: {listen: nowhere}}\n")
    result = _run("channels.widget", config)
    assert result.returncode == 2 and "channels.widget.listen: must be host:port" in result.stdout
