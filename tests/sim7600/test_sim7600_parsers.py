"""Parsers and URCs against the wire transcripts quoted in docs/sim7600.md."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drivers.sim7600.fields import Param, split_params
from drivers.sim7600.framing import PROMPT, LineFramer
from drivers.sim7600.parsers import (
    CallListDirection,
    CallStat,
    RegistrationStatus,
    SimStatus,
    decode_number,
    parse_ati,
    parse_clcc,
    parse_clcc_entry,
    parse_clip,
    parse_cmgl,
    parse_cmgr,
    parse_cmgs,
    parse_cnum,
    parse_cops,
    parse_cpin,
    parse_csq,
    parse_registration,
    rssi_to_dbm,
    sim_status_from_error,
)
from drivers.sim7600.result_codes import FinalKind, parse_final
from drivers.sim7600.text_encoding import is_gsm7, ucs2_hex_decode, ucs2_hex_encode
from drivers.sim7600.urc import (
    CallerIdUrc,
    CallListUrc,
    CRing,
    DtmfReceived,
    MissedCall,
    ModemReady,
    NewSms,
    NoCarrier,
    PhonebookReady,
    RegistrationUrc,
    Ring,
    SimStatusUrc,
    SmsReady,
    VoiceCallBegin,
    VoiceCallEnd,
    parse_urc,
)

# ------------------------------------------------------------------ framing


def test_csq_answer_as_on_the_wire() -> None:
    framer = LineFramer()
    assert framer.feed(b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n") == ["+CSQ: 21,99", "OK"]


@pytest.mark.parametrize("wire", [b"\r\n+CRING: VOICE\r\n", b"\r\r\n+CRING: VOICE\r\r\n"])
def test_doubled_cr_urcs_frame_the_same(wire: bytes) -> None:
    assert LineFramer().feed(wire) == ["+CRING: VOICE"]
    assert parse_urc("+CRING: VOICE") == CRing("VOICE")


def test_echo_line_ends_with_bare_cr() -> None:
    assert LineFramer().feed(b"AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\nOK\r\n") == ["AT+CSQ", "+CSQ: 17,99", "OK"]


def test_prompt_is_reported_only_when_expected() -> None:
    framer = LineFramer()
    assert framer.feed(b"\r\n> ") == []
    framer = LineFramer()
    framer.expect_prompt = True
    assert framer.feed(b'AT+CMGS="+79161234567"\r\r\n> ') == ['AT+CMGS="+79161234567"', PROMPT]
    framer.expect_prompt = True  # a URC right behind the prompt, in the same read
    assert framer.feed(b"\r\n> \r\nSMS DONE\r\n") == [PROMPT, "SMS DONE"]


def test_byte_at_a_time_and_garbage() -> None:
    framer = LineFramer(max_line_bytes=32)
    out: list[object] = []
    for byte in b"\r\nRING\r\n\xff\xfe\r\n" + b"x" * 100 + b"\r\nOK\r\n":
        out += framer.feed(bytes([byte]))
    assert out == ["RING", "OK"]
    assert framer.rejected_lines == 2


# ------------------------------------------------------------ final results


@pytest.mark.parametrize(
    ("line", "kind", "code", "text"),
    [
        ("OK", FinalKind.OK, None, None),
        ("ERROR", FinalKind.ERROR, None, None),
        ("+CME ERROR: 10", FinalKind.CME_ERROR, 10, None),
        ("+CME ERROR: SIM not inserted", FinalKind.CME_ERROR, None, "SIM not inserted"),
        ("+CMS ERROR: 321", FinalKind.CMS_ERROR, 321, None),
        ("NO CARRIER", FinalKind.NO_CARRIER, None, None),
        ("BUSY", FinalKind.BUSY, None, None),
        ("NO ANSWER", FinalKind.NO_ANSWER, None, None),
    ],
)
def test_final_result_codes(line: str, kind: FinalKind, code: int | None, text: str | None) -> None:
    final = parse_final(line)
    assert final is not None and (final.kind, final.code, final.text) == (kind, code, text)


def test_not_final() -> None:
    assert parse_final("OKAY") is None and parse_final("+CSQ: 1,2") is None


# ------------------------------------------------------------------ queries


@pytest.mark.parametrize(
    ("payload", "dbm"), [("21,99", -71), ("17,99", -79), ("0,0", -113), ("31,99", -51), ("99,99", None)]
)
def test_csq_to_dbm(payload: str, dbm: int | None) -> None:
    quality = parse_csq(payload)
    assert quality is not None and quality.dbm == dbm


def test_rssi_range() -> None:
    assert rssi_to_dbm(100) == -116 and rssi_to_dbm(191) == -25 and rssi_to_dbm(50) is None


@pytest.mark.parametrize(
    ("payload", "status", "act"),
    [
        ("0,1", RegistrationStatus.HOME, None),
        ("0,5", RegistrationStatus.ROAMING, None),
        ("0,2", RegistrationStatus.SEARCHING, None),
        ("0,3", RegistrationStatus.DENIED, None),
        ("0,0", RegistrationStatus.NOT_REGISTERED, None),
        ('2,1,"1A2B","01C3D4E5",7', RegistrationStatus.HOME, 7),
        ("5", RegistrationStatus.ROAMING, None),  # URC with n=1
        ('1,"1A2B","01C3D4E5",7', RegistrationStatus.HOME, 7),  # URC with n=2
    ],
)
def test_registration(payload: str, status: RegistrationStatus, act: int | None) -> None:
    registration = parse_registration(payload)
    assert registration is not None
    assert registration.status is status and registration.access_technology == act


def test_cops() -> None:
    operator = parse_cops('0,0,"MegaFon",7')
    assert operator is not None and operator.name == "MegaFon" and operator.access_technology_name == "LTE"
    bare = parse_cops("0")
    assert bare is not None and bare.name is None


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ("READY", SimStatus.READY),
        ("SIM PIN", SimStatus.PIN_REQUIRED),
        ("SIM PUK", SimStatus.PUK_REQUIRED),
        ("PH-SIM PIN", SimStatus.LOCKED),
        ("weird", SimStatus.UNKNOWN),
    ],
)
def test_cpin(payload: str, status: SimStatus) -> None:
    assert parse_cpin(payload) is status


def test_sim_status_from_cme() -> None:
    assert sim_status_from_error(parse_final("+CME ERROR: 10")) is SimStatus.ABSENT  # type: ignore[arg-type]
    assert sim_status_from_error(parse_final("+CME ERROR: SIM not inserted")) is SimStatus.ABSENT  # type: ignore[arg-type]
    assert sim_status_from_error(parse_final("ERROR")) is None  # type: ignore[arg-type]


def test_cnum() -> None:
    assert parse_cnum(['"","+79161112233",145'])[0].number == "+79161112233"
    assert parse_cnum([]) == []
    hex_number = ucs2_hex_encode("+79161112233")
    assert parse_cnum([f'"","{hex_number}",145'])[0].number == "+79161112233"


def test_clcc_examples() -> None:
    entry = parse_clcc_entry('1,1,0,0,0,"123456789",161')
    assert entry is not None
    assert (entry.index, entry.direction, entry.stat, entry.number, entry.number_type) == (
        1,
        CallListDirection.INCOMING,
        CallStat.ACTIVE,
        "123456789",
        161,
    )
    ringing = parse_clcc_entry('4,1,4,0,0,"08020866256",128')
    assert ringing is not None and ringing.stat is CallStat.INCOMING and ringing.is_voice
    assert parse_clcc(['4,1,6,0,0,"08020866256",128', "garbage"])[0].stat is CallStat.DISCONNECTED
    assert parse_clcc_entry("1,1,9,0,0") is None


def test_clip_and_withheld() -> None:
    caller = parse_clip('"+79161234567",145,,,,0')
    assert caller is not None and caller.number == "+79161234567" and not caller.withheld
    hidden = parse_clip('"",128,,,,1')
    assert hidden is not None and hidden.number is None and hidden.withheld
    unavailable = parse_clip('"",128,,,,2')
    assert unavailable is not None and unavailable.withheld
    assert parse_clip("1,1") is None  # the AT+CLIP? answer, not a caller ID


def test_cmgr_text_mode() -> None:
    lines = ['+CMGR: "REC UNREAD","+79161234567","","24/11/24,12:34:56+12"', "Call me back"]
    message = parse_cmgr(lines, index=3)
    assert message is not None
    assert (message.index, message.status, message.sender, message.text) == (
        3,
        "REC UNREAD",
        "+79161234567",
        "Call me back",
    )
    assert message.timestamp is not None and message.timestamp.utcoffset() == timedelta(hours=3)
    assert (message.timestamp.year, message.timestamp.hour) == (2024, 12)


def test_cmgr_ucs2() -> None:
    lines = [
        f'+CMGR: "REC UNREAD","{ucs2_hex_encode("+79161234567")}","","24/11/24,12:34:56+12"',
        ucs2_hex_encode("Привет"),
    ]
    message = parse_cmgr(lines, decode=lambda s: ucs2_hex_decode(s) or s)
    assert message is not None and message.text == "Привет" and message.sender == "+79161234567"


def test_cmgl_two_messages() -> None:
    lines = [
        '+CMGL: 0,"REC READ","+79161234567","","24/11/24,12:34:56+12"',
        "first",
        "second line",
        '+CMGL: 4,"REC UNREAD","+79160000000","","24/11/25,08:00:00-08"',
        "OK it is",
    ]
    first, second = parse_cmgl(lines)
    assert (first.index, first.text) == (0, "first\nsecond line")
    assert (second.index, second.text) == (4, "OK it is")
    assert second.timestamp is not None and second.timestamp.utcoffset() == timedelta(hours=-2)


def test_cmgs_and_ati() -> None:
    assert parse_cmgs("12") == 12
    info = parse_ati(
        [
            "Manufacturer: SIMCOM INCORPORATED",
            "Model: SIMCOM_SIM7600G-H",
            "Revision: SIM7600M22_V2.0",
            "IMEI: 861234567890123",
            "+GCAP: +CGSM",
        ]
    )
    assert (info.manufacturer, info.model, info.revision, info.imei) == (
        "SIMCOM INCORPORATED",
        "SIMCOM_SIM7600G-H",
        "SIM7600M22_V2.0",
        "861234567890123",
    )


def test_fields_with_quoted_commas() -> None:
    assert split_params('1,"a,b",,3') == [Param("1", False), Param("a,b", True), Param("", False), Param("3", False)]
    assert split_params('"unterminated') == [Param("unterminated", True)]
    assert split_params("") == []


def test_numbers_and_charsets() -> None:
    assert decode_number("002B0037") == "+7"
    assert decode_number("1234") == "1234"  # not hex UCS-2 of phone characters
    assert decode_number("") is None
    assert is_gsm7("Call me @ 5") and not is_gsm7("Привет")


# --------------------------------------------------------------------- URCs


@pytest.mark.parametrize(
    ("line", "urc"),
    [
        ("RING", Ring()),
        ("VOICE CALL: BEGIN", VoiceCallBegin()),
        ("VOICE CALL: END: 000008", VoiceCallEnd(8)),
        ("VOICE CALL: END: 000041", VoiceCallEnd(41)),
        ("VOICE CALL: END", VoiceCallEnd(None)),
        ("NO CARRIER", NoCarrier()),
        ("MISSED_CALL: 11:01AM 07712345678", MissedCall("11:01AM", "07712345678")),
        ("MISSED_CALL: 11:53AM 08020866256", MissedCall("11:53AM", "08020866256")),
        ('+CMTI: "SM",3', NewSms("SM", 3)),
        ('+CMTI: "ME",0', NewSms("ME", 0)),
        ("+RXDTMF: 8", DtmfReceived("8")),
        ("+RXDTMF: *", DtmfReceived("*")),
        ("+RXDTMF: #", DtmfReceived("#")),
        ("+RXDTMF: A", DtmfReceived("A")),
        ("RDY", ModemReady()),
        ("+CPIN: READY", SimStatusUrc(SimStatus.READY)),
        ("+CPIN: SIM PIN", SimStatusUrc(SimStatus.PIN_REQUIRED)),
        ("SMS DONE", SmsReady()),
        ("PB DONE", PhonebookReady()),
    ],
)
def test_urcs(line: str, urc: object) -> None:
    assert parse_urc(line) == urc


def test_call_urcs_with_payloads() -> None:
    clip = parse_urc('+CLIP: "+79161234567",145,,,,0')
    assert isinstance(clip, CallerIdUrc) and clip.caller.number == "+79161234567"
    clcc = parse_urc('+CLCC: 4,1,4,0,0,"08020866256",128')
    assert isinstance(clcc, CallListUrc) and clcc.entry.stat is CallStat.INCOMING
    creg = parse_urc("+CREG: 5")
    assert isinstance(creg, RegistrationUrc) and creg.registration.status is RegistrationStatus.ROAMING


@pytest.mark.parametrize(
    "line", ["+CSQ: 21,99", "+CLIP: 1,1", "+CREG: 0,1", "+RXDTMF: 12", "VOICE CALL: MAYBE", "hello", "+CPIN: ???"]
)
def test_not_urcs(line: str) -> None:
    assert parse_urc(line) is None


def test_incoming_call_transcript() -> None:
    """[PHONEFRONT] incoming call, answered, ended by the caller (sim7600.md §4.1)."""
    wire = (
        b'\r\nRING\r\n\r\n+CLCC: 4,1,4,0,0,"08020866256",128\r\n'
        b"\r\nVOICE CALL: BEGIN\r\n\r\nOK\r\n"
        b'\r\n+CLCC: 4,1,0,0,0,"08020866256",128\r\n'
        b'\r\n+CLCC: 4,1,6,0,0,"08020866256",128\r\n\r\nVOICE CALL: END: 000008\r\n'
    )
    lines = [line for line in LineFramer().feed(wire) if isinstance(line, str)]
    urcs = [parse_urc(line) for line in lines]
    assert urcs[0] == Ring()
    assert isinstance(urcs[1], CallListUrc) and urcs[1].entry.stat is CallStat.INCOMING
    assert urcs[2] == VoiceCallBegin() and lines[3] == "OK" and urcs[3] is None
    assert isinstance(urcs[5], CallListUrc) and urcs[5].entry.stat is CallStat.DISCONNECTED
    assert urcs[6] == VoiceCallEnd(8)
