"""What the simulated AT command set may see and do of the module it runs in.

``SimCommands`` (``commands.py``) is handed a ``ModuleHost``; ``SimulatedModem``
(``sim_modem.py``) is one. The protocol keeps the command set below the modem
in the import graph: the modem builds its commands, the commands never import
the modem.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from drivers.sim7600.simulator.sim_config import SimulatorConfig
from drivers.sim7600.simulator.sim_state import ModuleSettings, SentSms, SimCall, SimCallStat, StoredSms


class ModuleHost(Protocol):
    config: SimulatorConfig
    settings: ModuleSettings
    call: SimCall | None
    sms_store: dict[int, StoredSms]
    sent_sms: list[SentSms]
    dtmf_from_host: list[str]
    sim_locked: bool
    pending_sms_destination: str | None

    # what goes to the host on the AT port
    def send_line(self, text: str) -> None: ...

    def send_raw(self, data: bytes) -> int: ...

    def enter_text_mode(self) -> None: ...

    def encode_text(self, text: str) -> str: ...

    def decode_text(self, text: str) -> str: ...

    def encode_number(self, number: str) -> str: ...

    # the module's own life
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None: ...

    async def reset(self) -> None: ...

    def next_message_reference(self) -> int: ...

    # calls
    def start_dial(self, number: str) -> None: ...

    def connect(self, call: SimCall) -> None: ...

    def end_call_by_host(self) -> SimCall | None: ...

    def call_duration_s(self, call: SimCall) -> int: ...

    def clcc_urc(self, call: SimCall, stat: SimCallStat | None = None) -> None: ...

    def update_audio(self) -> None: ...
