"""The unit file matches what the daemon does: notify protocol, watchdog, reload by SIGHUP."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


SYSTEMD_DIR = UNIT.parent


def _verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on a copy whose ExecStart points at this checkout's own console scripts."""
    venv_bin = Path(sys.executable).parent
    text = unit.read_text().replace("/opt/secretary/.venv/bin/", f"{venv_bin}/")
    copy = tmp_path / unit.name
    copy.write_text(text)
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", ["secretaryd.service", "secretary-vllm.service"])
def test_systemd_analyze_verify_passes(name: str, tmp_path: Path) -> None:
    result = _verify(SYSTEMD_DIR / name, tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "Unknown section 'Install'" not in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def _service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD_DIR / name)
    return parser["Service"]


def test_the_daemon_is_confined_and_rate_limited() -> None:
    service = _service("secretaryd.service")
    assert service["User"] == "secretary" and "dialout" in service["SupplementaryGroups"].split()
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/secretary"
    assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""  # LimitRTPRIO is enough for the opt-in SCHED_FIFO
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    unit = parser["Unit"]
    assert int(unit["StartLimitBurst"]) >= 3 and int(unit["StartLimitIntervalSec"]) >= 60
    assert "mosquitto.service" in unit["After"] and "dev-sim7600\\x2dat.device" in unit["After"]


def test_the_vllm_unit_runs_the_command_the_config_describes(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "box_id: b\n"
        f"data_dir: {tmp_path}\n"
        "engines:\n  llm:\n    chain: [gpu]\n    backends:\n      gpu:\n        kind: vllm\n        executable: /opt/vllm/bin/vllm\n"
        "        lora_adapters: {lidia: adapters/lidia}\n"
    )
    printed = subprocess.run([sys.executable, "-m", "daemon.cli", "vllm", "serve", "--config", str(config), "--print"],
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    argv = printed.stdout.split()
    assert argv[:2] == ["/opt/vllm/bin/vllm", "serve"] and argv[argv.index("--port") + 1] == "8000"
    assert "--enable-lora" in argv and any(a.startswith("lidia=") and a.endswith("adapters/lidia") for a in argv)
    assert "secretary vllm serve --config" in _service("secretary-vllm.service")["ExecStart"]


def test_the_modemmanager_policy_lets_only_the_daemon_inhibit() -> None:
    import xml.etree.ElementTree as ET

    tree = ET.parse(SYSTEMD_DIR / "secretary-modemmanager.conf")
    policies = tree.getroot().findall("policy")
    assert [p.get("user") for p in policies] == ["secretary"]
    allowed = {(a.get("send_interface"), a.get("send_member")) for a in policies[0].findall("allow")}
    assert ("org.freedesktop.ModemManager1", "InhibitDevice") in allowed
    assert all(a.get("send_destination") == "org.freedesktop.ModemManager1" for a in policies[0].findall("allow"))
    rules = (SYSTEMD_DIR / "secretary-modemmanager.rules").read_text()
    assert '"org.freedesktop.ModemManager1.Control"' in rules and 'subject.user == "secretary"' in rules
