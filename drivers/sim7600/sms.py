"""SMS in text mode: receive (+CMTI -> AT+CMGR -> AT+CMGD) and send (AT+CMGS, '>' prompt, Ctrl-Z).

The driver sets ``AT+CSCS="UCS2"`` so Cyrillic survives both ways; the
charset actually in force is asked once (``AT+CSCS?``) rather than assumed,
because a number like ``1234`` means different things in IRA and in hex UCS-2.
Only single-part messages are sent (text mode hides the concatenation header;
see sim7600.md §6).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from drivers.sim7600.at_channel import AUTO_PREFIX, AtCommander, AutoPrefix
from drivers.sim7600.fields import quote, split_params
from drivers.sim7600.parsers import SmsMessage, parse_cmgl, parse_cmgr, parse_cmgs
from drivers.sim7600.result_codes import AtResponse
from drivers.sim7600.text_encoding import (
    GSM7_SINGLE_SMS_CHARS,
    UCS2_SINGLE_SMS_UNITS,
    is_gsm7,
    ucs2_hex_decode,
    ucs2_hex_encode,
    ucs2_units,
)
from drivers.sim7600.urc import NewSms

log = logging.getLogger(__name__)

#: ``AT+CSMP=<fo>,<vp>,<pid>,<dcs>``: SMS-SUBMIT with relative validity (167 = 24 h).
_CSMP_FIRST_OCTET = 17
_CSMP_VALIDITY = 167
DCS_GSM7 = 0
DCS_UCS2 = 8


class SmsError(RuntimeError):
    pass


class SmsService:
    def __init__(self, channel: AtCommander, *, command_timeout_s: float = 5.0, send_timeout_s: float = 60.0) -> None:
        self._channel = channel
        self.command_timeout_s = command_timeout_s
        self.send_timeout_s = send_timeout_s
        self._charset: str | None = None
        self._read_storage: str | None = None
        self._dcs: int | None = None

    async def charset(self) -> str:
        if self._charset is None:
            response = await self._command("AT+CSCS?")
            payload = response.first("+CSCS:") if response.ok else None
            params = split_params(payload) if payload else []
            self._charset = params[0].value.upper() if params else "IRA"
        return self._charset

    def forget_settings(self) -> None:
        """Call after the modem re-initialised (charset or storage may have changed)."""
        self._charset = None
        self._read_storage = None
        self._dcs = None

    # -------------------------------------------------------------- receive

    async def receive(self, notice: NewSms) -> SmsMessage | None:
        """Read the announced message and delete it from the modem once read."""
        message = await self.read(notice.index, notice.storage)
        if message is not None:
            await self.delete(notice.index, notice.storage)
        return message

    async def read(self, index: int, storage: str | None = None) -> SmsMessage | None:
        await self._select_storage(storage)
        response = await self._command(f"AT+CMGR={index}")
        if not response.ok:
            log.warning("AT+CMGR=%d -> %s", index, response.final)
            return None
        decode = await self._decoder()
        return parse_cmgr(response.lines, index=index, decode=decode, storage=storage or self._read_storage)

    async def delete(self, index: int, storage: str | None = None) -> bool:
        await self._select_storage(storage)
        response = await self._command(f"AT+CMGD={index}")
        if not response.ok:
            log.warning("AT+CMGD=%d -> %s", index, response.final)
        return response.ok

    async def collect_stored(self) -> list[SmsMessage]:
        """Every message already in storage (arrived while nobody listened), deleted after reading."""
        response = await self._command('AT+CMGL="ALL"')
        if not response.ok and await self.charset() == "UCS2":
            # Some firmware wants even the <stat> filter in hex UCS-2 once CSCS is UCS2.
            response = await self._command(f"AT+CMGL={quote(ucs2_hex_encode('ALL'))}")
        if not response.ok:
            log.warning('AT+CMGL="ALL" -> %s', response.final)
            return []
        messages = parse_cmgl(response.lines, decode=await self._decoder(), storage=self._read_storage)
        for message in messages:
            if message.index is not None:
                await self.delete(message.index)
        return messages

    # ----------------------------------------------------------------- send

    async def send(self, number: str, text: str) -> int | None:
        """Send one single-part SMS; returns the message reference (``+CMGS: <mr>``)."""
        number = number.strip()
        if not number or not all(ch.isdigit() or ch in "+*#" for ch in number):
            raise SmsError(f"not a phone number: {number!r}")
        if not text:
            raise SmsError("empty message")
        charset = await self.charset()
        gsm = is_gsm7(text)
        if charset == "UCS2":
            if gsm and len(text) > GSM7_SINGLE_SMS_CHARS:
                raise SmsError(f"message longer than {GSM7_SINGLE_SMS_CHARS} characters (multi-part SMS not supported)")
            if not gsm and ucs2_units(text) > UCS2_SINGLE_SMS_UNITS:
                raise SmsError(
                    f"non-GSM message longer than {UCS2_SINGLE_SMS_UNITS} characters (multi-part SMS not supported)"
                )
            await self._set_dcs(DCS_GSM7 if gsm else DCS_UCS2)
            destination, payload = ucs2_hex_encode(number), ucs2_hex_encode(text)
        else:
            if not gsm:
                raise SmsError(f"text needs the UCS2 character set, modem is set to {charset}")
            if len(text) > GSM7_SINGLE_SMS_CHARS:
                raise SmsError(f"message longer than {GSM7_SINGLE_SMS_CHARS} characters (multi-part SMS not supported)")
            destination, payload = number, text
        response = await self._channel.command(
            f"AT+CMGS={quote(destination)}", timeout=self.send_timeout_s, payload=payload
        )
        if not response.ok:
            raise SmsError(f"sending to {number} failed: {response.final}")
        reference = response.first("+CMGS:")
        return parse_cmgs(reference) if reference is not None else None

    # -------------------------------------------------------------- helpers

    async def _decoder(self) -> Callable[[str], str]:
        charset = await self.charset()
        if charset == "UCS2":
            return _decode_ucs2
        return _identity

    async def _select_storage(self, storage: str | None) -> None:
        if storage is None or storage == self._read_storage:
            return
        response = await self._command(f"AT+CPMS={quote(storage)}")
        if response.ok:
            self._read_storage = storage
        else:
            log.warning("AT+CPMS=%r -> %s; reading from the current storage", storage, response.final)

    async def _set_dcs(self, dcs: int) -> None:
        if self._dcs == dcs:
            return
        response = await self._command(f"AT+CSMP={_CSMP_FIRST_OCTET},{_CSMP_VALIDITY},0,{dcs}")
        if not response.ok:
            raise SmsError(f"modem refused AT+CSMP (data coding {dcs}): {response.final}")
        self._dcs = dcs

    async def _command(
        self, command: str, *, timeout: float | None = None, prefix: str | AutoPrefix | None = AUTO_PREFIX
    ) -> AtResponse:
        return await self._channel.command(command, timeout=timeout or self.command_timeout_s, response_prefix=prefix)


def _identity(text: str) -> str:
    return text


def _decode_ucs2(text: str) -> str:
    decoded = ucs2_hex_decode(text)
    return text if decoded is None else decoded


__all__ = ["DCS_GSM7", "DCS_UCS2", "SmsError", "SmsService"]
