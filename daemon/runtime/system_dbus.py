"""A small asyncio helper around dbus-fast's ``MessageBus`` for the system bus.

Production talks to the system bus (``DBUS_SYSTEM_BUS_ADDRESS`` or the
well-known socket); tests pass the address of a private ``dbus-daemon``.
Containers and development machines often have no system bus at all, so
:func:`connect_bus` never raises for that: it returns a :class:`BusConnection`
whose ``bus`` is None and whose ``reason`` says why, and callers degrade.

Every call has an explicit timeout. Error replies raise dbus-fast's
:class:`~dbus_fast.DBusError` (``.type`` is the D-Bus error name); a closed
connection raises :class:`ConnectionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dbus_fast import BusType, DBusError, Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import AuthError, InvalidAddressError

log = logging.getLogger("secretary.dbus")

#: The system bus socket the D-Bus specification names when the environment is silent.
DEFAULT_SYSTEM_BUS_ADDRESS: Final = "unix:path=/var/run/dbus/system_bus_socket"
CONNECT_TIMEOUT_S: Final = 3.0
CALL_TIMEOUT_S: Final = 5.0
CLOSE_TIMEOUT_S: Final = 1.0

DBUS_NAME: Final = "org.freedesktop.DBus"
DBUS_PATH: Final = "/org/freedesktop/DBus"
PROPERTIES_INTERFACE: Final = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER_INTERFACE: Final = "org.freedesktop.DBus.ObjectManager"
#: Error names the bus itself returns when a destination is missing or refuses us.
ERROR_SERVICE_UNKNOWN: Final = "org.freedesktop.DBus.Error.ServiceUnknown"
ERROR_NAME_HAS_NO_OWNER: Final = "org.freedesktop.DBus.Error.NameHasNoOwner"
ERROR_ACCESS_DENIED: Final = "org.freedesktop.DBus.Error.AccessDenied"


def system_bus_address(environ: Mapping[str, str] | None = None) -> str:
    """``DBUS_SYSTEM_BUS_ADDRESS`` when set and non-empty, else the default socket."""
    environ = os.environ if environ is None else environ
    return environ.get("DBUS_SYSTEM_BUS_ADDRESS", "").strip() or DEFAULT_SYSTEM_BUS_ADDRESS


@dataclass(frozen=True, slots=True)
class BusConnection:
    """The outcome of :func:`connect_bus`: a connected bus, or None and why not."""

    bus: MessageBus | None
    address: str
    reason: str = ""  # empty when connected

    @property
    def connected(self) -> bool:
        return self.bus is not None and self.bus.connected


def _explain_connect_error(address: str, exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no D-Bus system bus at {address} (the socket does not exist; containers usually have none)"
    if isinstance(exc, ConnectionRefusedError):
        return f"no D-Bus daemon listening at {address} (connection refused)"
    if isinstance(exc, PermissionError):
        return f"not allowed to connect to the D-Bus bus at {address} ({exc.strerror or exc})"
    if isinstance(exc, InvalidAddressError):
        return f"invalid D-Bus address {address!r}: {exc}"
    if isinstance(exc, AuthError):
        return f"the D-Bus daemon at {address} refused authentication: {exc}"
    if isinstance(exc, TimeoutError):
        return f"the D-Bus bus at {address} did not complete the handshake in time"
    return f"cannot connect to the D-Bus bus at {address}: {type(exc).__name__}: {exc}"


async def connect_bus(address: str | None = None, *, timeout_s: float = CONNECT_TIMEOUT_S) -> BusConnection:
    """Connect to ``address`` (default: the system bus) within ``timeout_s``.

    Never raises for a missing, refusing or silent bus: the result then has
    ``bus=None`` and a human ``reason``. Cancellation propagates as usual.
    """
    target = address or system_bus_address()
    try:
        bus = MessageBus(bus_address=target, bus_type=BusType.SYSTEM, auth_timeout=timeout_s)
    except (InvalidAddressError, ValueError) as exc:
        return BusConnection(None, target, _explain_connect_error(target, exc))
    try:
        async with asyncio.timeout(timeout_s):
            await bus.connect()
    except TimeoutError as exc:
        # connect() closes its socket when it is interrupted, but make sure.
        bus.disconnect()
        return BusConnection(None, target, f"{_explain_connect_error(target, exc)} ({timeout_s:g} s)")
    except (OSError, ValueError, EOFError, DBusError) as exc:
        bus.disconnect()
        return BusConnection(None, target, _explain_connect_error(target, exc))
    log.debug("connected to D-Bus", extra={"address": target, "unique_name": bus.unique_name})
    return BusConnection(bus, target)


async def close_bus(bus: MessageBus, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Disconnect and wait (bounded) until the connection is really gone.

    Safe to call twice and from a cancelled task: the socket is shut down
    synchronously first, so the peer sees us leave even if the wait is cut short.
    """
    bus.disconnect()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            await bus.wait_for_disconnect()


@contextlib.asynccontextmanager
async def open_bus(
    address: str | None = None, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> AsyncIterator[BusConnection]:
    """``async with open_bus() as conn:`` -- ``conn.bus`` is None (with ``conn.reason``) when there is no bus."""
    conn = await connect_bus(address, timeout_s=timeout_s)
    try:
        yield conn
    finally:
        if conn.bus is not None:
            await close_bus(conn.bus)


async def call_method(
    bus: MessageBus,
    *,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[Any] = (),
    timeout_s: float = CALL_TIMEOUT_S,
    auto_start: bool = False,
) -> list[Any]:
    """Call a method and return the reply body.

    ``auto_start=False`` sets NO_AUTO_START, so asking about a service never
    launches it through bus activation. Raises :class:`DBusError` for an error
    reply, :class:`TimeoutError` after ``timeout_s``, :class:`ConnectionError`
    when the connection is (or goes) away.
    """
    if not bus.connected:
        raise ConnectionError("the D-Bus connection is closed")
    msg = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=list(body),
        flags=MessageFlag.NONE if auto_start else MessageFlag.NO_AUTOSTART,
    )
    try:
        async with asyncio.timeout(timeout_s):
            reply = await bus.call(msg)
    except TimeoutError:  # an OSError subclass, but no connection failure
        raise
    except (EOFError, OSError) as exc:
        raise ConnectionError(f"the D-Bus connection failed during {interface}.{member}: {exc}") from exc
    if reply is None:  # the connection was closed while the call was pending
        raise ConnectionError(f"the D-Bus connection closed during {interface}.{member}")
    if reply.message_type is MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise DBusError(reply.error_name or "org.freedesktop.DBus.Error.Failed", text, reply=reply)
    return list(reply.body)


async def name_has_owner(bus: MessageBus, name: str, timeout_s: float = CALL_TIMEOUT_S) -> bool:
    """Whether some connection owns ``name`` right now (never activates the service)."""
    body = await call_method(
        bus, destination=DBUS_NAME, path=DBUS_PATH, interface=DBUS_NAME,
        member="NameHasOwner", signature="s", body=[name], timeout_s=timeout_s,
    )
    return bool(body[0])


async def watch_name_owner(
    bus: MessageBus, name: str, on_owner: Callable[[str], None], timeout_s: float = CALL_TIMEOUT_S
) -> None:
    """Call ``on_owner(unique_name)`` each time ``name`` gets a new owner (a service (re)starting).

    Raises like :func:`call_method` when the bus refuses the match rule.
    """

    def on_signal(msg: Message) -> bool:
        if (msg.message_type is MessageType.SIGNAL and msg.member == "NameOwnerChanged"
                and msg.sender == DBUS_NAME and len(msg.body) == 3 and msg.body[0] == name and msg.body[2]):
            on_owner(msg.body[2])
        return False  # observe only

    bus.add_message_handler(on_signal)
    await call_method(
        bus, destination=DBUS_NAME, path=DBUS_PATH, interface=DBUS_NAME, member="AddMatch", signature="s",
        body=[f"type='signal',sender='{DBUS_NAME}',interface='{DBUS_NAME}',member='NameOwnerChanged',arg0='{name}'"],
        timeout_s=timeout_s,
    )


async def get_property(
    bus: MessageBus, destination: str, path: str, interface: str, name: str, timeout_s: float = CALL_TIMEOUT_S
) -> Any:
    """``org.freedesktop.DBus.Properties.Get``, with the variant unwrapped."""
    body = await call_method(
        bus, destination=destination, path=path, interface=PROPERTIES_INTERFACE,
        member="Get", signature="ss", body=[interface, name], timeout_s=timeout_s,
    )
    value = body[0]
    return value.value if isinstance(value, Variant) else value


async def get_managed_objects(
    bus: MessageBus, destination: str, path: str, timeout_s: float = CALL_TIMEOUT_S
) -> dict[str, dict[str, dict[str, Any]]]:
    """``org.freedesktop.DBus.ObjectManager.GetManagedObjects``, variants unwrapped."""
    body = await call_method(
        bus, destination=destination, path=path, interface=OBJECT_MANAGER_INTERFACE,
        member="GetManagedObjects", timeout_s=timeout_s,
    )
    objects: dict[str, dict[str, dict[str, Any]]] = {}
    for object_path, interfaces in body[0].items():
        objects[object_path] = {
            iface: {prop: (v.value if isinstance(v, Variant) else v) for prop, v in props.items()}
            for iface, props in interfaces.items()
        }
    return objects


__all__ = [
    "CALL_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "DEFAULT_SYSTEM_BUS_ADDRESS",
    "ERROR_ACCESS_DENIED",
    "ERROR_NAME_HAS_NO_OWNER",
    "ERROR_SERVICE_UNKNOWN",
    "BusConnection",
    "call_method",
    "close_bus",
    "connect_bus",
    "get_managed_objects",
    "get_property",
    "name_has_owner",
    "open_bus",
    "system_bus_address",
]
