"""``cmd/notify/callback_request``: "call me back" left through a channel (the website widget, Twilio voicemail).

The channel asks; the daemon checks the request, gives it an id and publishes
``callback/event`` ``{type: "callback_request", id, channel, widget, name,
number, note, page, session, ts}`` (in order, kept while the broker is away),
which the owner's channels (Telegram) turn into a notification like a call's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from typing import Any

from channels.bus_contract.message_payloads import CallbackRequestEvent
from channels.bus_contract.topics import CALLBACK_EVENT
from channels.bus_contract.verbs import CALLBACK_REQUEST
from daemon.bus.commands import CommandError
from daemon.bus.connection import Bus
from daemon.runtime.service import Service, ServiceStatus

log = logging.getLogger("secretary.callbacks")
_DIGITS = re.compile(r"^\+?[0-9]{5,20}$")
_LIMITS = {"channel": 32, "widget": 32, "name": 80, "note": 1000, "page": 500, "session": 128}


def normalize_callback_number(number: str) -> str | None:
    """``+7 (916) 123-45-67`` -> ``+79161234567``; None when it is not a phone number."""
    compact = re.sub(r"[\s().-]", "", number)
    return compact if _DIGITS.fullmatch(compact) else None


class CallbackRequests(Service):
    name = "callbacks"

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def config_slice(self) -> Any:
        return None

    async def run(self, status: ServiceStatus) -> None:
        self.bus.register_command(CALLBACK_REQUEST, self._cmd_request)
        status.ready("taking call-back requests")
        try:
            await asyncio.Event().wait()  # serves until stopped
        finally:
            self.bus.commands.unregister(CALLBACK_REQUEST)

    async def _cmd_request(self, args: dict[str, Any]) -> dict[str, Any]:
        number = args.get("number")
        normalized = normalize_callback_number(number) if isinstance(number, str) else None
        if normalized is None:
            raise CommandError("invalid", "number must be a phone number (5 to 20 digits, an optional leading +)")
        texts: dict[str, Any] = {}
        for key, limit in _LIMITS.items():
            value = args.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise CommandError("invalid", f"{key} must be text of at most {limit} characters")
            texts[key] = value.strip() if isinstance(value, str) else None
        if not texts["channel"]:
            raise CommandError("invalid", "channel must name where the request came from")
        event = CallbackRequestEvent(id=secrets.token_hex(6), number=normalized, ts=round(time.time(), 3), **texts)
        self.bus.publish_event(CALLBACK_EVENT, event.encode())
        log.info("call-back requested", extra={"id": event.id, "channel": event.channel})
        return {"id": event.id}
