"""The SIM7600 udev rules, parsed and run against the device properties the kernel and usb_id really give.

There is no modem here for ``udevadm test``, so the rules are checked two ways:
every line must be valid udev syntax with known keys, and a small evaluator
of that syntax (match/assign/GOTO/LABEL, ``IMPORT{builtin}="usb_id"``) runs
them on the uevents a SIM7600G-H produces (USB device 1e0e:9001, tty nodes
on interfaces 00..04) and on other devices. The property names the rules
rely on are the ones Debian's own udev rules use for the same purpose.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parent.parent / "udev" / "99-secretary-sim7600.rules"
PAIR = re.compile(r'\s*([A-Z_]+(?:\{[A-Za-z0-9_]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "DRIVERS", "ENV", "ATTR", "ATTRS", "TAG", "DEVPATH"}
ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE", "OWNER", "TAG", "ENV", "GOTO", "LABEL", "IMPORT", "RUN"}


def parse(text: str) -> list[list[tuple[str, str, str]]]:
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs, pos = [], 0
        while pos < len(line):
            found = PAIR.match(line, pos)
            assert found, f"line {number}: not udev syntax at {line[pos:]!r}"
            key, op, value = found.groups()
            base = key.split("{")[0]
            assert base in MATCH_KEYS | ASSIGN_KEYS, f"line {number}: unknown key {key}"
            if op in ("==", "!="):
                assert base in MATCH_KEYS, f"line {number}: {key} cannot be matched"
            else:
                assert base in ASSIGN_KEYS, f"line {number}: {key} cannot be assigned"
            pairs.append((key, op, value))
            pos = found.end()
        rules.append(pairs)
    return rules


@dataclass
class Device:
    """One uevent: its own properties and sysfs attributes, and those of its USB ancestors."""

    action: str
    subsystem: str
    env: dict[str, str]
    attrs: dict[str, str] = field(default_factory=dict)
    usb: dict[str, str] = field(default_factory=dict)  # what usb_id reads from the parents
    symlinks: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    group: str | None = None
    mode: str | None = None


def _usb_id(device: Device) -> None:
    """What systemd's usb_id builtin sets for a tty on a USB interface (udev-builtin-usb_id.c)."""
    if device.usb:
        device.env.update({"ID_VENDOR_ID": device.usb["idVendor"], "ID_MODEL_ID": device.usb["idProduct"],
                           "ID_USB_INTERFACE_NUM": device.usb["bInterfaceNumber"], "ID_BUS": "usb"})


def run(rules: list[list[tuple[str, str, str]]], device: Device) -> Device:
    labels = {pairs[0][2]: i for i, pairs in enumerate(rules) if pairs[0][0] == "LABEL"}
    i = 0
    while i < len(rules):
        pairs = rules[i]
        i += 1
        value_of = {"ACTION": device.action, "SUBSYSTEM": device.subsystem}

        def matches(key: str, pattern: str) -> bool:
            if key.startswith("ENV{"):
                actual = device.env.get(key[4:-1], "")
            elif key.startswith("ATTR{"):
                actual = device.attrs.get(key[5:-1], "")
            else:
                actual = value_of.get(key, "")
            return fnmatch.fnmatchcase(actual, pattern)

        if not all(matches(k, v) == (op == "==") for k, op, v in pairs if op in ("==", "!=")):
            continue
        for key, op, value in pairs:
            if op in ("==", "!="):
                continue
            if key == "GOTO":
                i = labels[value] + 1
                break
            if key == "IMPORT{builtin}" and value == "usb_id":
                _usb_id(device)
            elif key.startswith("ENV{"):
                name = key[4:-1]
                device.env[name] = (device.env.get(name, "") + " " + value).strip() if op == "+=" else value
            elif key == "SYMLINK":
                device.symlinks.append(value)
            elif key == "TAG":
                device.tags.append(value)
            elif key == "GROUP":
                device.group = value
            elif key == "MODE":
                device.mode = value
    return device


def sim7600_tty(interface: str, action: str = "add", product: str = "9001") -> Device:
    return Device(action, "tty", {"DEVNAME": f"/dev/ttyUSB{int(interface)}"},
                  usb={"idVendor": "1e0e", "idProduct": product, "bInterfaceNumber": interface})


@pytest.fixture(scope="module")
def rules() -> list[list[tuple[str, str, str]]]:
    return parse(RULES.read_text())


def test_every_line_is_udev_syntax_and_every_goto_has_its_label(rules: list[list[tuple[str, str, str]]]) -> None:
    labels = {p[0][2] for p in rules if p[0][0] == "LABEL"}
    gotos = {v for pairs in rules for k, _, v in pairs if k == "GOTO"}
    assert gotos and gotos <= labels


def test_the_at_port_gets_its_stable_name_group_and_systemd_unit(rules: list[list[tuple[str, str, str]]]) -> None:
    at = run(rules, sim7600_tty("02"))
    assert at.symlinks == ["sim7600-at"] and at.group == "dialout" and at.mode == "0660"
    assert "systemd" in at.tags and at.env["SYSTEMD_WANTS"] == "secretaryd.service"
    assert at.env["ID_MM_DEVICE_IGNORE"] == "1" and at.env["ID_MM_PORT_IGNORE"] == "1"


def test_the_audio_port_gets_its_stable_name(rules: list[list[tuple[str, str, str]]]) -> None:
    audio = run(rules, sim7600_tty("04"))
    assert audio.symlinks == ["sim7600-audio"] and audio.group == "dialout" and audio.mode == "0660"
    assert "systemd" in audio.tags and "SYSTEMD_WANTS" not in audio.env


@pytest.mark.parametrize("interface", ["00", "01", "03"])
def test_the_other_ports_are_hidden_from_modemmanager_but_not_named(
    rules: list[list[tuple[str, str, str]]], interface: str,
) -> None:
    port = run(rules, sim7600_tty(interface))
    assert port.symlinks == [] and port.group is None
    assert port.env["ID_MM_DEVICE_IGNORE"] == "1"


def test_the_usb_device_itself_is_ignored_by_modemmanager(rules: list[list[tuple[str, str, str]]]) -> None:
    usb = run(rules, Device("add", "usb", {"DEVTYPE": "usb_device"}, attrs={"idVendor": "1e0e", "idProduct": "9001"}))
    assert usb.env.get("ID_MM_DEVICE_IGNORE") == "1"
    other = run(rules, Device("add", "usb", {"DEVTYPE": "usb_device"}, attrs={"idVendor": "0403", "idProduct": "6001"}))
    assert "ID_MM_DEVICE_IGNORE" not in other.env


@pytest.mark.parametrize("device", [
    Device("add", "tty", {}, usb={"idVendor": "0403", "idProduct": "6001", "bInterfaceNumber": "02"}),  # an FTDI cable
    sim7600_tty("02", product="9011"),  # the RNDIS composition: different ports, not ours
    sim7600_tty("02", action="remove"),
    Device("add", "tty", {"DEVNAME": "/dev/ttyS0"}),  # a built-in serial port
    Device("add", "block", {"DEVNAME": "/dev/sda"}),
])
def test_other_devices_are_left_alone(rules: list[list[tuple[str, str, str]]], device: Device) -> None:
    result = run(rules, device)
    assert result.symlinks == [] and result.group is None and "ID_MM_DEVICE_IGNORE" not in result.env


def test_the_property_names_are_the_ones_debian_udev_uses() -> None:
    """60-serial.rules (Debian's udev) names serial ports by the same usb_id properties."""
    serial_rules = Path("/lib/udev/rules.d/60-serial.rules")
    if not serial_rules.exists():
        pytest.skip("Debian's udev package is not installed")
    text = serial_rules.read_text()
    assert 'IMPORT{builtin}="usb_id"' in text and "ID_USB_INTERFACE_NUM" in text
    ours = RULES.read_text()
    for name in ("ID_VENDOR_ID", "ID_MODEL_ID", "ID_USB_INTERFACE_NUM"):
        assert name in ours
