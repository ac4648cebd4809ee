"""``secretary doctor``: checks what the box needs and says what is wrong.

Each check prints ``OK``, ``WARN`` or ``FAIL`` with a reason; the exit code
is non-zero when any check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from channels.bus_contract.box_payloads import BoxStatus, ServiceState
from channels.bus_contract.clients import CLI, ROLES, bus_login
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.modem_payloads import ModemState
from channels.bus_contract.topics import DOCTOR_TOPICS, MODEM_STATE, RECORDER_STATE, STATUS, Topics
from channels.peer_json import BadJson, parse_peer_json
from config.engines_schema import EnginesConfig, VllmConfig
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from daemon.engine_host.model_files import model_checks
from daemon.gpu.nvml_probe import GpuInfo, NvmlUnavailable, probe_gpus
from daemon.gpu.vram_budget import configured_budget
from daemon.runtime.system_dbus import close_bus, connect_bus, get_property
from daemon.runtime.systemd_units import BOX_UNITS, unit_states
from daemon.web.auth import PasswordStore
from daemon.web.transport.certificate import RENEW_BEFORE_DAYS, CertificateError, read_certificate
from daemon.web.web_service import password_path
from drivers.sim7600.ports import PortsNotFoundError, check_modem_manager, resolve_modem_ports

MIN_FREE_BYTES = 2 * 1024**3
EARLIEST_PLAUSIBLE_YEAR = 2025
WEAK_SIGNAL_DBM = -100
RETAINED_WAIT_S = 1.0
SIM_ADVICE = {  # drivers.sim7600.parsers.SimStatus values
    "pin_required": "the SIM wants its PIN: put it in the env var named by modem.pin_env",
    "puk_required": "the SIM is PUK-locked (wrong PIN too often): unlock it in a phone with the PUK",
    "locked": "the SIM or modem is network-locked (PH-SIM): use an unlocked SIM",
    "absent": "no SIM: power the box off and insert one",
}


@dataclass
class Check:
    name: str
    level: str  # OK | WARN | FAIL
    detail: str


async def _broker(loaded: LoadedConfig) -> tuple[Check, dict[str, Any] | None]:
    """Connect to the box's broker and read the daemon's retained state (``status``, ``modem/state``)."""
    cfg = loaded.settings.mqtt
    topics = Topics(cfg.topic_prefix, loaded.settings.box_id)
    state: dict[str, Any] = {}
    login = bus_login(cfg, CLI, loaded.secret)
    try:
        async with aiomqtt.Client(
            cfg.host, cfg.port, username=login.username, password=login.password,
            identifier=f"secretary-doctor-{os.getpid()}", timeout=3,
            tls_context=ssl.create_default_context() if cfg.tls else None,
        ) as client:
            for suffix in DOCTOR_TOPICS:
                await client.subscribe(topics(suffix))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETAINED_WAIT_S):
                    async for message in client.messages:
                        raw = message.payload if isinstance(message.payload, bytes) else b""
                        suffix = topics.suffix(str(message.topic)) or ""
                        with contextlib.suppress(BadJson, UnicodeDecodeError):
                            state[suffix] = parse_peer_json(raw) if suffix != STATUS else raw.decode()
                        if set(DOCTOR_TOPICS) <= state.keys():
                            break
            return Check("broker", "OK", f"connected to {cfg.host}:{cfg.port}"), state
    except aiomqtt.MqttError as exc:
        return Check("broker", "FAIL", f"cannot connect to {cfg.host}:{cfg.port}: {exc}"), None


async def _broker_access(loaded: LoadedConfig) -> list[Check]:
    """The broker's posture: an anonymous client must be refused, and each client should log in as its own user."""
    cfg = loaded.settings.mqtt
    try:
        async with aiomqtt.Client(cfg.host, cfg.port, identifier=f"secretary-doctor-anon-{os.getpid()}", timeout=3,
                                  tls_context=ssl.create_default_context() if cfg.tls else None):
            anonymous = Check("anonymous", "FAIL", f"{cfg.host}:{cfg.port} lets anyone in without a password, so any "
                                                   "local process can dial, send SMS, delete calls and read codes: "
                                                   "set `allow_anonymous false` (docs/security.md)")
    except aiomqtt.MqttError as exc:
        anonymous = Check("anonymous", "OK", f"an anonymous client is refused ({str(exc) or 'not authorized'})")
    if cfg.credentials_file is None:
        users = Check("mqtt users", "WARN", "every client logs in as mqtt.username: on the box's own broker, give "
                                            "each its user with `secretary mqtt users` and mqtt.credentials_file")
    else:
        missing = [role.name for role in ROLES if not loaded.secret(role.password_env)]
        users = (Check("mqtt users", "FAIL", f"{cfg.credentials_file} has no password for {', '.join(missing)}: "
                                             "run `secretary mqtt users` again") if missing
                 else Check("mqtt users", "OK", f"each client logs in as its own user ({cfg.credentials_file})"))
    return [anonymous, users]


def _daemon_online(state: dict[str, Any] | None) -> bool:
    """Whether the daemon's retained ``status`` says online."""
    try:
        return state is not None and BoxStatus.decode(state.get(STATUS)).online
    except PayloadError:
        return False


def _live_modem(state: dict[str, Any] | None) -> list[Check]:
    """What the running daemon reports about its modem (it owns the ports, so doctor asks it, not the modem)."""
    if state is None:
        return []
    if not _daemon_online(state):
        return [Check("daemon", "WARN", "secretaryd is not running (no 'online' status on the broker): "
                                        "start it to check the SIM, registration and signal")]
    try:
        modem = ModemState.decode(state.get(MODEM_STATE))
    except PayloadError:
        return [Check("daemon", "WARN", "secretaryd is online but has not reported its modem yet")]
    checks = [Check("daemon", "OK", "secretaryd is online")]
    sim = modem.sim
    if sim == "ready":
        checks.append(Check("sim", "OK", "SIM ready"))
    elif sim in SIM_ADVICE:
        checks.append(Check("sim", "FAIL", SIM_ADVICE[sim]))
    else:
        checks.append(Check("sim", "FAIL", f"SIM state {sim!r}: insert a SIM (power off first) or check it in a phone"))
    if modem.registered:
        checks.append(Check("network", "OK", f"registered on {modem.operator or 'the network'}"))
    else:
        checks.append(Check("network", "FAIL", "not registered: check the antenna, the SIM's plan and coverage"))
    signal = modem.signal_dbm
    if signal is not None:
        level = "OK" if signal >= WEAK_SIGNAL_DBM else "WARN"
        hint = "" if level == "OK" else ": weak, calls may break up (move the antenna, use an external one)"
        checks.append(Check("signal", level, f"{signal} dBm{hint}"))
    else:
        checks.append(Check("signal", "WARN", "no signal reading yet"))
    return checks


def _recording(state: dict[str, Any] | None) -> list[Check]:
    """What the running daemon's recorder says (``services/recorder/state``): can calls be recorded, disk space."""
    if state is None or not _daemon_online(state) or RECORDER_STATE not in state:
        return []
    try:
        report = ServiceState.decode(state[RECORDER_STATE])
    except PayloadError as exc:
        return [Check("recording", "WARN", f"unreadable {RECORDER_STATE}: {exc}")]
    detail = report.detail or report.state
    if report.state == "running":
        return [Check("recording", "OK", detail)]
    if report.state == "degraded":
        return [Check("recording", "FAIL", f"{detail} (free space under data_dir, or lower call.retention_days; "
                                           "call.min_free_mb sets how much retention keeps free)")]
    return [Check("recording", "WARN", f"the recorder is {report.state}: {detail}")]


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


def gpu_needs(engines: EnginesConfig) -> dict[str, float | None]:
    """The configured engines that run on the GPU, with the share of its memory each may take (None: unknown)."""
    needs: dict[str, float | None] = {}
    for name in engines.llm.chain:
        backend = engines.llm.backends.get(name)
        if isinstance(backend, VllmConfig):
            needs[f"llm/{name} (vLLM)"] = backend.gpu_memory_utilization
    if "xtts" in engines.tts.chain and engines.tts.xtts.device.startswith("cuda"):
        needs["tts/xtts"] = engines.tts.xtts.gpu_memory_fraction
    if "faster-whisper" in engines.stt.chain and engines.stt.faster_whisper.device == "cuda":
        needs["stt/faster-whisper"] = None
    return needs


def _gpu(engines: EnginesConfig, probe: Callable[[], list[GpuInfo]] = probe_gpus) -> list[Check]:
    """The card (NVML) and the VRAM budget of the configured engines against its real memory, one line each."""
    needs = gpu_needs(engines)
    try:
        gpus = probe()
    except NvmlUnavailable as exc:
        if needs:
            return [Check("gpu", "FAIL", f"{', '.join(needs)} need an NVIDIA GPU, and there is no usable driver "
                                         f"(or take them out of the chains): {exc}")]
        return [Check("gpu", "OK", "no NVIDIA driver; the configured engines run on the CPU")]
    gpu = gpus[0]  # the engines run on the first card (cuda, CUDA_VISIBLE_DEVICES unset)
    card = (f"{gpu.name}, {gpu.total_mib} MiB ({gpu.free_mib} MiB free), driver {gpu.driver_version}, "
            f"CUDA {gpu.cuda_text}" + (f" (GPU 0 of {len(gpus)})" if len(gpus) > 1 else ""))
    budget = configured_budget(engines, gpu.total_mib)
    if len(budget.consumers) <= 2:  # the driver's share and the margin: nothing of ours on the card
        return [Check("gpu", "OK", f"{card}: no GPU engines configured")]
    table = [Check("vram", "OK", line) for line in budget.lines(free_mib=gpu.free_mib)]
    if budget.fits:
        return [Check("gpu", "OK", f"{card}: the configured engines fit ({budget.planned_mib} MiB planned)"), *table]
    over = (f"{budget.planned_mib} MiB planned, {-budget.spare_mib} MiB more than the card has: lower "
            "gpu_memory_utilization / gpu_memory_fraction, or take an engine off the GPU; "
            if budget.spare_mib < 0 else "")
    return [Check("gpu", "FAIL", f"{card}: the configured engines do not fit: {over}{'; '.join(budget.problems)}"
                                 f"{'; ' if budget.problems else ''}`secretary gpu setup` writes figures that fit"),
            *table]


def _llama_cpu() -> Check:
    """The CPU's features against the instructions the installed llama.cpp build uses (a SIGILL otherwise)."""
    from engines.llm.llama_cpu_build import check_cpu

    return Check("llama cpu", *check_cpu())


def _models(loaded: LoadedConfig) -> list[Check]:
    cfg = loaded.settings
    return [Check("model", "OK" if m.ok else "FAIL" if m.required else "WARN", f"{m.engine}: {m.detail}")
            for m in model_checks(cfg.engines, cfg.data_dir, turn_end=cfg.call.turn_end.enabled)]


async def _clock() -> Check:
    """A wrong clock breaks TLS (mqtts, cloud LLMs, Telegram) and dates every call record."""
    year = time.gmtime().tm_year
    if year < EARLIEST_PLAUSIBLE_YEAR:
        return Check("clock", "FAIL", f"the clock says {time.strftime('%Y-%m-%d %H:%M')}: set it, and turn on NTP "
                                      "(timedatectl set-ntp true)")
    synced = await ntp_synchronized()
    if synced is None:
        return Check("clock", "OK", f"{time.strftime('%Y-%m-%d %H:%M %Z')} (NTP state unknown: no timedated on D-Bus)")
    if not synced:
        return Check("clock", "WARN", f"{time.strftime('%Y-%m-%d %H:%M %Z')}, not synchronized by NTP "
                                      "(timedatectl set-ntp true)")
    return Check("clock", "OK", f"{time.strftime('%Y-%m-%d %H:%M %Z')}, NTP synchronized")


async def ntp_synchronized(timeout_s: float = 2.0) -> bool | None:
    """systemd-timedated's NTPSynchronized over the system bus; None when it cannot be asked."""
    connection = await connect_bus(timeout_s=timeout_s)
    if connection.bus is None:
        return None
    try:
        value = await get_property(connection.bus, "org.freedesktop.timedate1", "/org/freedesktop/timedate1",
                                   "org.freedesktop.timedate1", "NTPSynchronized", timeout_s=timeout_s)
        return bool(value)
    except Exception:  # noqa: BLE001 - no timedated, policy, timeout: unknown
        return None
    finally:
        await close_bus(connection.bus)


async def _modem(loaded: LoadedConfig, daemon_online: bool = False) -> list[Check]:
    cfg = loaded.settings.modem
    if cfg.driver == "simulator":
        return [Check("modem", "OK", "modem.driver is simulator (no hardware needed)")]
    checks: list[Check] = []
    try:
        ports = resolve_modem_ports(cfg.at_port, cfg.audio_port)
        usb = f", USB {ports.usb_path}" if ports.usb_path else ""
        checks.append(Check("ports", "OK", f"AT {ports.at}, audio {ports.audio} ({ports.source}{usb})"))
        if not daemon_online:  # the daemon holds them while it runs
            checks.extend(_port_access("at port", ports.at))
            checks.extend(_port_access("audio port", ports.audio))
    except PortsNotFoundError as exc:
        checks.append(Check("ports", "FAIL", str(exc)))
    manager = await check_modem_manager()
    if manager.active:
        checks.append(Check("modemmgr", "FAIL", manager.advice or manager.detail))
    else:
        checks.append(Check("modemmgr", "OK" if manager.active is False else "WARN", manager.detail))
    return checks


def _port_access(name: str, path: str) -> list[Check]:
    """The port opens read-write for this user and nobody else holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        return [Check(name, "FAIL", f"{path}: permission denied; the daemon's user must be in group dialout "
                                    "(the udev rule sets it)")]
    except OSError as exc:
        return [Check(name, "FAIL", f"{path}: {exc.strerror}")]
    os.close(fd)
    holders = _holders(path)
    if holders:
        return [Check(name, "FAIL", f"{path} is open in {', '.join(holders)}: stop it (ModemManager? a terminal?)")]
    return [Check(name, "OK", f"{path} opens, nobody else holds it")]


def _holders(path: str) -> list[str]:
    """Processes with ``path`` open (best effort: only those this user may inspect)."""
    target = os.path.realpath(path)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.path.realpath(f"/proc/{pid}/fd/{fd}") == target:
                    with contextlib.suppress(OSError):
                        name = Path(f"/proc/{pid}/comm").read_text().strip()
                        found.append(f"{name} (pid {pid})")
                    break
    return found


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


def _web_posture(loaded: LoadedConfig) -> list[Check]:
    """The web page's security: HTTPS and its certificate, and whether the password is still the generated one."""
    cfg = loaded.settings
    web = cfg.web
    if not web.enabled:
        return [Check("web", "OK", "the web page is off (web.enabled: false)")]
    cert_path, _ = web.tls_files(cfg.data_dir)
    if not web.tls_enabled:
        tls = Check("web tls", "OK", f"plain HTTP on {web.listen}, this machine only (web.tls.mode {web.tls.mode})")
    else:
        try:
            info = read_certificate(cert_path)
        except CertificateError as exc:
            own = web.tls.cert_file is None  # the daemon makes its own at start; an owner's file must be there
            tls = Check("web tls", "WARN" if own else "FAIL",
                        f"HTTPS on {web.listen}, but {exc}" + (": secretaryd makes it when it starts" if own else ""))
        else:
            days = info.days_left()
            level = "FAIL" if days < 0 else "WARN" if days < RENEW_BEFORE_DAYS else "OK"
            hint = ": upload a new one in the page's Security tab" if level != "OK" and not info.self_signed else ""
            tls = Check("web tls", level, f"HTTPS on {web.listen}; {'self-signed' if info.self_signed else info.subject} "
                                          f"certificate, SHA-256 {info.fingerprint}, valid until "
                                          f"{info.not_after:%Y-%m-%d} ({int(days)} days){hint}")
    path = password_path(cfg.data_dir)
    if path.exists() and not os.access(path, os.R_OK):
        password = Check("web login", "WARN", f"cannot read {path}: run doctor as root or the daemon's user")
    else:
        generated = PasswordStore(path).generated
        if generated is None:
            password = Check("web login", "WARN", "no web password yet (secretaryd makes one at its first start): "
                                                  "set your own with `secretary web password`")
        elif generated:
            password = Check("web login", "WARN", "the web password is still the one generated at first boot: "
                                                  "set your own with `secretary web password`")
        else:
            password = Check("web login", "OK", "the web password was set by the owner")
    return [tls, password]


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
    checks.append(await _clock())
    checks.append(_llama_cpu())
    if loaded is not None:
        checks.extend(_gpu(loaded.settings.engines))
        checks.extend(_models(loaded))
        checks.append(_disk(loaded.settings.data_dir))
        checks.extend(_web_posture(loaded))
        if loaded.settings.channels.remote.cleartext_warning:
            checks.append(Check("remote", "WARN", loaded.settings.channels.remote.cleartext_warning))
        broker, state = await _broker(loaded)
        checks.append(broker)
        checks.extend(await _broker_access(loaded) if state is not None else [])
        checks.extend(await _modem(loaded, daemon_online=_daemon_online(state)))
        if loaded.settings.modem.driver == "sim7600":
            checks.extend(_live_modem(state))
        checks.extend(_recording(state))
    for check in checks:
        print(f"{check.level:<4} {check.name:<10} {check.detail}")
    return 1 if any(c.level == "FAIL" for c in checks) else 0
