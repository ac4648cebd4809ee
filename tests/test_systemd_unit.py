"""The unit file matches what the daemon does: notify protocol, watchdog, reload by SIGHUP."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "secretaryd.service"


def test_unit_declares_notify_watchdog_and_reload() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    service = parser["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert "-HUP" in service["ExecReload"]
    assert "secretaryd --config" in service["ExecStart"]
    # SIGTERM must end the daemon well within systemd's stop timeout (the daemon's budget is 5 s).
    assert int(service["TimeoutStopSec"]) > 5
