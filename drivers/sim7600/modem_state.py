"""Modem bring-up and status: init sequence, SIM/PIN, registration, operator, signal.

``ModemStateTracker`` runs the init sequence of sim7600.md §8 step 2 on a
fresh connection and then keeps a typed ``ModemState`` snapshot current from
periodic queries and from URCs (``+CPIN:``, ``+CREG:``, ``RDY``...).
Settings that fail early (SMS commands before ``SMS DONE``, anything before the
SIM is ready) are retried on every refresh until they succeed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from typing import Final

from drivers.sim7600.at_channel import AUTO_PREFIX, AtCommander, AutoPrefix
from drivers.sim7600.fields import quote
from drivers.sim7600.parsers import (
    ModemInfo,
    Registration,
    RegistrationStatus,
    SimStatus,
    parse_ati,
    parse_cnum,
    parse_cops,
    parse_cpin,
    parse_csq,
    parse_registration,
    sim_status_from_error,
)
from drivers.sim7600.ports import ModemPorts
from drivers.sim7600.result_codes import AtChannelClosedError, AtResponse, AtTimeoutError
from drivers.sim7600.urc import ModemReady, RegistrationUrc, SimStatusUrc, SmsReady, Urc

log = logging.getLogger(__name__)

SMS_CHARSETS: Final = ("UCS2", "IRA", "GSM")


@dataclass(frozen=True, slots=True)
class ModemState:
    connected: bool = False
    sim: SimStatus = SimStatus.UNKNOWN
    registration: RegistrationStatus = RegistrationStatus.UNKNOWN
    operator: str | None = None
    access_technology: str | None = None
    signal_dbm: int | None = None
    own_number: str | None = None
    ports: ModemPorts | None = None
    info: ModemInfo = field(default_factory=ModemInfo)
    pcm_supported: bool | None = None
    sms_ready: bool = False
    problems: tuple[str, ...] = ()

    @property
    def registered(self) -> bool:
        return self.registration.registered


@dataclass(frozen=True, slots=True)
class InitOptions:
    sim_pin: str | None = None
    boot_timeout_s: float = 60.0  # poll AT until OK for this long
    probe_timeout_s: float = 1.0
    command_timeout_s: float = 5.0
    sim_ready_timeout_s: float = 15.0
    sms_charset: str = "UCS2"

    def __post_init__(self) -> None:
        if self.sms_charset not in SMS_CHARSETS:
            raise ValueError(f"sms_charset must be one of {SMS_CHARSETS}")
        if self.sim_pin is not None and not (self.sim_pin.isdigit() and 4 <= len(self.sim_pin) <= 8):
            raise ValueError("SIM PIN must be 4 to 8 digits")


class ModemNotRespondingError(TimeoutError):
    pass


@dataclass(slots=True)
class PinGuard:
    """Remembers a PIN the SIM refused, across reconnects and modem reboots: it is never sent twice.

    Three wrong PINs lock the SIM behind its PUK, and a reboot loop must not spend them.
    """

    rejected: str | None = None


#: Sent once per connection; failures are tolerated (and logged).
CALL_SETTINGS: Final = ("AT+CLIP=1", "AT+CLCC=1", "AT+CVHU=0")
OPTIONAL_SETTINGS: Final = ("AT+DDET=1",)  # DTMF detection: ERROR on some firmware, ignore it


def sms_settings(charset: str) -> tuple[str, ...]:
    return ("AT+CMGF=1", f"AT+CSCS={quote(charset)}", "AT+CNMI=2,1,0,0,0")


_SIM_PROBLEMS: Final = {
    SimStatus.ABSENT: "no SIM card inserted (AT+CPIN? says SIM not inserted)",
    SimStatus.PUK_REQUIRED: "SIM is PUK-locked; unlock it in a phone (the driver never enters a PUK)",
    SimStatus.LOCKED: "SIM/network personalisation lock active; the driver cannot unlock it",
    SimStatus.ERROR: "SIM failure reported by the modem",
}


class ModemStateTracker:
    def __init__(
        self,
        channel: AtCommander,
        ports: ModemPorts | None = None,
        options: InitOptions | None = None,
        pin_guard: PinGuard | None = None,
    ) -> None:
        self._channel = channel
        self._options = options or InitOptions()
        self._pin_guard = pin_guard or PinGuard()
        self._state = ModemState(connected=True, ports=ports)
        self._problems: dict[str, str] = {}
        self._pending_settings: list[str] = []
        self._pin_attempted = False
        self._cnum_attempts = 0
        self._creg: Registration | None = None
        self._cereg: Registration | None = None
        self.needs_reinit = False

    @property
    def state(self) -> ModemState:
        return self._state

    def set_problem(self, key: str, text: str | None) -> bool:
        if text is None:
            changed = self._problems.pop(key, None) is not None
        else:
            changed = self._problems.get(key) != text
            self._problems[key] = text
        if changed:
            self._state = replace(self._state, problems=tuple(self._problems.values()))
        return changed

    # ------------------------------------------------------------- bring-up

    async def wait_responsive(self) -> None:
        """Poll ``AT`` until ``OK`` (boot URCs may be long gone; never wait for them)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.boot_timeout_s
        while True:
            try:
                response = await self._channel.command("AT", timeout=self._options.probe_timeout_s)
                if response.ok:
                    return
            except AtTimeoutError:
                pass
            if loop.time() >= deadline:
                raise ModemNotRespondingError(
                    f"modem did not answer AT within {self._options.boot_timeout_s:g} s "
                    "(wrong port, modem still booting, or another program owns the port)"
                )
            await asyncio.sleep(0.1)

    async def initialize(self) -> ModemState:
        await self.wait_responsive()
        self.needs_reinit = False
        await self._send("ATE0")
        await self._send("AT+CMEE=2")
        ati = await self._query("ATI", prefix=None)
        if ati is not None and ati.ok:
            self._state = replace(self._state, info=parse_ati(ati.lines))
        await self._update_sim()
        self._pending_settings = []
        for command in CALL_SETTINGS:
            if not await self._send(command):
                self._pending_settings.append(command)
        for command in OPTIONAL_SETTINGS:
            if not await self._send(command):
                log.info("%s refused; DTMF from callers may not be reported", command)
        for command in sms_settings(self._options.sms_charset):
            if not await self._send(command):
                self._pending_settings.append(command)
        await self._probe_pcm()
        return await self.refresh()

    async def _probe_pcm(self) -> None:
        probe = await self._query("AT+CPCMREG=?")
        supported = probe is not None and probe.ok
        self._state = replace(self._state, pcm_supported=supported)
        self.set_problem(
            "pcm", None if supported else "modem does not accept AT+CPCMREG: no voice audio over USB on this firmware"
        )
        if supported:
            await self._send("AT+CPCMREG=0")  # clear a leftover PCM session

    async def _update_sim(self) -> None:
        status = await self._read_sim_status()
        if status is SimStatus.PIN_REQUIRED:
            status = await self._enter_pin()
        self._apply_sim(status)

    async def _read_sim_status(self) -> SimStatus:
        response = await self._query("AT+CPIN?")
        if response is None:
            return self._state.sim
        if response.ok:
            payload = response.first("+CPIN:")
            return parse_cpin(payload) if payload is not None else SimStatus.UNKNOWN
        return sim_status_from_error(response.final) or SimStatus.UNKNOWN

    async def _enter_pin(self) -> SimStatus:
        pin = self._options.sim_pin
        if pin is None:
            self.set_problem("sim", "SIM needs a PIN: put it in the environment variable named by modem.pin_env")
            return SimStatus.PIN_REQUIRED
        if self._pin_guard.rejected == pin:
            self.set_problem("sim", "SIM PIN rejected earlier; not retrying it, to protect against a PUK lock")
            return SimStatus.PIN_REQUIRED
        if self._pin_attempted:
            return SimStatus.PIN_REQUIRED
        self._pin_attempted = True
        response = await self._query(f"AT+CPIN={quote(pin)}", prefix=None)
        if response is None or not response.ok:
            self._pin_guard.rejected = pin  # also on no answer: the attempt may have counted
            detail = "no answer" if response is None else str(response.final)
            self.set_problem("sim", f"SIM PIN rejected ({detail}); not retrying, to protect against a PUK lock")
            return SimStatus.PIN_REQUIRED
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.sim_ready_timeout_s
        while loop.time() < deadline:
            status = await self._read_sim_status()
            if status is not SimStatus.PIN_REQUIRED and status is not SimStatus.BUSY:
                return status
            await asyncio.sleep(0.25)
        return SimStatus.BUSY

    def _apply_sim(self, status: SimStatus) -> bool:
        if status is SimStatus.READY or status is SimStatus.BUSY or status is SimStatus.UNKNOWN:
            self.set_problem("sim", None)
        elif status in _SIM_PROBLEMS:
            self.set_problem("sim", _SIM_PROBLEMS[status])
        elif status is SimStatus.PIN_REQUIRED and "sim" not in self._problems:
            self.set_problem("sim", "SIM needs a PIN")
        if status is self._state.sim:
            return False
        self._state = replace(self._state, sim=status)
        return True

    # -------------------------------------------------------------- polling

    async def refresh(self) -> ModemState:
        """Query everything the snapshot holds; returns the new snapshot."""
        if self._state.sim is not SimStatus.READY:
            await self._update_sim()
        signal = await self._query("AT+CSQ")
        if signal is not None and signal.ok and (payload := signal.first("+CSQ:")) is not None:
            quality = parse_csq(payload)
            if quality is not None:
                self._state = replace(self._state, signal_dbm=quality.dbm)
        for command, prefix in (("AT+CREG?", "+CREG:"), ("AT+CEREG?", "+CEREG:")):
            response = await self._query(command)
            if response is not None and response.ok and (payload := response.first(prefix)) is not None:
                self._set_registration(prefix[1:-1], parse_registration(payload))
        operator = await self._query("AT+COPS?")
        if operator is not None and operator.ok and (payload := operator.first("+COPS:")) is not None:
            parsed = parse_cops(payload)
            if parsed is not None:
                self._state = replace(
                    self._state, operator=parsed.name, access_technology=parsed.access_technology_name
                )
        if self._state.own_number is None and self._state.sim is SimStatus.READY and self._cnum_attempts < 3:
            self._cnum_attempts += 1
            cnum = await self._query("AT+CNUM")
            if cnum is not None and cnum.ok:
                numbers = parse_cnum(cnum.prefixed("+CNUM:"))
                if numbers:
                    self._state = replace(self._state, own_number=numbers[0].number)
        await self._retry_pending_settings()
        return self._state

    async def _retry_pending_settings(self) -> None:
        still_failing: list[str] = []
        for command in self._pending_settings:
            if not await self._send(command):
                still_failing.append(command)
        self._pending_settings = still_failing
        sms_ready = not any(cmd in still_failing for cmd in sms_settings(self._options.sms_charset))
        if sms_ready != self._state.sms_ready:
            self._state = replace(self._state, sms_ready=sms_ready)
        self.set_problem(
            "settings", f"modem refused {', '.join(still_failing)} (will retry)" if still_failing else None
        )

    def _set_registration(self, technology: str, registration: Registration | None) -> bool:
        if registration is None:
            return False
        if technology == "CEREG":
            self._cereg = registration
        elif technology == "CREG":
            self._creg = registration
        else:
            return False
        candidates = [r for r in (self._creg, self._cereg) if r is not None]
        registered = [r for r in candidates if r.registered]
        best = (registered or candidates)[0]
        if best.status is self._state.registration:
            return False
        self._state = replace(self._state, registration=best.status)
        return True

    # ------------------------------------------------------------------ URCs

    def apply_urc(self, urc: Urc) -> bool:
        """Fold a URC into the snapshot; True when the snapshot changed."""
        if isinstance(urc, SimStatusUrc):
            return self._apply_sim(urc.status)
        if isinstance(urc, RegistrationUrc):
            return self._set_registration(urc.technology, urc.registration)
        if isinstance(urc, ModemReady):
            log.warning("modem rebooted (RDY): settings are lost, re-initialising")
            self.needs_reinit = True
            self._pin_attempted = False
            return self._apply_sim(SimStatus.UNKNOWN)
        if isinstance(urc, SmsReady) and self._pending_settings:
            log.info("SMS DONE: retrying SMS settings on the next refresh")
        return False

    # --------------------------------------------------------------- helpers

    async def _query(self, command: str, *, prefix: str | AutoPrefix | None = AUTO_PREFIX) -> AtResponse | None:
        """Send a command; None on timeout, AtChannelClosedError propagates."""
        try:
            response = await self._channel.command(
                command, timeout=self._options.command_timeout_s, response_prefix=prefix
            )
        except AtTimeoutError:
            log.warning("%s: no answer within %.1f s", command, self._options.command_timeout_s)
            return None
        except AtChannelClosedError:
            raise
        return response

    async def _send(self, command: str) -> bool:
        response = await self._query(command, prefix=None)
        if response is None:
            return False
        if not response.ok:
            log.info("%s -> %s", command, response.final)
        return response.ok


__all__ = [
    "CALL_SETTINGS",
    "OPTIONAL_SETTINGS",
    "InitOptions",
    "ModemNotRespondingError",
    "ModemState",
    "ModemStateTracker",
    "PinGuard",
    "sms_settings",
]
