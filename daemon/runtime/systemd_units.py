"""systemd unit states over D-Bus, for ``secretary doctor`` and the web status.

``org.freedesktop.systemd1.Manager.GetUnit(name)`` on ``/org/freedesktop/systemd1``
gives the unit's object path, or the error ``org.freedesktop.systemd1.NoSuchUnit``
when systemd has not loaded the unit (not installed, or inactive and
garbage-collected); the unit object then answers ``LoadState``,
``ActiveState`` and ``SubState`` through ``org.freedesktop.DBus.Properties``.
Without a reachable systemd (no system bus, containers) every unit maps to None.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus

from daemon.runtime.system_dbus import CONNECT_TIMEOUT_S, call_method, get_property, name_has_owner, open_bus

log = logging.getLogger("secretary.systemd")

SYSTEMD_BUS_NAME: Final = "org.freedesktop.systemd1"
SYSTEMD_PATH: Final = "/org/freedesktop/systemd1"
MANAGER_INTERFACE: Final = "org.freedesktop.systemd1.Manager"
UNIT_INTERFACE: Final = "org.freedesktop.systemd1.Unit"
ERROR_NO_SUCH_UNIT: Final = "org.freedesktop.systemd1.NoSuchUnit"
NOT_LOADED: Final = "not-loaded"
UNITS_TIMEOUT_S: Final = 3.0
#: What the box cares about: the modem's competitor, the broker, the LLM server and the daemon itself.
BOX_UNITS: Final = ("ModemManager.service", "mosquitto.service", "secretary-vllm.service", "secretaryd.service")


@dataclass(frozen=True, slots=True)
class UnitState:
    name: str
    load_state: str  # loaded | not-found | masked | error | ... | "not-loaded" (GetUnit: NoSuchUnit)
    active_state: str  # active | inactive | failed | activating | deactivating | reloading
    sub_state: str  # running | dead | exited | failed | ...

    @property
    def loaded(self) -> bool:
        return self.load_state != NOT_LOADED

    @property
    def active(self) -> bool:
        return self.active_state in ("active", "reloading")

    @property
    def failed(self) -> bool:
        return self.active_state == "failed"

    def describe(self) -> str:
        """One line for people: ``active (running)``, ``failed (failed)``, ``not loaded``."""
        if not self.loaded:
            return "not loaded (not installed, or inactive and unloaded by systemd)"
        text = f"{self.active_state} ({self.sub_state})"
        return text if self.load_state == "loaded" else f"{text}, {self.load_state}"


async def read_unit_state(bus: MessageBus, name: str, timeout_s: float = UNITS_TIMEOUT_S) -> UnitState:
    """One unit's state. Raises DBusError (other than NoSuchUnit), TimeoutError, ConnectionError."""
    try:
        body = await call_method(
            bus, destination=SYSTEMD_BUS_NAME, path=SYSTEMD_PATH, interface=MANAGER_INTERFACE,
            member="GetUnit", signature="s", body=[name], timeout_s=timeout_s,
        )
    except DBusError as exc:
        if str(exc.type) == ERROR_NO_SUCH_UNIT:
            return UnitState(name, NOT_LOADED, "inactive", "dead")
        raise
    unit_path = str(body[0])
    values: list[str] = []
    for prop in ("LoadState", "ActiveState", "SubState"):
        values.append(str(await get_property(bus, SYSTEMD_BUS_NAME, unit_path, UNIT_INTERFACE, prop, timeout_s)))
    return UnitState(name, *values)


async def unit_states(
    names: list[str], *, bus_address: str | None = None, timeout_s: float = UNITS_TIMEOUT_S
) -> dict[str, UnitState | None]:
    """States of ``names`` within ``timeout_s`` overall (connect included).

    A unit maps to None when systemd could not tell in time: no bus, no
    systemd on it, an error, or the deadline passed before its answer came.
    """
    states: dict[str, UnitState | None] = dict.fromkeys(names)
    if not names:
        return states
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with open_bus(bus_address, timeout_s=min(timeout_s, CONNECT_TIMEOUT_S)) as conn:
        if conn.bus is None:
            log.debug("systemd not reachable", extra={"reason": conn.reason})
            return states
        bus = conn.bus
        try:
            async with asyncio.timeout_at(deadline):
                if not await name_has_owner(bus, SYSTEMD_BUS_NAME, timeout_s):
                    log.debug("systemd is not on this bus", extra={"address": conn.address})
                    return states
                async with asyncio.TaskGroup() as group:
                    for name in dict.fromkeys(names):
                        group.create_task(_fill(bus, name, states, timeout_s))
        except TimeoutError:
            log.warning("systemd did not answer in time", extra={"timeout_s": timeout_s})
        except (ConnectionError, DBusError) as exc:
            log.warning("cannot ask systemd", extra={"error": str(exc)})
    return states


async def _fill(bus: MessageBus, name: str, states: dict[str, UnitState | None], timeout_s: float) -> None:
    try:
        states[name] = await read_unit_state(bus, name, timeout_s)
    except (DBusError, ConnectionError, TimeoutError) as exc:
        log.warning("cannot read unit state", extra={"unit": name, "error": str(exc) or type(exc).__name__})


__all__ = [
    "BOX_UNITS",
    "ERROR_NO_SUCH_UNIT",
    "NOT_LOADED",
    "SYSTEMD_BUS_NAME",
    "UnitState",
    "read_unit_state",
    "unit_states",
]
