"""What an SMS tells the remote broker: by default who sent it and when, not what it says.

The texts people send the box are the owner's; the remote broker (a fleet
dashboard, Home Assistant, perhaps someone else's server) gets them only when
``channels.remote.forward_sms_text`` is true. Otherwise a ``sms/event`` goes
out as the contract's ``received`` event with an empty ``text`` and
``text_withheld: true``, so a reader that decodes it still can, and a person
reading it knows why it is empty. A payload that is not a ``received`` SMS
cannot be stripped with certainty and is not forwarded at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from channels.bus_contract.fields import PayloadError
from channels.bus_contract.message_payloads import SmsReceivedEvent

TEXT_WITHHELD: Final = "text_withheld"


def without_text(payload: Any) -> dict[str, Any] | None:
    """The ``sms/event`` payload with its text withheld; None when it is not one this can vouch for."""
    try:
        sms = SmsReceivedEvent.decode(payload)
    except PayloadError:
        return None
    return {**dataclasses.replace(sms, text="").encode(), TEXT_WITHHELD: True}
