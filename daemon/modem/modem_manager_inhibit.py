"""Keep ModemManager off the SIM7600 while secretaryd owns it (D-Bus ``InhibitDevice``).

ModemManager's manager object ``/org/freedesktop/ModemManager1`` (interface
``org.freedesktop.ModemManager1``, since 1.10) has ``InhibitDevice(s uid,
b inhibit)``. ``uid`` is the physical device's UID exactly as ModemManager
reports it in the ``org.freedesktop.ModemManager1.Modem`` ``Device`` property:
on Linux the sysfs path of the USB device, unless a udev rule set
``ID_MM_PHYSDEV_UID``. While inhibited, ModemManager closes all the modem's
ports and unexports the modem. The inhibition is bound to the caller's bus
connection: it lasts until the caller uninhibits or leaves the bus (also by
crashing), so the inhibitor keeps one dedicated connection open while it holds.

ModemManager keeps its inhibitions in memory: when it restarts (an upgrade,
a crash) or starts after secretaryd (boot order), it would probe the modem
again. ``keep_off`` watches its bus name and inhibits again each time a new
ModemManager appears.

Nothing here raises because ModemManager is absent: no system bus, nobody
owning ``org.freedesktop.ModemManager1``, or a refusal all come back as an
:class:`InhibitResult` that says what happened in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus

from daemon.runtime.system_dbus import (
    CALL_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    ERROR_ACCESS_DENIED,
    ERROR_NAME_HAS_NO_OWNER,
    ERROR_SERVICE_UNKNOWN,
    call_method,
    close_bus,
    connect_bus,
    get_managed_objects,
    name_has_owner,
    watch_name_owner,
)

log = logging.getLogger("secretary.modem")

MM_BUS_NAME: Final = "org.freedesktop.ModemManager1"
MM_PATH: Final = "/org/freedesktop/ModemManager1"
MM_INTERFACE: Final = "org.freedesktop.ModemManager1"
MM_MODEM_INTERFACE: Final = "org.freedesktop.ModemManager1.Modem"
#: ModemManager's own error names (MM_CORE_ERROR_DBUS_PREFIX + enum nick).
MM_ERROR_NOT_FOUND: Final = "org.freedesktop.ModemManager1.Error.Core.NotFound"
MM_ERROR_IN_PROGRESS: Final = "org.freedesktop.ModemManager1.Error.Core.InProgress"
MM_ERROR_UNAUTHORIZED: Final = "org.freedesktop.ModemManager1.Error.Core.Unauthorized"
USB_DEVICES_DIR: Final = "/sys/bus/usb/devices"
#: Inhibiting closes the modem's ports inside ModemManager; give it longer than a plain query.
INHIBIT_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class InhibitResult:
    inhibited: bool  # True: this process holds an inhibition right now
    detail: str  # what happened, for logs, `secretary doctor` and the web status
    uid: str | None = None  # the uid passed to InhibitDevice, when one was
    modem_manager_running: bool | None = None  # None: could not tell (no bus)


@dataclass(frozen=True, slots=True)
class UsbDeviceRef:
    """The USB device to keep ModemManager off, as given and as a canonical sysfs path."""

    given: str
    path: str  # canonical /sys/devices/... path (symlinks resolved where they exist)
    name: str | None  # bare USB device name ("1-1.3") when that is what was given

    @classmethod
    def parse(cls, usb_sysfs_path: str) -> UsbDeviceRef:
        raw = usb_sysfs_path.strip().rstrip("/")
        if not raw:
            raise ValueError("empty USB sysfs path")
        name = raw if "/" not in raw else None
        full = f"{USB_DEVICES_DIR}/{raw}" if name is not None else raw
        return cls(usb_sysfs_path, os.path.realpath(full), name)

    def matches(self, reported: object) -> bool:
        """Whether a Modem ``Device``/``Physdev`` value names this USB device (or an ancestor of the given path)."""
        if not isinstance(reported, str) or not reported.startswith("/"):
            return False  # empty, or an ID_MM_PHYSDEV_UID tag that is no path
        device = os.path.realpath(reported.rstrip("/"))
        if self.path == device or self.path.startswith(device + "/"):
            return True
        return self.name is not None and os.path.basename(device) == self.name


def find_modem_uid(objects: dict[str, dict[str, dict[str, Any]]], target: UsbDeviceRef) -> tuple[str, str] | None:
    """(modem object path, uid) of the ModemManager modem on ``target``, from GetManagedObjects output."""
    for object_path in sorted(objects):
        modem = objects[object_path].get(MM_MODEM_INTERFACE)
        if modem is None:
            continue
        device, physdev = modem.get("Device"), modem.get("Physdev")
        if target.matches(device) or target.matches(physdev):
            uid = device if isinstance(device, str) and device else physdev
            if isinstance(uid, str) and uid:
                return object_path, uid
    return None


def _explain_refusal(exc: DBusError, uid: str) -> str:
    name = str(exc.type)
    text = exc.text or name
    if name == MM_ERROR_NOT_FOUND:
        return (
            f"ModemManager runs but has no device with uid {uid!r} ({text}); it does not manage this modem "
            "(an ID_MM_DEVICE_IGNORE udev rule, or it has not seen the modem yet)"
        )
    if name == MM_ERROR_IN_PROGRESS:
        return f"the modem {uid!r} is already inhibited by another ModemManager client ({text})"
    if name == ERROR_ACCESS_DENIED:
        return (
            f"the system bus refused InhibitDevice ({text}): ModemManager's D-Bus policy lets only root call it; "
            "install a /etc/dbus-1/system.d policy that allows secretaryd's user to send InhibitDevice to "
            "org.freedesktop.ModemManager1, or keep ModemManager off the modem with the udev rule"
        )
    if name == MM_ERROR_UNAUTHORIZED:
        return (
            f"ModemManager refused InhibitDevice ({text}): polkit action org.freedesktop.ModemManager1.Control "
            "is not granted to secretaryd's user"
        )
    return f"ModemManager refused InhibitDevice for {uid!r}: {name}: {text}"


class ModemManagerInhibitor:
    """Holds one ModemManager inhibition on its own bus connection.

    ``async with ModemManagerInhibitor() as mm: result = await mm.inhibit(path)``;
    leaving the block (normally, by error or by cancellation) releases it. The
    connection stays open between :meth:`inhibit` and :meth:`release`: closing
    it is itself a release, which is what makes a crash safe.
    """

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        call_timeout_s: float = CALL_TIMEOUT_S,
        inhibit_timeout_s: float = INHIBIT_TIMEOUT_S,
    ) -> None:
        self._bus_address = bus_address
        self._connect_timeout_s = connect_timeout_s
        self._call_timeout_s = call_timeout_s
        self._inhibit_timeout_s = inhibit_timeout_s
        self._bus: MessageBus | None = None
        self._uid: str | None = None
        self._target: UsbDeviceRef | None = None
        self._result: InhibitResult | None = None

    @property
    def held(self) -> bool:
        """Whether the inhibition is still in force (our connection is alive)."""
        return self._uid is not None and self._bus is not None and self._bus.connected

    @property
    def uid(self) -> str | None:
        return self._uid

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()

    async def inhibit(self, usb_sysfs_path: str) -> InhibitResult:
        """Ask ModemManager to keep off the USB device at ``usb_sysfs_path``.

        ``usb_sysfs_path`` is the SIM7600's USB device in sysfs: a full path
        (``/sys/devices/.../1-1.3``, or a path below it such as an interface),
        or the bare device name (``1-1.3``).
        """
        target = UsbDeviceRef.parse(usb_sysfs_path)
        if self._uid is not None and self._result is not None:
            if self._target is not None and self._target.path == target.path:
                return self._result
            raise RuntimeError(f"this inhibitor already holds {self._uid!r}; release it first")
        conn = await connect_bus(self._bus_address, timeout_s=self._connect_timeout_s)
        if conn.bus is None:
            return InhibitResult(False, f"cannot reach ModemManager: {conn.reason}")
        self._bus = conn.bus
        try:
            result = await self._inhibit_on(conn.bus, target)
        except BaseException:
            await self._drop_bus()  # leaving the bus cancels anything ModemManager granted meanwhile
            raise
        if result.inhibited:
            self._uid, self._target, self._result = result.uid, target, result
            log.info("ModemManager inhibited", extra={"uid": result.uid, "detail": result.detail})
        else:
            await self._drop_bus()
            log.info("ModemManager not inhibited", extra={"detail": result.detail})
        return result

    async def _inhibit_on(self, bus: MessageBus, target: UsbDeviceRef) -> InhibitResult:
        uid = target.path
        try:
            if not await name_has_owner(bus, MM_BUS_NAME, self._call_timeout_s):
                return InhibitResult(
                    False, f"ModemManager is not running (nobody owns {MM_BUS_NAME} on the bus); nothing to keep off",
                    modem_manager_running=False,
                )
            uid, how = await self._find_uid(bus, target)
            await call_method(
                bus, destination=MM_BUS_NAME, path=MM_PATH, interface=MM_INTERFACE, member="InhibitDevice",
                signature="sb", body=[uid, True], timeout_s=self._inhibit_timeout_s,
            )
        except TimeoutError:
            return InhibitResult(
                False, "ModemManager did not answer in time; closed our bus connection, which cancels any "
                "inhibition it grants late", uid=uid, modem_manager_running=True,
            )
        except ConnectionError as exc:
            return InhibitResult(False, f"lost the D-Bus connection: {exc}", uid=uid)
        except DBusError as exc:
            if str(exc.type) in (ERROR_SERVICE_UNKNOWN, ERROR_NAME_HAS_NO_OWNER):
                return InhibitResult(False, "ModemManager left the bus; nothing to keep off", modem_manager_running=False)
            return InhibitResult(False, _explain_refusal(exc, uid), uid=uid, modem_manager_running=True)
        return InhibitResult(
            True, f"ModemManager keeps off the modem (uid {uid!r}, {how}) while secretaryd stays on the bus",
            uid=uid, modem_manager_running=True,
        )

    async def _find_uid(self, bus: MessageBus, target: UsbDeviceRef) -> tuple[str, str]:
        """The uid ModemManager knows the modem by, and how it was found."""
        try:
            objects = await get_managed_objects(bus, MM_BUS_NAME, MM_PATH, self._call_timeout_s)
        except DBusError as exc:
            if str(exc.type) in (ERROR_SERVICE_UNKNOWN, ERROR_NAME_HAS_NO_OWNER):
                raise
            return target.path, f"modem list unavailable ({exc.type}), sysfs path used as uid"
        found = find_modem_uid(objects, target)
        if found is None:
            return target.path, "not among ModemManager's modems, sysfs path used as uid"
        object_path, uid = found
        return uid, f"Device of {object_path}"

    async def release(self) -> InhibitResult:
        """Uninhibit (when held) and close the connection; safe to call any time, also twice."""
        uid, bus = self._uid, self._bus
        self._uid, self._target, self._result = None, None, None
        if uid is None or bus is None:
            await self._drop_bus()
            return InhibitResult(False, "nothing was inhibited")
        try:
            await call_method(
                bus, destination=MM_BUS_NAME, path=MM_PATH, interface=MM_INTERFACE, member="InhibitDevice",
                signature="sb", body=[uid, False], timeout_s=self._call_timeout_s,
            )
            detail = f"released: ModemManager may manage {uid!r} again"
        except (TimeoutError, ConnectionError, DBusError) as exc:
            reason = f"{exc.type}: {exc.text}" if isinstance(exc, DBusError) else (str(exc) or type(exc).__name__)
            detail = f"uninhibit call failed ({reason}); closing the bus connection releases {uid!r} anyway"
        finally:
            await self._drop_bus()  # runs on cancellation too: leaving the bus is a release
        log.info("ModemManager inhibition released", extra={"uid": uid, "detail": detail})
        return InhibitResult(False, detail, uid=uid, modem_manager_running=True)

    async def _drop_bus(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            await close_bus(bus)

    async def keep_off(self, usb_sysfs_path: str, report: Callable[[InhibitResult], None]) -> None:
        """Inhibit now, and again whenever a ModemManager appears on the bus; until cancelled, then release.

        ``report`` hears every attempt's result. Without a system bus there is
        nothing to watch: it reports that once and returns.
        """
        conn = await connect_bus(self._bus_address, timeout_s=self._connect_timeout_s)
        if conn.bus is None:
            report(InhibitResult(False, f"cannot reach ModemManager: {conn.reason}"))
            return
        appeared = asyncio.Event()
        try:
            try:
                await watch_name_owner(conn.bus, MM_BUS_NAME, lambda owner: appeared.set(), self._call_timeout_s)
            except (TimeoutError, ConnectionError, DBusError) as exc:
                log.warning("cannot watch for ModemManager restarts; inhibiting once", extra={"error": str(exc)})
            while True:
                appeared.clear()
                report(await self.inhibit(usb_sysfs_path))
                await appeared.wait()  # without the watch: held until cancelled
                log.info("ModemManager (re)started: inhibiting the modem again", extra={"uid": self._uid})
                await self._forget()
        finally:
            try:
                await self.release()
            finally:
                await close_bus(conn.bus)

    async def _forget(self) -> None:
        """The ModemManager that granted our inhibition has gone: it holds nothing for us any more."""
        self._uid, self._target, self._result = None, None, None
        await self._drop_bus()


@contextlib.asynccontextmanager
async def hold_modem_from_modem_manager(
    usb_sysfs_path: str, bus_address: str | None = None
) -> AsyncIterator[InhibitResult]:
    """``async with hold_modem_from_modem_manager(path) as result:`` around owning the modem.

    Inhibits on entry (``result`` says whether and why not), releases on exit,
    also when the body fails or the task is cancelled. Never raises because
    ModemManager or the system bus is missing.
    """
    async with ModemManagerInhibitor(bus_address) as inhibitor:
        yield await inhibitor.inhibit(usb_sysfs_path)


__all__ = [
    "INHIBIT_TIMEOUT_S",
    "MM_BUS_NAME",
    "MM_ERROR_IN_PROGRESS",
    "MM_ERROR_NOT_FOUND",
    "MM_ERROR_UNAUTHORIZED",
    "MM_INTERFACE",
    "MM_MODEM_INTERFACE",
    "MM_PATH",
    "InhibitResult",
    "UsbDeviceRef",
    "ModemManagerInhibitor",
    "find_modem_uid",
    "hold_modem_from_modem_manager",
]
