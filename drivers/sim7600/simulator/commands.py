"""The AT command set of the simulated module, with SIM7600 response formats (sim7600.md §2-§6)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Final, Literal

from drivers.sim7600.fields import split_params, to_int
from drivers.sim7600.simulator.module_host import ModuleHost
from drivers.sim7600.simulator.sim_state import SentSms, SimCallStat

Mode = Literal["exec", "read", "test", "set"]

CME_TEXT: Final = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    16: "incorrect password",
    100: "unknown",
}
_EXTENDED: Final = re.compile(r"^\+([A-Za-z0-9]+)(.*)$")
#: Commands refused with "+CME ERROR: SIM PIN required" while the SIM is locked.
_NEEDS_SIM: Final = frozenset({"CNUM", "CMGR", "CMGL", "CMGS", "CMGD", "CPMS", "CSMP"})
_DTMF: Final = frozenset("0123456789*#ABCD")


class SimCommands:
    def __init__(self, modem: ModuleHost) -> None:
        self.m = modem

    # ------------------------------------------------------------ replies

    def ok(self) -> None:
        self.m.send_line("OK")

    def error(self) -> None:
        self.m.send_line("ERROR")

    def cme(self, code: int) -> None:
        cmee = self.m.settings.cmee
        if cmee == 0:
            self.error()
        elif cmee == 1:
            self.m.send_line(f"+CME ERROR: {code}")
        else:
            self.m.send_line(f"+CME ERROR: {CME_TEXT.get(code, 'unknown')}")

    def cms(self, code: int) -> None:
        self.m.send_line(f"+CMS ERROR: {code}")

    def lines(self, *lines: str) -> None:
        for line in lines:
            self.m.send_line(line)
        self.ok()

    # ----------------------------------------------------------- dispatch

    def handle(self, text: str) -> None:
        body = text[2:]
        if not body:
            self.ok()
            return
        match = _EXTENDED.match(body)
        if match is not None:
            name, rest = match.group(1).upper(), match.group(2)
            mode: Mode
            if rest == "":
                mode, args = "exec", ""
            elif rest == "?":
                mode, args = "read", ""
            elif rest == "=?":
                mode, args = "test", ""
            elif rest.startswith("="):
                mode, args = "set", rest[1:]
            else:
                self.error()
                return
            if name in _NEEDS_SIM and self.m.sim_locked:
                self.cme(11)
                return
            handler: Callable[[Mode, str], None] | None = getattr(self, f"cmd_{name.lower()}", None)
            if handler is None:
                self.error()
                return
            handler(mode, args)
            return
        self._basic(body)

    def _basic(self, body: str) -> None:
        upper = body.upper()
        if upper in ("E0", "E1", "E"):
            self.m.settings.echo = upper == "E1"
            self.ok()
        elif upper in ("I", "I0"):
            c = self.m.config
            self.lines(
                f"Manufacturer: {c.manufacturer}",
                f"Model: {c.model}",
                f"Revision: {c.revision}",
                f"IMEI: {c.imei}",
                "+GCAP: +CGSM",
            )
        elif upper == "A":
            self._answer()
        elif upper in ("H", "H0"):
            self._hang_up()
        elif upper.startswith("D"):
            self._dial(body[1:])
        elif upper in ("Z", "&F", "&W", "V1", "Q0"):
            self.ok()
        else:
            self.error()

    # -------------------------------------------------------------- calls

    def _answer(self) -> None:
        call = self.m.call
        if call is None or call.direction != 1 or call.stat is not SimCallStat.INCOMING:
            self.m.send_line("NO CARRIER")
            return
        self.m.send_line("VOICE CALL: BEGIN")  # inside ATA's response, as observed
        self.ok()
        self.m.connect(call)
        self.m.clcc_urc(call)

    def _hang_up(self) -> None:
        call = self.m.call
        if call is None:
            self.ok()
            return
        was_active = call.stat is SimCallStat.ACTIVE
        duration = self.m.call_duration_s(call)
        self.m.end_call_by_host()
        if was_active:
            self.m.send_line(f"VOICE CALL: END: {duration:06d}")
        self.ok()
        self.m.clcc_urc(call, SimCallStat.DISCONNECTED)

    def _dial(self, rest: str) -> None:
        if self.m.sim_locked:
            self.cme(11)
            return
        if not rest.endswith(";"):
            self.m.send_line("NO CARRIER")  # data calls are not simulated
            return
        number = rest[:-1].strip()
        if not number or self.m.call is not None:
            self.cme(3)
            return
        self.m.start_dial(number)
        self.ok()
        call = self.m.call
        assert call is not None
        self.m.clcc_urc(call)

    def cmd_chup(self, mode: Mode, args: str) -> None:
        if mode == "test":
            self.ok()
            return
        self._hang_up()

    def cmd_clcc(self, mode: Mode, args: str) -> None:
        s = self.m.settings
        if mode == "exec":
            call = self.m.call
            self.lines(*(() if call is None else (call.clcc_line(encode=self.m.encode_number),)))
        elif mode == "set":
            value = to_int(args)
            if value not in (0, 1):
                self.error()
                return
            s.clcc_urc = value == 1
            self.ok()
        elif mode == "read":
            self.lines(f"+CLCC: {int(s.clcc_urc)}")
        else:
            self.lines("+CLCC: (0-1)")

    def cmd_vts(self, mode: Mode, args: str) -> None:
        if mode == "test":
            self.lines("+VTS: (0-9,*,#,A,B,C,D)")
            return
        call = self.m.call
        if mode != "set" or call is None or call.stat is not SimCallStat.ACTIVE:
            self.cme(3)
            return
        params = split_params(args)
        tones = params[0].value if params else ""
        digits = [d.strip() for d in tones.split(",")] if params and params[0].quoted else [tones.strip()]
        if not digits or any(len(d) != 1 or d.upper() not in _DTMF for d in digits):
            self.cme(3)
            return
        self.m.dtmf_from_host.extend(d.upper() for d in digits)
        self.ok()

    def cmd_cpcmreg(self, mode: Mode, args: str) -> None:
        s = self.m.settings
        if mode == "test":
            self.lines("+CPCMREG: (0-1)")
        elif mode == "read":
            self.lines(f"+CPCMREG: {int(s.pcm)}")
        elif mode == "set":
            value = to_int(args.split(",", maxsplit=1)[0])
            if value == 1:
                call = self.m.call
                if call is None or call.stat is not SimCallStat.ACTIVE:
                    self.error()
                    return
                if call.pcm_failures_left > 0:
                    call.pcm_failures_left -= 1
                    self.error()
                    return
                s.pcm = True
            elif value == 0:
                s.pcm = False
            else:
                self.error()
                return
            self.m.update_audio()
            self.ok()
        else:
            self.error()

    def _accept(self, mode: Mode, current: str) -> None:
        if mode == "read":
            self.lines(current)
        else:
            self.ok()

    def cmd_cpcmfrm(self, mode: Mode, args: str) -> None:
        self._accept(mode, "+CPCMFRM: 0")

    def cmd_clvl(self, mode: Mode, args: str) -> None:
        self._accept(mode, "+CLVL: 5")

    def cmd_cmicgain(self, mode: Mode, args: str) -> None:
        self._accept(mode, "+CMICGAIN: 3")

    def cmd_coutgain(self, mode: Mode, args: str) -> None:
        self._accept(mode, "+COUTGAIN: 4")

    # ----------------------------------------------------------- settings

    def _flag(self, mode: Mode, args: str, name: str, attribute: str, allowed: tuple[int, ...] = (0, 1)) -> None:
        s = self.m.settings
        if mode == "set":
            value = to_int(args.split(",", maxsplit=1)[0])
            if value not in allowed:
                if name == "CMEE":
                    self.cme(3)
                else:
                    self.error()
                return
            current = getattr(s, attribute)
            setattr(s, attribute, bool(value) if isinstance(current, bool) else value)
            self.ok()
        elif mode == "read":
            self.lines(f"+{name}: {int(getattr(s, attribute))}")
        elif mode == "test":
            self.lines(f"+{name}: ({allowed[0]}-{allowed[-1]})")
        else:
            self.error()

    def cmd_cmee(self, mode: Mode, args: str) -> None:
        self._flag(mode, args, "CMEE", "cmee", (0, 1, 2))

    def cmd_clip(self, mode: Mode, args: str) -> None:
        if mode == "read":
            self.lines(f"+CLIP: {int(self.m.settings.clip)},1")
            return
        self._flag(mode, args, "CLIP", "clip")

    def cmd_cvhu(self, mode: Mode, args: str) -> None:
        self._flag(mode, args, "CVHU", "cvhu")

    def cmd_crc(self, mode: Mode, args: str) -> None:
        self._flag(mode, args, "CRC", "crc")

    def cmd_ddet(self, mode: Mode, args: str) -> None:
        if not self.m.config.ddet_supported:
            self.error()
            return
        self._flag(mode, args, "DDET", "ddet")

    def cmd_cmgf(self, mode: Mode, args: str) -> None:
        self._flag(mode, args, "CMGF", "cmgf")

    def cmd_cscs(self, mode: Mode, args: str) -> None:
        s = self.m.settings
        if mode == "set":
            params = split_params(args)
            value = params[0].value.upper() if params else ""
            if value not in ("IRA", "GSM", "UCS2"):
                self.cme(4)
                return
            s.cscs = value
            self.ok()
        elif mode == "read":
            self.lines(f'+CSCS: "{s.cscs}"')
        elif mode == "test":
            self.lines('+CSCS: ("IRA","GSM","UCS2")')
        else:
            self.error()

    def cmd_cnmi(self, mode: Mode, args: str) -> None:
        s = self.m.settings
        if mode == "set":
            values = [to_int(p.value) for p in split_params(args)]
            if len(values) >= 2 and values[1] is not None:
                s.cnmi_mt = values[1]
            self.ok()
        elif mode == "read":
            self.lines(f"+CNMI: 2,{s.cnmi_mt},0,0,0")
        else:
            self.ok()

    def cmd_csmp(self, mode: Mode, args: str) -> None:
        if mode == "set":
            values = [to_int(p.value) for p in split_params(args)]
            if len(values) >= 4 and values[3] is not None:
                self.m.settings.csmp_dcs = values[3]
            self.ok()
        elif mode == "read":
            self.lines(f"+CSMP: 17,167,0,{self.m.settings.csmp_dcs}")
        else:
            self.ok()

    def cmd_creg(self, mode: Mode, args: str) -> None:
        self._registration(mode, args, "CREG", "creg_n")

    def cmd_cereg(self, mode: Mode, args: str) -> None:
        self._registration(mode, args, "CEREG", "cereg_n")

    def _registration(self, mode: Mode, args: str, name: str, attribute: str) -> None:
        if mode == "read":
            stat = 0 if self.m.sim_locked or not self.m.config.sim_present else self.m.config.registration_stat
            self.lines(f"+{name}: {getattr(self.m.settings, attribute)},{stat}")
        else:
            self._flag(mode, args, name, attribute, (0, 1, 2))

    # ------------------------------------------------------------- status

    def cmd_cpin(self, mode: Mode, args: str) -> None:
        m = self.m
        if not m.config.sim_present:
            self.cme(10)
            return
        if mode == "read":
            self.lines("+CPIN: SIM PIN" if m.sim_locked else "+CPIN: READY")
        elif mode == "set":
            params = split_params(args)
            pin = params[0].value if params else ""
            if not m.sim_locked:
                self.cme(3)
            elif pin == m.config.sim_pin:
                m.sim_locked = False
                self.ok()
                m.spawn(m.sim_ready_urcs(), "sim-ready")
            else:
                self.cme(16)
        else:
            self.ok()

    def cmd_csq(self, mode: Mode, args: str) -> None:
        if mode == "exec":
            self.lines(f"+CSQ: {self.m.config.rssi},99")
        else:
            self.lines("+CSQ: (0-31,99),(0-7,99)")

    def cmd_cops(self, mode: Mode, args: str) -> None:
        c = self.m.config
        if mode == "read":
            registered = not self.m.sim_locked and c.sim_present and c.registration_stat in (1, 5)
            self.lines(f'+COPS: 0,0,"{c.operator}",{c.access_technology}' if registered else "+COPS: 0")
        elif mode == "test":
            self.lines(f'+COPS: (2,"{c.operator}","{c.operator}","25099",{c.access_technology}),,(0-4),(0-2)')
        else:
            self.ok()

    def cmd_cnum(self, mode: Mode, args: str) -> None:
        own = self.m.config.own_number
        if own is None:
            self.ok()
        else:
            self.lines(f'+CNUM: "","{self.m.encode_text(own)}",{145 if own.startswith("+") else 129}')

    def cmd_cpsi(self, mode: Mode, args: str) -> None:
        self.lines("+CPSI: LTE,Online,250-99,0x1A2B,12345678,100,EUTRAN-BAND3,1300,5,5,-94,-850,-550,15")

    def cmd_cgmi(self, mode: Mode, args: str) -> None:
        self.lines(self.m.config.manufacturer)

    def cmd_cgmm(self, mode: Mode, args: str) -> None:
        self.lines(self.m.config.model)

    def cmd_cgmr(self, mode: Mode, args: str) -> None:
        self.lines(f"+CGMR: {self.m.config.revision}")

    def cmd_cgsn(self, mode: Mode, args: str) -> None:
        self.lines(self.m.config.imei)

    def cmd_cfun(self, mode: Mode, args: str) -> None:
        if mode == "read":
            self.lines("+CFUN: 1")
        elif mode == "set" and args.replace(" ", "") == "1,1":
            self.ok()
            self.m.spawn(self.m.reset(), "reset")
        else:
            self.ok()

    def cmd_creset(self, mode: Mode, args: str) -> None:
        self.ok()
        self.m.spawn(self.m.reset(), "reset")

    # ---------------------------------------------------------------- SMS

    def _text_mode_only(self) -> bool:
        if self.m.settings.cmgf != 1:
            self.cms(302)  # the simulator speaks text mode only
            return False
        return True

    def cmd_cpms(self, mode: Mode, args: str) -> None:
        used = len(self.m.sms_store)
        if mode == "set":
            params = split_params(args)
            storage = params[0].value.upper() if params else "SM"
            if storage not in ("SM", "ME", "MT"):
                self.cms(302)
                return
            self.m.settings.read_storage = storage
            self.lines(f"+CPMS: {used},50,{used},50,{used},50")
        elif mode == "read":
            storage = self.m.settings.read_storage
            self.lines(f'+CPMS: "{storage}",{used},50,"{storage}",{used},50,"{storage}",{used},50')
        else:
            self.lines('+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")')

    def cmd_cmgr(self, mode: Mode, args: str) -> None:
        if mode != "set":
            self.ok()
            return
        if not self._text_mode_only():
            return
        index = to_int(args.split(",", maxsplit=1)[0])
        message = self.m.sms_store.get(index) if index is not None else None
        if message is None:
            self.cms(321)
            return
        enc = self.m.encode_text
        self.lines(f'+CMGR: "{message.status}","{enc(message.sender)}","","{message.scts}"', enc(message.text))
        message.status = "REC READ"

    def cmd_cmgl(self, mode: Mode, args: str) -> None:
        if mode == "test":
            self.lines('+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")')
            return
        if not self._text_mode_only():
            return
        params = split_params(args)
        wanted = self.m.decode_text(params[0].value).upper() if params else "REC UNREAD"
        enc = self.m.encode_text
        out: list[str] = []
        for index in sorted(self.m.sms_store):
            message = self.m.sms_store[index]
            if wanted != "ALL" and message.status != wanted:
                continue
            out.append(f'+CMGL: {index},"{message.status}","{enc(message.sender)}","","{message.scts}"')
            out.append(enc(message.text))
            message.status = "REC READ"
        self.lines(*out)

    def cmd_cmgd(self, mode: Mode, args: str) -> None:
        if mode != "set":
            self.ok()
            return
        values = [to_int(v) for v in args.split(",")]
        index = values[0]
        flag = values[1] if len(values) > 1 else 0
        if flag == 4:
            self.m.sms_store.clear()
        elif index is not None:
            self.m.sms_store.pop(index, None)
        self.ok()

    def cmd_cmgs(self, mode: Mode, args: str) -> None:
        if mode != "set":
            self.ok()
            return
        if not self._text_mode_only():
            return
        params = split_params(args)
        if not params or not params[0].value:
            self.cms(304)
            return
        self.m.pending_sms_destination = self.m.decode_text(params[0].value)
        self.m.send_raw(b"\r\n> ")
        self.m.enter_text_mode()

    def text_entered(self, text: str) -> None:
        destination, self.m.pending_sms_destination = self.m.pending_sms_destination, None
        if destination is None:
            self.error()
            return
        self.m.spawn(self._finish_sms(destination, self.m.decode_text(text)), "sms-send")

    def text_aborted(self) -> None:
        self.m.pending_sms_destination = None
        self.ok()

    async def _finish_sms(self, destination: str, text: str) -> None:
        await asyncio.sleep(self.m.config.sms_send_delay_s)
        reference = self.m.next_message_reference()
        self.m.sent_sms.append(SentSms(destination, text, self.m.settings.csmp_dcs, reference))
        self.m.send_line(f"+CMGS: {reference}")
        self.ok()


__all__ = ["CME_TEXT", "SimCommands"]
