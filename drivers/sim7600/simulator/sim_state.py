"""State of the simulated module: settings changed by AT commands, calls, stored SMS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum


class SimCallStat(IntEnum):
    ACTIVE = 0
    HELD = 1
    DIALING = 2
    ALERTING = 3
    INCOMING = 4
    WAITING = 5
    DISCONNECTED = 6


@dataclass(slots=True)
class ModuleSettings:
    """Power-on defaults; lost on reset (sim7600.md §3)."""

    echo: bool = True
    cmee: int = 0
    clip: bool = False
    clcc_urc: bool = False
    crc: bool = False
    cvhu: int = 1
    ddet: bool = False
    cmgf: int = 0
    cscs: str = "IRA"
    cnmi_mt: int = 0
    csmp_dcs: int = 0
    creg_n: int = 0
    cereg_n: int = 0
    pcm: bool = False
    read_storage: str = "SM"


@dataclass(slots=True)
class SimCall:
    direction: int  # 0 outgoing (MO), 1 incoming (MT)
    number: str
    withheld: bool = False
    stat: SimCallStat = SimCallStat.INCOMING
    index: int = 1
    connected_at: float | None = None
    pcm_failures_left: int = 0
    rings_sent: int = 0

    @property
    def number_type(self) -> int:
        if self.withheld:
            return 128
        return 145 if self.number.startswith("+") else 129

    def clcc_line(self, stat: SimCallStat | None = None, encode: Callable[[str], str] | None = None) -> str:
        stat = self.stat if stat is None else stat
        number = "" if self.withheld else self.number
        if encode is not None and number:
            number = encode(number)
        return f'+CLCC: {self.index},{self.direction},{int(stat)},0,0,"{number}",{self.number_type}'


@dataclass(slots=True)
class StoredSms:
    sender: str
    text: str
    received: datetime
    status: str = "REC UNREAD"

    @property
    def scts(self) -> str:
        offset = self.received.utcoffset()
        quarters = int(offset.total_seconds() // 900) if offset is not None else 0
        return f"{self.received:%y/%m/%d,%H:%M:%S}{quarters:+03d}"


@dataclass(frozen=True, slots=True)
class SentSms:
    number: str
    text: str
    dcs: int
    reference: int


@dataclass(slots=True)
class Counters:
    rings: int = 0
    downlink_frames: int = 0
    downlink_dropped_frames: int = 0
    uplink_bytes: int = 0
    commands: list[str] = field(default_factory=list)
