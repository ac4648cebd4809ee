"""``secretary doctor``: checks what the box needs and says what is wrong.

Each check prints ``OK``, ``WARN`` or ``FAIL`` with a reason; the exit code
is non-zero when any check fails.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from daemon.systemd_units import BOX_UNITS, unit_states
from drivers.sim7600.ports import PortsNotFoundError, check_modem_manager, resolve_modem_ports

MIN_FREE_BYTES = 2 * 1024**3


@dataclass
class Check:
    name: str
    level: str  # OK | WARN | FAIL
    detail: str


async def _broker(loaded: LoadedConfig) -> Check:
    cfg = loaded.settings.mqtt
    try:
        async with aiomqtt.Client(
            cfg.host, cfg.port, username=cfg.username, password=loaded.secret(cfg.password_env),
            identifier=f"secretary-doctor-{os.getpid()}", timeout=3,
        ):
            return Check("broker", "OK", f"connected to {cfg.host}:{cfg.port}")
    except aiomqtt.MqttError as exc:
        return Check("broker", "FAIL", f"cannot connect to {cfg.host}:{cfg.port}: {exc}")


def _disk(data_dir: Path) -> Check:
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    writable = os.access(probe, os.W_OK)
    if not writable:
        return Check("disk", "FAIL", f"{probe} is not writable (data_dir {data_dir})")
    level = "OK" if usage.free >= MIN_FREE_BYTES else "WARN"
    return Check("disk", level, f"{usage.free / 1024**3:.1f} GiB free at {probe}")


def _gpu() -> Check:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Check("gpu", "WARN", "no NVIDIA driver (nvidia-smi not found): CPU engines only")
    return Check("gpu", "OK", f"NVIDIA driver present ({smi})")


async def _modem(loaded: LoadedConfig) -> list[Check]:
    cfg = loaded.settings.modem
    if cfg.driver == "simulator":
        return [Check("modem", "OK", "modem.driver is simulator (no hardware needed)")]
    checks: list[Check] = []
    try:
        ports = resolve_modem_ports(cfg.at_port, cfg.audio_port)
        checks.append(Check("ports", "OK", f"AT {ports.at}, audio {ports.audio} ({ports.source})"))
    except PortsNotFoundError as exc:
        checks.append(Check("ports", "FAIL", str(exc)))
    manager = await check_modem_manager()
    if manager.active:
        checks.append(Check("modemmgr", "FAIL", manager.advice or manager.detail))
    else:
        checks.append(Check("modemmgr", "OK" if manager.active is False else "WARN", manager.detail))
    return checks


async def _units() -> Check:
    """The box's systemd units, read over D-Bus (none on a machine without a system bus)."""
    states = await unit_states(list(BOX_UNITS))
    if all(state is None for state in states.values()):
        return Check("units", "WARN", "cannot read systemd unit states (no system D-Bus or no systemd here)")
    failed = [name for name, state in states.items() if state is not None and state.failed]
    parts = [f"{name.removesuffix('.service')} {state.describe() if state else 'unknown'}" for name, state in states.items()]
    return Check("units", "FAIL" if failed else "OK", "; ".join(parts))


def _mosquitto() -> Check:
    found = shutil.which("mosquitto") or (Path("/usr/sbin/mosquitto").exists() and "/usr/sbin/mosquitto")
    if not found:
        return Check("mosquitto", "WARN", "local broker not installed (apt-get install mosquitto)")
    return Check("mosquitto", "OK", str(found))


async def run_doctor(config_path: Path) -> int:
    checks: list[Check] = []
    try:
        loaded = load_config(config_path)
        checks.append(Check("config", "OK", str(config_path)))
    except ConfigError as exc:
        checks.append(Check("config", "FAIL", exc.render()))
        loaded = None
    checks.append(_mosquitto())
    checks.append(await _units())
    checks.append(_gpu())
    if loaded is not None:
        checks.append(_disk(loaded.settings.data_dir))
        checks.append(await _broker(loaded))
        checks.extend(await _modem(loaded))
    for check in checks:
        print(f"{check.level:<4} {check.name:<10} {check.detail}")
    return 1 if any(c.level == "FAIL" for c in checks) else 0
