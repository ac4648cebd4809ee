"""Port discovery through a fake sysfs tree, and ModemManager detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.sim7600.ports import (
    PortsNotFoundError,
    check_modem_manager,
    find_sim7600_ports,
    resolve_modem_ports,
    scan_usb_tty_ports,
)


def usb_device(sysfs: Path, usb_path: str, vid: str, pid: str, interfaces: dict[int, str]) -> None:
    """A USB device with one tty per interface, linked from class/tty like the option driver does."""
    device = sysfs / "devices" / "pci0000:00" / "0000:00:14.0" / "usb1" / usb_path
    device.mkdir(parents=True)
    (device / "idVendor").write_text(vid + "\n")
    (device / "idProduct").write_text(pid + "\n")
    (device / "serial").write_text("0123456789ABCDEF\n")
    for number, tty_name in interfaces.items():
        interface = device / f"{usb_path}:1.{number}"
        port_dir = interface / tty_name
        (port_dir / "tty" / tty_name).mkdir(parents=True)
        (interface / "bInterfaceNumber").write_text(f"{number:02x}\n")
        entry = sysfs / "class" / "tty" / tty_name
        entry.mkdir(parents=True)
        (entry / "device").symlink_to(port_dir)


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    # An FTDI adapter grabbed ttyUSB0, so the modem starts at ttyUSB1: order must not matter.
    usb_device(root, "1-2", "0403", "6001", {0: "ttyUSB0"})
    usb_device(root, "1-3", "1e0e", "9001", {i: f"ttyUSB{i + 1}" for i in range(6)})
    serial8250 = root / "devices" / "platform" / "serial8250" / "tty" / "ttyS0"
    serial8250.mkdir(parents=True)
    (root / "class" / "tty" / "ttyS0").mkdir(parents=True)
    (root / "class" / "tty" / "ttyS0" / "device").symlink_to(serial8250)
    return root


def test_finds_at_and_audio_by_interface(sysfs: Path) -> None:
    ports = find_sim7600_ports(sysfs, Path("/dev"))
    assert (ports.at, ports.audio, ports.source, ports.usb_path) == ("/dev/ttyUSB3", "/dev/ttyUSB5", "sysfs", "1-3")
    scanned = {p.tty_name: p for p in scan_usb_tty_ports(sysfs)}
    assert "ttyS0" not in scanned and scanned["ttyUSB0"].vendor_id == "0403"
    assert scanned["ttyUSB3"].interface == 2


def test_other_composition_is_explained(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    usb_device(root, "1-1", "1e0e", "9011", {2: "ttyUSB0", 4: "ttyUSB1"})
    with pytest.raises(PortsNotFoundError, match="9011"):
        find_sim7600_ports(root)


def test_partial_device_and_nothing_at_all(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    usb_device(root, "1-1", "1e0e", "9001", {2: "ttyUSB0"})
    with pytest.raises(PortsNotFoundError, match="interface 4"):
        find_sim7600_ports(root)
    with pytest.raises(PortsNotFoundError, match="no SIM7600"):
        find_sim7600_ports(tmp_path / "empty")


def test_configured_paths_win(tmp_path: Path, sysfs: Path) -> None:
    at, audio = tmp_path / "at", tmp_path / "audio"
    at.touch()
    audio.touch()
    ports = resolve_modem_ports(str(at), str(audio), sysfs_root=sysfs)
    assert (ports.at, ports.source) == (str(at), "configured")
    mixed = resolve_modem_ports(str(at), "auto", sysfs_root=sysfs)
    assert (mixed.at, mixed.audio, mixed.source) == (str(at), "/dev/ttyUSB5", "mixed")
    with pytest.raises(PortsNotFoundError, match="do not exist"):
        resolve_modem_ports(str(tmp_path / "gone"), str(audio), sysfs_root=sysfs)


async def test_modem_manager_detection() -> None:
    async def active(argv: list[str], timeout_s: float) -> tuple[int, str]:
        assert argv == ["systemctl", "is-active", "ModemManager"]
        return 0, "active\n"

    async def inactive(argv: list[str], timeout_s: float) -> tuple[int, str]:
        return 3, "inactive"

    async def missing(argv: list[str], timeout_s: float) -> tuple[int, str]:
        raise FileNotFoundError("systemctl")

    async def hangs(argv: list[str], timeout_s: float) -> tuple[int, str]:
        raise TimeoutError

    running = await check_modem_manager(active)
    assert running.active is True and running.advice is not None and "ID_MM_DEVICE_IGNORE" in running.advice
    assert (await check_modem_manager(inactive)).active is False
    assert (await check_modem_manager(missing)).active is None
    assert (await check_modem_manager(hangs)).active is None


async def test_modem_manager_check_on_this_machine_never_raises() -> None:
    status = await check_modem_manager()
    assert status.active in (True, False, None) and status.detail
