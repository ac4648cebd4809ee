"""D-Bus helpers against a REAL dbus-daemon on a private bus, with stand-in services.

The stand-ins speak the real interfaces (dbus-fast ``ServiceInterface``) under
the real well-known names: ModemManager's manager object with
``InhibitDevice(s, b)`` and an ObjectManager listing one modem whose ``Device``
is a sysfs path, and systemd's ``Manager.GetUnit`` with unit objects. Like
ModemManager, the stand-in drops an inhibition when its caller leaves the bus
(``NameOwnerChanged`` with an empty new owner).

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus
signatures from the method annotations, and a real ``None`` return
annotation is how it knows a method returns nothing.
"""

import asyncio
import collections
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from dbus_fast import DBusError, Message, MessageType, PropertyAccess, RequestNameReply
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusObjectPath, DBusStr
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from daemon.modem.modem_manager_inhibit import (
    MM_BUS_NAME,
    MM_ERROR_IN_PROGRESS,
    MM_ERROR_NOT_FOUND,
    MM_INTERFACE,
    MM_MODEM_INTERFACE,
    MM_PATH,
    InhibitResult,
    ModemManagerInhibitor,
    hold_modem_from_modem_manager,
)
from daemon.runtime.system_dbus import (
    DEFAULT_SYSTEM_BUS_ADDRESS,
    close_bus,
    connect_bus,
    get_managed_objects,
    system_bus_address,
)
from daemon.runtime.systemd_units import ERROR_NO_SUCH_UNIT, NOT_LOADED, UnitState, unit_states

REPO = Path(__file__).resolve().parents[3]
DBUS_DAEMON = "/usr/bin/dbus-daemon"
#: The SIM7600's USB device as ModemManager reports it (Device = physdev sysfs path).
MODEM_DEVICE = "/sys/devices/platform/secretary-test-xhci/usb9/9-1/9-1.3"
MODEM_OBJECT = "/org/freedesktop/ModemManager1/Modem/0"

pytestmark = pytest.mark.skipif(not Path(DBUS_DAEMON).exists(), reason="dbus-daemon is not installed")


# ------------------------------------------------------------------ the private bus

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
{extra_policy}
  </policy>
</busconfig>
"""

#: ModemManager's shipped policy lets only root call InhibitDevice; this reproduces that refusal.
DENY_INHIBIT = (
    '    <deny send_destination="org.freedesktop.ModemManager1" '
    'send_interface="org.freedesktop.ModemManager1" send_member="InhibitDevice"/>'
)


class PrivateBus:
    """A dbus-daemon child process listening on a unix socket in a test directory."""

    def __init__(self, workdir: Path, extra_policy: str = "") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "bus"
        self.config = workdir / "bus.conf"
        self.config.write_text(BUS_CONFIG.format(socket=self.socket, extra_policy=extra_policy), encoding="utf-8")
        self.process = subprocess.Popen(
            [DBUS_DAEMON, f"--config-file={self.config}", "--nofork", "--print-address"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 10.0)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError("dbus-daemon did not print its address within 10 s")
        self.address = line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def private_bus(tmp_path: Path) -> Iterator[str]:
    bus = PrivateBus(tmp_path / "dbus")
    try:
        yield bus.address
    finally:
        bus.stop()


@pytest.fixture
def strict_bus(tmp_path: Path) -> Iterator[str]:
    """A bus whose policy refuses InhibitDevice, like ModemManager's for non-root callers."""
    bus = PrivateBus(tmp_path / "dbus-strict", extra_policy=DENY_INHIBIT)
    try:
        yield bus.address
    finally:
        bus.stop()


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def request_name(bus: MessageBus, name: str) -> None:
    reply = await bus.request_name(name)
    assert reply is RequestNameReply.PRIMARY_OWNER, reply


# ------------------------------------------------------------------ ModemManager stand-in


class ModemManagerStandIn:
    """What of ModemManager the inhibitor touches, with its documented InhibitDevice rules.

    ``devices`` are the physdev uids it knows; ``export_modem`` says whether the
    modem object is already on the bus (a device still being probed is known but
    not exported). Inhibiting unexports the modem; the inhibition is bound to
    the caller's unique name and torn down when that name leaves the bus.
    """

    def __init__(self, devices: tuple[str, ...] = (MODEM_DEVICE,), export_modem: bool = True) -> None:
        self.devices = devices
        self.export_modem = export_modem
        self.calls: list[tuple[str, bool]] = []  # every InhibitDevice(uid, inhibit) that was honoured
        self.teardowns: list[str] = []  # uids released because the holder left the bus
        self.holders: dict[str, str] = {}  # uid -> unique name of the caller holding it
        self.slow = False
        self.gate = asyncio.Event()
        self.bus: MessageBus | None = None
        self._senders: collections.deque[str] = collections.deque()
        self._manager = _MMManager(self)
        self._modem = _MMModem(devices[0])

    async def start(self, address: str) -> None:
        self.bus = await MessageBus(bus_address=address).connect()
        self.bus.add_message_handler(self._observe)
        # Watch every name that leaves the bus (ModemManager uses g_bus_watch_name per holder).
        await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus", interface="org.freedesktop.DBus",
            member="AddMatch", signature="s",
            body=["type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                  "member='NameOwnerChanged'"],
        ))
        self.bus.export(MM_PATH, self._manager)
        if self.export_modem:
            self.bus.export(MODEM_OBJECT, self._modem)
        await request_name(self.bus, MM_BUS_NAME)

    async def stop(self) -> None:
        self.gate.set()
        await asyncio.sleep(0.05)  # let a held-back InhibitDevice finish before the connection goes
        if self.bus is not None:
            await close_bus(self.bus)

    def _observe(self, msg: Message) -> bool:
        if (msg.message_type is MessageType.METHOD_CALL and msg.interface == MM_INTERFACE
                and msg.member == "InhibitDevice" and msg.sender):
            self._senders.append(msg.sender)
        elif (msg.message_type is MessageType.SIGNAL and msg.member == "NameOwnerChanged"
              and msg.sender == "org.freedesktop.DBus" and msg.body[2] == ""):
            self._holder_vanished(msg.body[0])
        return False  # observe only; dbus-fast dispatches as usual

    def _holder_vanished(self, name: str) -> None:
        for uid, holder in list(self.holders.items()):
            if holder == name:
                self._uninhibit(uid)
                self.teardowns.append(uid)

    def _uninhibit(self, uid: str) -> None:
        del self.holders[uid]
        if self.export_modem and self.bus is not None:
            self.bus.export(MODEM_OBJECT, self._modem)

    async def inhibit_device(self, sender: str, uid: str, inhibit: bool) -> None:
        if self.slow:
            await self.gate.wait()
        assert self.bus is not None
        if inhibit:
            if uid not in self.devices:
                raise DBusError(MM_ERROR_NOT_FOUND, f"No device found with uid '{uid}'")
            if uid in self.holders:
                raise DBusError(MM_ERROR_IN_PROGRESS, f"Device '{uid}' is already inhibited")
            self.holders[uid] = sender
            self.calls.append((uid, True))
            if self.export_modem:
                self.bus.unexport(MODEM_OBJECT, self._modem)
            # A watch set up on a name that is already gone reports it vanished at once.
            reply = await self.bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="NameHasOwner", signature="s", body=[sender],
            ))
            if not reply.body[0] and self.holders.get(uid) == sender:
                self._uninhibit(uid)
                self.teardowns.append(uid)
            return
        if self.holders.get(uid) != sender:
            raise DBusError(MM_ERROR_NOT_FOUND, f"No inhibition found for uid '{uid}'")
        self._uninhibit(uid)
        self.calls.append((uid, False))


class _MMManager(ServiceInterface):
    def __init__(self, standin: ModemManagerStandIn) -> None:
        super().__init__(MM_INTERFACE)
        self._standin = standin

    @dbus_method()
    def ScanDevices(self) -> None:
        pass

    @dbus_method()
    def SetLogging(self, level: DBusStr) -> None:
        pass

    @dbus_method()
    async def InhibitDevice(self, uid: DBusStr, inhibit: DBusBool) -> None:
        sender = self._standin._senders.popleft()  # calls start in arrival order
        await self._standin.inhibit_device(sender, uid, inhibit)

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> DBusStr:
        return "1.24.0"


class _MMModem(ServiceInterface):
    def __init__(self, device: str) -> None:
        super().__init__(MM_MODEM_INTERFACE)
        self._device = device

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusStr:
        return self._device

    @dbus_property(access=PropertyAccess.READ)
    def Physdev(self) -> DBusStr:
        return self._device

    @dbus_property(access=PropertyAccess.READ)
    def Manufacturer(self) -> DBusStr:
        return "SIMCOM INCORPORATED"

    @dbus_property(access=PropertyAccess.READ)
    def Model(self) -> DBusStr:
        return "SIMCOM_SIM7600G-H"


@pytest.fixture
async def modem_manager(private_bus: str) -> AsyncIterator[ModemManagerStandIn]:
    standin = ModemManagerStandIn()
    await standin.start(private_bus)
    try:
        yield standin
    finally:
        await standin.stop()


# ------------------------------------------------------------------ systemd stand-in


def systemd_unit_path(name: str) -> str:
    """systemd's bus_label_escape: every byte but [A-Za-z0-9] (and a leading digit) becomes _xx."""
    escaped = "".join(
        ch if ch.isascii() and (ch.isalpha() or (ch.isdigit() and i > 0)) else f"_{ord(ch):02x}"
        for i, ch in enumerate(name)
    )
    return f"/org/freedesktop/systemd1/unit/{escaped}"


class _SystemdUnit(ServiceInterface):
    def __init__(self, name: str, load: str, active: str, sub: str) -> None:
        super().__init__("org.freedesktop.systemd1.Unit")
        self._values = (name, load, active, sub)

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> DBusStr:
        return self._values[0]

    @dbus_property(access=PropertyAccess.READ)
    def LoadState(self) -> DBusStr:
        return self._values[1]

    @dbus_property(access=PropertyAccess.READ)
    def ActiveState(self) -> DBusStr:
        return self._values[2]

    @dbus_property(access=PropertyAccess.READ)
    def SubState(self) -> DBusStr:
        return self._values[3]


class _SystemdManager(ServiceInterface):
    def __init__(self, standin: "SystemdStandIn") -> None:
        super().__init__("org.freedesktop.systemd1.Manager")
        self._standin = standin

    @dbus_method()
    async def GetUnit(self, name: DBusStr) -> DBusObjectPath:
        self._standin.asked.append(name)
        if self._standin.slow:
            await self._standin.gate.wait()
        if name not in self._standin.units:
            raise DBusError(ERROR_NO_SUCH_UNIT, f"Unit {name} not loaded.")
        return systemd_unit_path(name)


class SystemdStandIn:
    def __init__(self, units: dict[str, tuple[str, str, str]]) -> None:
        self.units = units  # name -> (LoadState, ActiveState, SubState)
        self.asked: list[str] = []
        self.slow = False
        self.gate = asyncio.Event()
        self.bus: MessageBus | None = None

    async def start(self, address: str) -> None:
        self.bus = await MessageBus(bus_address=address).connect()
        self.bus.export("/org/freedesktop/systemd1", _SystemdManager(self))
        for name, (load, active, sub) in self.units.items():
            self.bus.export(systemd_unit_path(name), _SystemdUnit(name, load, active, sub))
        await request_name(self.bus, "org.freedesktop.systemd1")

    async def stop(self) -> None:
        self.gate.set()
        await asyncio.sleep(0.05)
        if self.bus is not None:
            await close_bus(self.bus)


BOX = ["ModemManager.service", "mosquitto.service", "secretary-vllm.service", "secretaryd.service"]


@pytest.fixture
async def systemd(private_bus: str) -> AsyncIterator[SystemdStandIn]:
    standin = SystemdStandIn({
        "ModemManager.service": ("loaded", "active", "running"),
        "mosquitto.service": ("loaded", "failed", "failed"),
        "secretaryd.service": ("loaded", "active", "running"),
    })
    await standin.start(private_bus)
    try:
        yield standin
    finally:
        await standin.stop()


# ------------------------------------------------------------------ the system bus helper


def test_system_bus_address_from_environment() -> None:
    assert system_bus_address({}) == DEFAULT_SYSTEM_BUS_ADDRESS
    assert system_bus_address({"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/run/x"}) == "unix:path=/run/x"
    assert system_bus_address({"DBUS_SYSTEM_BUS_ADDRESS": " "}) == DEFAULT_SYSTEM_BUS_ADDRESS


async def test_connect_to_private_bus(private_bus: str) -> None:
    conn = await connect_bus(private_bus)
    assert conn.bus is not None and conn.connected and conn.reason == ""
    assert conn.bus.unique_name and conn.bus.unique_name.startswith(":")
    await close_bus(conn.bus)
    assert not conn.connected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("unix:path=/nonexistent/secretary-test/bus", "socket does not exist"),
        ("tcp:host=127.0.0.1,port=1", "connection refused"),
        ("carrier-pigeon:coop=roof", "invalid D-Bus address"),
    ],
)
async def test_no_bus_is_a_reason_not_an_error(address: str, expected: str) -> None:
    conn = await connect_bus(address, timeout_s=2)
    assert conn.bus is None and not conn.connected
    assert expected in conn.reason and conn.address == address


async def test_silent_bus_hits_the_connect_timeout(tmp_path: Path) -> None:
    """A socket that accepts but never speaks SASL: connect gives up after its timeout."""
    path = tmp_path / "silent"
    accepted: list[asyncio.StreamWriter] = []

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_unix_server(accept, path=str(path))
    try:
        started = time.monotonic()
        conn = await connect_bus(f"unix:path={path}", timeout_s=0.3)
        assert conn.bus is None and "did not complete the handshake" in conn.reason
        assert time.monotonic() - started < 2
        assert len(accepted) == 1
    finally:
        for writer in accepted:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------ ModemManager inhibition


async def test_inhibit_then_context_exit_releases(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    async with ModemManagerInhibitor(private_bus) as inhibitor:
        result = await inhibitor.inhibit(MODEM_DEVICE)
        assert result.inhibited, result.detail
        assert result.uid == MODEM_DEVICE and result.modem_manager_running
        assert MODEM_OBJECT in result.detail  # found through the Modem's Device property
        assert modem_manager.calls == [(MODEM_DEVICE, True)]
        assert inhibitor.held and inhibitor.uid == MODEM_DEVICE
        # Calling again for the same device keeps the one inhibition.
        assert (await inhibitor.inhibit(MODEM_DEVICE + "/")).inhibited
        assert modem_manager.calls == [(MODEM_DEVICE, True)]
    assert modem_manager.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)]
    assert modem_manager.teardowns == [] and modem_manager.holders == {}
    assert not inhibitor.held
    # ModemManager exports the modem again once it is uninhibited.
    conn = await connect_bus(private_bus)
    assert conn.bus is not None
    try:
        assert MODEM_OBJECT in await get_managed_objects(conn.bus, MM_BUS_NAME, MM_PATH)
    finally:
        await close_bus(conn.bus)


async def test_release_explains_and_is_idempotent(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    inhibitor = ModemManagerInhibitor(private_bus)
    assert (await inhibitor.inhibit(MODEM_DEVICE)).inhibited
    released = await inhibitor.release()
    assert not released.inhibited and "released" in released.detail
    again = await inhibitor.release()
    assert not again.inhibited and again.detail == "nothing was inhibited"
    assert modem_manager.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)]


async def test_hold_helper_accepts_the_bare_usb_device_name(
    private_bus: str, modem_manager: ModemManagerStandIn
) -> None:
    async with hold_modem_from_modem_manager("9-1.3", bus_address=private_bus) as result:
        assert isinstance(result, InhibitResult)
        assert result.inhibited and result.uid == MODEM_DEVICE
        assert modem_manager.holders.keys() == {MODEM_DEVICE}
    assert modem_manager.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)]


async def test_path_below_the_usb_device_matches(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    async with hold_modem_from_modem_manager(MODEM_DEVICE + "/9-1.3:1.2", bus_address=private_bus) as result:
        assert result.inhibited and result.uid == MODEM_DEVICE


async def test_body_error_still_releases(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    with pytest.raises(RuntimeError, match="modem went away"):
        async with hold_modem_from_modem_manager(MODEM_DEVICE, bus_address=private_bus) as result:
            assert result.inhibited
            raise RuntimeError("modem went away")
    assert modem_manager.calls[-1] == (MODEM_DEVICE, False)


async def test_cancelled_task_releases(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    holding = asyncio.Event()

    async def own_the_modem() -> None:
        async with hold_modem_from_modem_manager(MODEM_DEVICE, bus_address=private_bus) as result:
            assert result.inhibited
            holding.set()
            await asyncio.Event().wait()  # owns the modem until cancelled

    task = asyncio.create_task(own_the_modem())
    async with asyncio.timeout(5):
        await holding.wait()
    assert modem_manager.holders.keys() == {MODEM_DEVICE}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert modem_manager.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)]
    assert modem_manager.holders == {}


async def test_process_killed_while_inhibited_is_released_by_modem_manager(
    private_bus: str, modem_manager: ModemManagerStandIn
) -> None:
    """A crash never calls release: ModemManager sees the caller's name vanish and drops the inhibition."""
    script = (
        "import asyncio, sys\n"
        "from daemon.modem.modem_manager_inhibit import ModemManagerInhibitor\n"
        "async def main() -> None:\n"
        "    result = await ModemManagerInhibitor(sys.argv[1]).inhibit(sys.argv[2])\n"
        "    print('inhibited' if result.inhibited else 'failed: ' + result.detail, flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, private_bus, MODEM_DEVICE,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=str(REPO),
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(20):
            line = (await child.stdout.readline()).decode().strip()
        assert line == "inhibited"
        assert modem_manager.calls == [(MODEM_DEVICE, True)]
        holder = modem_manager.holders[MODEM_DEVICE]
        child.send_signal(signal.SIGKILL)
        await child.wait()
        await wait_until(lambda: modem_manager.teardowns == [MODEM_DEVICE])
        assert modem_manager.holders == {} and holder
        assert modem_manager.calls == [(MODEM_DEVICE, True)]  # no uninhibit call ever came
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_closing_the_connection_without_release_drops_the_inhibition(
    private_bus: str, modem_manager: ModemManagerStandIn
) -> None:
    conn = await connect_bus(private_bus)
    assert conn.bus is not None
    await conn.bus.call(Message(
        destination=MM_BUS_NAME, path=MM_PATH, interface=MM_INTERFACE, member="InhibitDevice",
        signature="sb", body=[MODEM_DEVICE, True],
    ))
    assert modem_manager.holders == {MODEM_DEVICE: conn.bus.unique_name}
    await close_bus(conn.bus)
    await wait_until(lambda: modem_manager.teardowns == [MODEM_DEVICE])


async def test_modem_manager_not_on_the_bus(private_bus: str) -> None:
    async with ModemManagerInhibitor(private_bus) as inhibitor:
        result = await inhibitor.inhibit(MODEM_DEVICE)
        assert not result.inhibited and result.modem_manager_running is False
        assert "not running" in result.detail
        assert not inhibitor.held


async def test_no_bus_at_all_degrades(tmp_path: Path) -> None:
    address = f"unix:path={tmp_path / 'no-such-bus'}"
    async with hold_modem_from_modem_manager(MODEM_DEVICE, bus_address=address) as result:
        assert not result.inhibited and result.modem_manager_running is None
        assert result.detail.startswith("cannot reach ModemManager") and "socket does not exist" in result.detail


async def test_modem_not_yet_exported_falls_back_to_the_sysfs_path(private_bus: str) -> None:
    standin = ModemManagerStandIn(export_modem=False)  # still probing: known device, no modem object
    await standin.start(private_bus)
    try:
        async with hold_modem_from_modem_manager("/sys/devices/platform/secretary-test-xhci/usb9/9-1/9-1.3",
                                                 bus_address=private_bus) as result:
            assert result.inhibited and result.uid == MODEM_DEVICE
            assert "sysfs path used as uid" in result.detail
        assert standin.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)]
    finally:
        await standin.stop()


async def test_unknown_device_is_explained(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    other = "/sys/devices/platform/secretary-test-xhci/usb9/9-2"
    async with ModemManagerInhibitor(private_bus) as inhibitor:
        result = await inhibitor.inhibit(other)
        assert not result.inhibited and result.modem_manager_running
        assert "has no device with uid" in result.detail and other in result.detail
        assert not inhibitor.held
    assert modem_manager.calls == []


async def test_already_inhibited_by_someone_else(private_bus: str, modem_manager: ModemManagerStandIn) -> None:
    async with hold_modem_from_modem_manager(MODEM_DEVICE, bus_address=private_bus) as first:
        assert first.inhibited
        async with hold_modem_from_modem_manager(MODEM_DEVICE, bus_address=private_bus) as second:
            assert not second.inhibited and "already inhibited by another" in second.detail
        assert modem_manager.holders.keys() == {MODEM_DEVICE}  # the second never touched the first's hold
    assert modem_manager.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)]


async def test_bus_policy_refusal_is_explained(strict_bus: str) -> None:
    standin = ModemManagerStandIn()
    await standin.start(strict_bus)
    try:
        async with hold_modem_from_modem_manager(MODEM_DEVICE, bus_address=strict_bus) as result:
            assert not result.inhibited
            assert "refused InhibitDevice" in result.detail and "/etc/dbus-1/system.d" in result.detail
        assert standin.calls == []
    finally:
        await standin.stop()


async def test_slow_modem_manager_times_out_and_a_late_grant_is_dropped(
    private_bus: str, modem_manager: ModemManagerStandIn
) -> None:
    modem_manager.slow = True
    inhibitor = ModemManagerInhibitor(private_bus, inhibit_timeout_s=0.3)
    started = time.monotonic()
    result = await inhibitor.inhibit(MODEM_DEVICE)
    assert time.monotonic() - started < 2
    assert not result.inhibited and "did not answer in time" in result.detail
    assert not inhibitor.held
    # ModemManager gets round to it after we left: the grant is torn down at once.
    modem_manager.gate.set()
    await wait_until(lambda: modem_manager.teardowns == [MODEM_DEVICE])
    assert modem_manager.holders == {}


# ------------------------------------------------------------------ systemd unit states


async def test_unit_states_active_failed_unknown(private_bus: str, systemd: SystemdStandIn) -> None:
    states = await unit_states(BOX, bus_address=private_bus)
    modem_manager_unit = states["ModemManager.service"]
    assert modem_manager_unit == UnitState("ModemManager.service", "loaded", "active", "running")
    assert modem_manager_unit.active and modem_manager_unit.loaded
    mosquitto = states["mosquitto.service"]
    assert mosquitto is not None and mosquitto.failed and mosquitto.describe() == "failed (failed)"
    vllm = states["secretary-vllm.service"]
    assert vllm is not None and vllm.load_state == NOT_LOADED and not vllm.loaded and not vllm.active
    assert vllm.describe().startswith("not loaded")
    secretaryd = states["secretaryd.service"]
    assert secretaryd is not None and secretaryd.describe() == "active (running)"
    assert list(states) == BOX
    assert sorted(systemd.asked) == sorted(BOX)


async def test_unit_states_without_systemd_on_the_bus(private_bus: str) -> None:
    assert await unit_states(BOX, bus_address=private_bus) == dict.fromkeys(BOX)


async def test_unit_states_without_a_bus(tmp_path: Path) -> None:
    states = await unit_states(BOX, bus_address=f"unix:path={tmp_path / 'none'}")
    assert states == dict.fromkeys(BOX)


async def test_unit_states_respects_the_timeout(private_bus: str, systemd: SystemdStandIn) -> None:
    systemd.slow = True
    started = time.monotonic()
    states = await unit_states(BOX, bus_address=private_bus, timeout_s=0.4)
    elapsed = time.monotonic() - started
    assert states == dict.fromkeys(BOX)
    assert 0.3 < elapsed < 2, elapsed
    assert sorted(systemd.asked) == sorted(BOX)  # asked in parallel, not one after another


async def test_unit_states_empty_list() -> None:
    assert await unit_states([], bus_address="unix:path=/nonexistent") == {}


# ------------------------------------------------------------------ keeping it off across ModemManager restarts


async def test_keep_off_inhibits_again_when_modem_manager_restarts(private_bus: str) -> None:
    first = ModemManagerStandIn()
    await first.start(private_bus)
    results: list[InhibitResult] = []
    keeper = asyncio.create_task(ModemManagerInhibitor(private_bus).keep_off(MODEM_DEVICE, results.append))
    try:
        await _until(lambda: len(results) == 1)
        assert results[0].inhibited and first.calls == [(MODEM_DEVICE, True)]
        await first.stop()  # ModemManager goes (an upgrade, a crash): its inhibitions go with it
        second = ModemManagerStandIn()
        await second.start(private_bus)  # ...and a new one would probe the modem again
        try:
            await _until(lambda: len(results) == 2)
            assert results[1].inhibited, results[1].detail
            assert second.calls == [(MODEM_DEVICE, True)] and set(second.holders) == {MODEM_DEVICE}
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            assert second.calls == [(MODEM_DEVICE, True), (MODEM_DEVICE, False)] and second.holders == {}
            await second.stop()
    finally:
        keeper.cancel()
        await first.stop()


async def test_keep_off_inhibits_a_modem_manager_that_starts_after_us(private_bus: str) -> None:
    results: list[InhibitResult] = []
    keeper = asyncio.create_task(ModemManagerInhibitor(private_bus).keep_off(MODEM_DEVICE, results.append))
    late = ModemManagerStandIn()
    try:
        await _until(lambda: len(results) == 1)
        assert not results[0].inhibited and results[0].modem_manager_running is False
        await late.start(private_bus)  # boot order: ModemManager comes up after secretaryd
        await _until(lambda: len(results) == 2)
        assert results[1].inhibited and late.calls == [(MODEM_DEVICE, True)]
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await late.stop()
    assert late.holders == {}  # released on the way out


async def test_keep_off_without_a_bus_reports_once_and_returns(tmp_path: Path) -> None:
    results: list[InhibitResult] = []
    async with asyncio.timeout(5):
        await ModemManagerInhibitor(f"unix:path={tmp_path}/no-bus").keep_off(MODEM_DEVICE, results.append)
    assert len(results) == 1 and not results[0].inhibited and "cannot reach ModemManager" in results[0].detail


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)
