"""Running secretaryd as a real child process in tests."""

from __future__ import annotations

import sys
from pathlib import Path


def secretaryd_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "daemon.main", "--config", str(config)]


def write_config(path: Path, broker_url: str, data_dir: Path, extra: str = "", box_id: str = "test-box") -> Path:
    path.write_text(
        f"box_id: {box_id}\n"
        f"data_dir: {data_dir}\n"
        "log:\n  level: debug\n  format: json\n"
        "modem:\n  driver: simulator\n"
        f"mqtt:\n  url: {broker_url}\n  keepalive_s: 5\n  reconnect_max_s: 0.5\n"
        "supervisor:\n  backoff_initial_s: 0.05\n  backoff_max_s: 0.5\n"
        + extra,
        encoding="utf-8",
    )
    return path
