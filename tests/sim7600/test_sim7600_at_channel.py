"""AT channel: framing, echo, finals, URCs inside responses, prompt, timeouts, closing."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import pytest

from drivers.sim7600.at_channel import AtChannel, default_response_prefix
from drivers.sim7600.result_codes import AtChannelClosedError, AtCommandError, AtTimeoutError, FinalKind
from drivers.sim7600.simulator import SimulatedModem, SimulatorConfig
from drivers.sim7600.urc import CallerIdUrc, NoCarrier, Ring, VoiceCallBegin, VoiceCallEnd

from .fake_modem import ScriptedModem, frame


def table(answers: dict[str, list[bytes]]) -> ScriptedModem:
    return ScriptedModem(lambda command: answers.get(command, [frame("ERROR")]))


async def test_info_lines_and_ok() -> None:
    modem = table({"AT+CSQ": [frame("+CSQ: 21,99", "OK")]})
    response = await modem.channel.command("AT+CSQ")
    assert response.ok and response.lines == ("+CSQ: 21,99",) and response.first("+CSQ:") == "21,99"


async def test_echo_is_dropped() -> None:
    modem = ScriptedModem(lambda c: [frame("+CSQ: 17,99"), frame("OK")], echo=True)
    response = await modem.channel.command("AT+CSQ")
    assert response.lines == ("+CSQ: 17,99",)


async def test_urc_inside_response_is_dispatched_not_collected() -> None:
    modem = table(
        {
            "ATA": [frame("VOICE CALL: BEGIN"), frame("OK")],
            "AT+CHUP": [b"\r\nRING\r", b"\n\r\nVOICE CALL: END: 000008\r\n\r\nOK\r\n"],
        }
    )
    assert (await modem.channel.command("ATA")).lines == ()
    assert (await modem.channel.command("AT+CHUP")).lines == ()
    assert modem.urcs == [VoiceCallBegin(), Ring(), VoiceCallEnd(8)]


async def test_no_carrier_is_a_urc_unless_a_call_command_waits() -> None:
    modem = table({"AT+CSQ": [frame("+CSQ: 9,99", "NO CARRIER", "OK")], "ATA": [frame("NO CARRIER")]})
    response = await modem.channel.command("AT+CSQ")
    assert response.ok and modem.urcs == [NoCarrier()]
    answer = await modem.channel.command("ATA")
    assert answer.final.kind is FinalKind.NO_CARRIER and modem.urcs == [NoCarrier()]


async def test_error_finals() -> None:
    modem = table(
        {
            'AT+CPIN="0000"': [frame("+CME ERROR: incorrect password")],
            "AT+CMGR=9": [frame("+CMS ERROR: 321")],
        }
    )
    bad_pin = await modem.channel.command('AT+CPIN="0000"')
    assert bad_pin.final.kind is FinalKind.CME_ERROR and bad_pin.final.text == "incorrect password"
    with pytest.raises(AtCommandError):
        bad_pin.raise_for_error()
    missing = await modem.channel.command("AT+CMGR=9")
    assert missing.final.kind is FinalKind.CMS_ERROR and missing.final.code == 321
    assert (await modem.channel.command("AT+NOPE")).final.kind is FinalKind.ERROR


async def test_own_prefix_lines_belong_to_the_command() -> None:
    clcc = '+CLCC: 1,1,0,0,0,"+79161234567",145'
    modem = table({"AT+CLCC": [frame(clcc, '+CLIP: "+79160000000",145,,,,0', "OK")]})
    response = await modem.channel.command("AT+CLCC")
    assert response.lines == (clcc,)
    assert len(modem.urcs) == 1 and isinstance(modem.urcs[0], CallerIdUrc)


async def test_sms_body_that_looks_like_a_result_code() -> None:
    modem = table({"AT+CMGR=1": [frame('+CMGR: "REC READ","+7916","","24/11/24,12:34:56+12"', "OK", "OK")]})
    response = await modem.channel.command("AT+CMGR=1")
    assert response.ok and response.lines[1] == "OK"


async def test_prompt_then_payload_then_ctrl_z() -> None:
    def reply(command: str) -> list[bytes]:
        if command.startswith("AT+CMGS="):
            return [b"\r\n> "]
        if command == "<payload>":
            return [frame("+CMGS: 7", "OK")]
        return [frame("ERROR")]

    modem = ScriptedModem(reply)
    response = await modem.channel.command('AT+CMGS="+79161234567"', payload="Hello")
    assert response.first("+CMGS:") == "7"
    assert modem.payloads == [b"Hello"]
    assert bytes(modem.transport.written).endswith(b"Hello\x1a")


async def test_timeout_then_late_answer_is_not_misattributed() -> None:
    modem = ScriptedModem(lambda c: [] if c == "AT+SLOW" else [frame("+CSQ: 5,99", "OK")])
    with pytest.raises(AtTimeoutError):
        await modem.channel.command("AT+SLOW", timeout=0.05)
    modem.feed_later([frame("+SLOW: late", "ERROR")])  # the late answer of the timed-out command
    response = await modem.channel.command("AT+CSQ")
    assert response.ok and response.lines == ("+CSQ: 5,99",)
    assert modem.channel.stats.stale_finals == 1


async def test_garbage_never_breaks_the_channel() -> None:
    modem = table({"AT": [b"\xff\xfe\x00garbage\r\n" + b"z" * 5000 + b"\r\n" + frame("OK")]})
    response = await modem.channel.command("AT")
    assert response.ok
    assert modem.channel.rejected_lines >= 2 and modem.channel.stats.internal_errors == 0


async def test_unsolicited_unknown_lines_are_skipped() -> None:
    modem = table({})
    modem.channel.data_received(b"\r\n+WHATEVER: 1\r\nhello\r\nOK\r\n")
    assert modem.urcs == [] and modem.channel.stats.unknown_lines == 2 and modem.channel.stats.stale_finals == 1


async def test_connection_lost_fails_the_command_in_flight() -> None:
    modem = ScriptedModem(lambda c: [])
    pending = asyncio.create_task(modem.channel.command("AT+CSQ", timeout=5))
    await asyncio.sleep(0.01)
    modem.channel.connection_lost(OSError("EIO"))
    with pytest.raises(AtChannelClosedError):
        await pending
    with pytest.raises(AtChannelClosedError):
        await modem.channel.command("AT")


def test_default_prefixes() -> None:
    assert default_response_prefix("AT+CSQ") == "+CSQ:"
    assert default_response_prefix("AT+CREG?") == "+CREG:"
    assert default_response_prefix("AT+CPCMREG=?") == "+CPCMREG:"
    assert default_response_prefix("AT+CMGR=3") == "+CMGR:"
    assert default_response_prefix('AT+CPIN="1234"') is None  # +CPIN: READY after it is a URC
    assert default_response_prefix("ATI") is None


async def test_commands_must_be_single_ascii_lines() -> None:
    modem = table({})
    for bad in ("AT\rATH", "ATD+79\n16;", "hello", 'AT+CMGS="Привет"'):
        with pytest.raises(ValueError):
            await modem.channel.command(bad)


async def test_over_a_real_pty_with_echo_on(tmp_path: Path) -> None:
    async with SimulatedModem(tmp_path / "at", tmp_path / "audio", SimulatorConfig()) as sim:
        await sim.wait_until(lambda: sim.booted, 2, "boot")
        urcs: list[object] = []
        channel = await AtChannel.open(str(tmp_path / "at"), urc_sink=urcs.append, default_timeout_s=2)
        try:
            assert (await channel.command("AT")).ok  # echo still on
            info = await channel.command("ATI")
            assert "Model: SIMCOM_SIM7600G-H" in info.lines
            assert (await channel.command("ATE0")).ok
            assert (await channel.command("AT+CSQ")).first("+CSQ:") == "21,99"
        finally:
            await channel.close()
        assert channel.closed


async def test_port_vanishing_closes_the_channel(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    channel = await AtChannel.open(os.ttyname(slave), exclusive=False)
    try:
        os.close(master)
        os.close(slave)
        lost = await asyncio.wait_for(channel.wait_closed(), 2)
        assert lost is not None and channel.closed
    finally:
        await channel.close()


async def test_prompt_with_a_urc_right_behind_it() -> None:
    def reply(command: str) -> list[bytes]:
        if command.startswith("AT+CMGS="):
            return [b"\r\n> \r\nSMS DONE\r\n"]
        if command == "<payload>":
            return [frame("+CMGS: 8", "OK")]
        return [frame("ERROR")]

    modem = ScriptedModem(reply)
    response = await modem.channel.command('AT+CMGS="+79161234567"', payload="Hi", timeout=1)
    assert response.first("+CMGS:") == "8"
    assert len(modem.urcs) == 1
