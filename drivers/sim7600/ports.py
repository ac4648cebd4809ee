"""Finding the modem's AT and audio ttys, and spotting ModemManager.

Ports are matched by USB VID:PID and ``bInterfaceNumber`` through sysfs, never
by ttyUSB order (sim7600.md §1): on 1e0e:9001 interface 2 is the primary AT
port and interface 4 the PCM audio port.  The sysfs root is a parameter so
tests can build a fake tree.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SIMCOM_VID: Final = "1e0e"
SIM7600_PID: Final = "9001"
AT_INTERFACE: Final = 2
AUDIO_INTERFACE: Final = 4
AUTO: Final = "auto"
#: Compositions that exist but carry no PCM audio port for this driver.
OTHER_SIMCOM_PIDS: Final = {"9011": "RNDIS/ECM composition (AT on interface 4, no PCM audio port)"}

_MAX_ANCESTORS: Final = 8


@dataclass(frozen=True, slots=True)
class UsbTtyPort:
    device: Path  # /dev/ttyUSB2
    tty_name: str
    vendor_id: str
    product_id: str
    interface: int
    usb_path: str  # sysfs name of the USB device, e.g. "1-1.3"
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class ModemPorts:
    at: str
    audio: str
    source: str  # "configured" | "sysfs" | "mixed"
    usb_path: str | None = None


class PortsNotFoundError(LookupError):
    """No usable modem ports; the message says why and what to do."""


def _read_attr(directory: Path, name: str) -> str | None:
    try:
        return (directory / name).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _usb_ancestry(device_dir: Path) -> tuple[Path, Path] | None:
    """(interface dir, USB device dir) above a tty's sysfs device dir."""
    interface_dir: Path | None = None
    current = device_dir
    for _ in range(_MAX_ANCESTORS):
        if interface_dir is None and (current / "bInterfaceNumber").is_file():
            interface_dir = current
        elif interface_dir is not None and (current / "idVendor").is_file():
            return interface_dir, current
        if current.parent == current:
            break
        current = current.parent
    return None


def scan_usb_tty_ports(sysfs_root: Path = Path("/sys"), dev_root: Path = Path("/dev")) -> list[UsbTtyPort]:
    """Every tty under ``<sysfs_root>/class/tty`` that hangs off a USB interface."""
    tty_class = sysfs_root / "class" / "tty"
    try:
        entries = sorted(tty_class.iterdir())
    except OSError:
        return []
    found: list[UsbTtyPort] = []
    for entry in entries:
        device_link = entry / "device"
        if not device_link.exists():
            continue
        try:
            device_dir = device_link.resolve(strict=True)
        except OSError:
            continue
        ancestry = _usb_ancestry(device_dir)
        if ancestry is None:
            continue
        interface_dir, usb_dir = ancestry
        interface_text = _read_attr(interface_dir, "bInterfaceNumber")
        vendor = _read_attr(usb_dir, "idVendor")
        product = _read_attr(usb_dir, "idProduct")
        if interface_text is None or vendor is None or product is None:
            continue
        try:
            interface = int(interface_text, 16)
        except ValueError:
            continue
        found.append(
            UsbTtyPort(
                device=dev_root / entry.name,
                tty_name=entry.name,
                vendor_id=vendor.lower(),
                product_id=product.lower(),
                interface=interface,
                usb_path=usb_dir.name,
                serial_number=_read_attr(usb_dir, "serial"),
            )
        )
    return found


def find_sim7600_ports(sysfs_root: Path = Path("/sys"), dev_root: Path = Path("/dev")) -> ModemPorts:
    """AT (if02) and audio (if04) ports of the first 1e0e:9001 device, or an explanation."""
    ports = scan_usb_tty_ports(sysfs_root, dev_root)
    simcom = [p for p in ports if p.vendor_id == SIMCOM_VID]
    by_device: dict[str, dict[int, UsbTtyPort]] = {}
    for port in simcom:
        if port.product_id == SIM7600_PID:
            by_device.setdefault(port.usb_path, {})[port.interface] = port
    complete = sorted(
        (usb_path, interfaces)
        for usb_path, interfaces in by_device.items()
        if AT_INTERFACE in interfaces and AUDIO_INTERFACE in interfaces
    )
    if complete:
        usb_path, interfaces = complete[0]
        if len(complete) > 1:
            log.warning(
                "%d SIM7600 modems found (%s); using the one at USB %s",
                len(complete),
                ", ".join(path for path, _ in complete),
                usb_path,
            )
        return ModemPorts(
            at=str(interfaces[AT_INTERFACE].device),
            audio=str(interfaces[AUDIO_INTERFACE].device),
            source="sysfs",
            usb_path=usb_path,
        )
    raise PortsNotFoundError(_explain_missing(simcom, by_device))


def _explain_missing(simcom: list[UsbTtyPort], by_device: dict[str, dict[int, UsbTtyPort]]) -> str:
    if by_device:
        usb_path, interfaces = sorted(by_device.items())[0]
        have = ", ".join(f"if{n:02d}={p.device}" for n, p in sorted(interfaces.items()))
        return (
            f"SIM7600 (1e0e:9001) at USB {usb_path} shows only {have}; the AT port (interface 2) and the "
            "audio port (interface 4) are both needed. The option driver may not have bound every "
            "interface yet (wait a few seconds after plug-in) or the kernel lacks the option module."
        )
    others = sorted({p.product_id for p in simcom})
    if others:
        described = "; ".join(f"1e0e:{pid} ({OTHER_SIMCOM_PIDS.get(pid, 'unknown composition')})" for pid in others)
        return (
            f"a SimCom device is present as {described}, not in the 1e0e:9001 composition this driver uses "
            "for voice. Switch the module back to PID 9001 (SIMCom AT manual, USB PID switch command) "
            "or set modem.at_port and modem.audio_port explicitly."
        )
    return (
        "no SIM7600 modem (USB 1e0e:9001) found: check that it is plugged in and powered (lsusb should list "
        "1e0e:9001) or set modem.at_port and modem.audio_port to the device paths."
    )


def resolve_modem_ports(
    at_port: str = AUTO,
    audio_port: str = AUTO,
    *,
    sysfs_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
) -> ModemPorts:
    """Configured paths win; ``auto`` (either or both) comes from sysfs."""
    at_auto = at_port.strip().lower() == AUTO
    audio_auto = audio_port.strip().lower() == AUTO
    if not at_auto and not audio_auto:
        missing = [path for path in (at_port, audio_port) if not os.path.exists(path)]
        if missing:
            raise PortsNotFoundError(f"configured modem port(s) {', '.join(missing)} do not exist (modem unplugged?)")
        return ModemPorts(at=at_port, audio=audio_port, source="configured")
    found = find_sim7600_ports(sysfs_root, dev_root)
    if at_auto and audio_auto:
        return found
    configured = audio_port if at_auto else at_port
    if not os.path.exists(configured):
        raise PortsNotFoundError(f"configured modem port {configured} does not exist (modem unplugged?)")
    at = found.at if at_auto else at_port
    audio = found.audio if audio_auto else audio_port
    return ModemPorts(at=at, audio=audio, source="mixed", usb_path=found.usb_path)


# ------------------------------------------------------------ ModemManager


@dataclass(frozen=True, slots=True)
class ModemManagerStatus:
    active: bool | None  # None: could not tell
    detail: str
    advice: str | None = None


MODEM_MANAGER_ADVICE: Final = (
    "ModemManager is running. Its simtech plugin claims SIM7600 modems (1e0e:9001), probes the AT ports "
    "and sends its own commands (AT+CLCC=1, AT+CPCMREG...), so it competes with secretaryd for the modem. "
    'Keep it off this modem: install the udev rule that sets ENV{ID_MM_DEVICE_IGNORE}="1" for '
    'ATTRS{idVendor}=="1e0e", ATTRS{idProduct}=="9001" (then `udevadm control --reload` and replug), '
    "or stop it: `systemctl disable --now ModemManager`."
)

CommandRunner = Callable[[list[str], float], Awaitable[tuple[int, str]]]


async def run_command(argv: list[str], timeout_s: float) -> tuple[int, str]:
    """Run a short command off the loop; returns (exit status, stdout)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(timeout_s):
            stdout, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode if process.returncode is not None else -1, stdout.decode(errors="replace").strip()


async def check_modem_manager(runner: CommandRunner | None = None, timeout_s: float = 2.0) -> ModemManagerStatus:
    """Best effort ``systemctl is-active ModemManager``."""
    if runner is None:
        if shutil.which("systemctl") is None:
            return ModemManagerStatus(None, "systemctl not found; cannot tell whether ModemManager runs")
        runner = run_command
    try:
        status, output = await runner(["systemctl", "is-active", "ModemManager"], timeout_s)
    except FileNotFoundError:
        return ModemManagerStatus(None, "systemctl not found; cannot tell whether ModemManager runs")
    except TimeoutError:
        return ModemManagerStatus(None, f"systemctl did not answer within {timeout_s:g} s")
    except OSError as exc:
        return ModemManagerStatus(None, f"systemctl failed: {exc}")
    state = output.splitlines()[0].strip() if output else ""
    if status == 0 and state in ("active", "activating", "reloading"):
        return ModemManagerStatus(True, f"ModemManager is {state}", MODEM_MANAGER_ADVICE)
    if state in ("inactive", "failed", "unknown", "dead") or (status != 0 and state):
        return ModemManagerStatus(False, f"ModemManager is {state or 'not running'}")
    return ModemManagerStatus(None, f"systemctl said {state!r} (exit {status}); ModemManager state unknown")


__all__ = [
    "AT_INTERFACE",
    "AUDIO_INTERFACE",
    "AUTO",
    "MODEM_MANAGER_ADVICE",
    "SIM7600_PID",
    "SIMCOM_VID",
    "CommandRunner",
    "ModemManagerStatus",
    "ModemPorts",
    "PortsNotFoundError",
    "UsbTtyPort",
    "check_modem_manager",
    "find_sim7600_ports",
    "resolve_modem_ports",
    "run_command",
    "scan_usb_tty_ports",
]
