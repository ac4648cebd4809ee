"""SMS service details that the simulator run does not reach: charsets, limits, fallbacks."""

from __future__ import annotations

import pytest

from drivers.sim7600.sms import SmsError, SmsService
from drivers.sim7600.text_encoding import ucs2_hex_encode
from drivers.sim7600.urc import NewSms

from .fake_modem import FakeCommander


def commander(charset: str, extra: dict[str, tuple[list[str], str]] | None = None) -> FakeCommander:
    answers = {"AT+CSCS?": ([f'+CSCS: "{charset}"'], "OK"), **(extra or {})}
    return FakeCommander(lambda c: answers.get(c, ([], "OK")))


async def test_ira_charset_reads_plain_text_and_switches_storage() -> None:
    fake = commander("IRA", {"AT+CMGR=2": (['+CMGR: "REC UNREAD","1234","","24/11/24,12:34:56+12"', "hi 1234"], "OK")})
    service = SmsService(fake)  # type: ignore[arg-type]
    message = await service.receive(NewSms("ME", 2))
    assert message is not None and message.sender == "1234" and message.text == "hi 1234"  # not mistaken for hex
    assert fake.commands == ['AT+CPMS="ME"', "AT+CMGR=2", "AT+CSCS?", "AT+CMGD=2"]


async def test_failed_read_is_not_deleted() -> None:
    fake = commander("UCS2", {"AT+CMGR=5": ([], "+CMS ERROR: 321")})
    service = SmsService(fake)  # type: ignore[arg-type]
    assert await service.receive(NewSms("SM", 5)) is None
    assert "AT+CMGD=5" not in fake.commands


async def test_limits_and_charset_rules() -> None:
    ucs2 = SmsService(commander("UCS2"))  # type: ignore[arg-type]
    with pytest.raises(SmsError, match="multi-part"):
        await ucs2.send("+79161234567", "Я" * 71)
    with pytest.raises(SmsError, match="multi-part"):
        await ucs2.send("+79161234567", "x" * 161)
    with pytest.raises(SmsError, match="not a phone number"):
        await ucs2.send("call me", "x")
    ira = SmsService(commander("IRA"))  # type: ignore[arg-type]
    with pytest.raises(SmsError, match="UCS2"):
        await ira.send("+79161234567", "Привет")


async def test_send_refused_raises() -> None:
    number = ucs2_hex_encode("+79161234567")
    fake = commander("UCS2", {f'AT+CMGS="{number}"': ([], "+CMS ERROR: 500")})
    with pytest.raises(SmsError, match="500"):
        await SmsService(fake).send("+79161234567", "hello")  # type: ignore[arg-type]
    assert "AT+CSMP=17,167,0,0" in fake.commands


async def test_cmgl_falls_back_to_hex_stat_in_ucs2() -> None:
    hex_all = ucs2_hex_encode("ALL")
    fake = commander(
        "UCS2",
        {
            'AT+CMGL="ALL"': ([], "ERROR"),
            f'AT+CMGL="{hex_all}"': (
                [
                    f'+CMGL: 1,"REC UNREAD","{ucs2_hex_encode("+7916")}","","24/11/24,12:34:56+12"',
                    ucs2_hex_encode("ok"),
                ],
                "OK",
            ),
        },
    )
    messages = await SmsService(fake).collect_stored()  # type: ignore[arg-type]
    assert [(m.index, m.sender, m.text) for m in messages] == [(1, "+7916", "ok")]
    assert "AT+CMGD=1" in fake.commands
