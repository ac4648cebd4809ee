"""Knobs of the simulated SIM7600 (behaviour, timings, fault injection)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DialOutcome = Literal["answer", "busy", "no_answer", "manual"]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    # identity and network
    manufacturer: str = "SIMCOM INCORPORATED"
    model: str = "SIMCOM_SIM7600G-H"
    revision: str = "SIM7600M22_V2.0"
    imei: str = "861234567890123"
    operator: str = "SimTel"
    access_technology: int = 7  # LTE
    rssi: int = 21  # +CSQ: 21 -> -71 dBm
    registration_stat: int = 1  # home
    own_number: str | None = "+79160000000"
    sim_pin: str | None = None  # a PIN the SIM asks for at boot
    sim_present: bool = True
    # timings
    boot_delay_s: float = 0.0  # ports exist but the module does not answer yet
    boot_urc_gap_s: float = 0.005
    ring_period_s: float = 3.0
    dial_answer_after_s: float = 0.5
    dial_outcome: DialOutcome = "answer"
    sms_send_delay_s: float = 0.05
    reset_duration_s: float = 1.0
    # protocol variants the driver must tolerate (sim7600.md marks them unverified)
    doubled_cr_urcs: bool = False  # RING/+CRING/+RXDTMF framed as \r\r\n...\r\r\n
    no_carrier_after_remote_end: bool = True
    no_carrier_after_missed: bool = False
    # fault injection
    ddet_supported: bool = True
    cpcmreg_failures: int = 0  # the first N AT+CPCMREG=1 of every call answer ERROR
    silent_remote_hangup: bool = False  # caller hang-up sends no URC at all (only AT+CLCC knows)
    # audio
    ucs2_call_numbers: bool = True  # with AT+CSCS="UCS2", +CLIP/+CLCC numbers come hex-encoded too
    send_silence: bool = True  # downlink carries silence frames when the caller says nothing
    record_path: Path | None = None  # uplink (what the host sent) as an 8 kHz mono WAV
