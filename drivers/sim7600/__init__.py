"""SIM7600G-H driver: AT channel, modem state, call state machine, SMS, PCM voice port, simulator.

The daemon uses ``Sim7600Modem`` (see ``modem.py``) and the event types in
``events.py``; everything else is the machinery behind them.
"""

from drivers.sim7600.call_model import CallDirection, CallSnapshot, CallState, EndReason
from drivers.sim7600.call_state import CallControlError
from drivers.sim7600.events import (
    CallAnswered,
    CallAudioReady,
    CallDtmf,
    CallEnded,
    CallEvent,
    CallMissed,
    CallRinging,
    CallStateChanged,
    ModemConnected,
    ModemDisconnected,
    ModemEvent,
    ModemStateChanged,
    PcmAlarm,
    SmsReceived,
)
from drivers.sim7600.modem import DriverTimings, ModemUnavailableError, Sim7600Modem, Sim7600Settings
from drivers.sim7600.modem_state import ModemState
from drivers.sim7600.parsers import SimStatus, SmsMessage
from drivers.sim7600.pcm_port import FRAME_BYTES, PcmSession, PcmStats
from drivers.sim7600.ports import ModemManagerStatus, ModemPorts, PortsNotFoundError, check_modem_manager
from drivers.sim7600.sms import SmsError

__all__ = [
    "FRAME_BYTES",
    "CallAnswered",
    "CallAudioReady",
    "CallControlError",
    "CallDirection",
    "CallDtmf",
    "CallEnded",
    "CallEvent",
    "CallMissed",
    "CallRinging",
    "CallSnapshot",
    "CallState",
    "CallStateChanged",
    "DriverTimings",
    "EndReason",
    "ModemConnected",
    "ModemDisconnected",
    "ModemEvent",
    "ModemManagerStatus",
    "ModemPorts",
    "ModemState",
    "ModemStateChanged",
    "ModemUnavailableError",
    "PcmAlarm",
    "PcmSession",
    "PcmStats",
    "PortsNotFoundError",
    "Sim7600Modem",
    "Sim7600Settings",
    "SimStatus",
    "SmsError",
    "SmsMessage",
    "SmsReceived",
    "check_modem_manager",
]
