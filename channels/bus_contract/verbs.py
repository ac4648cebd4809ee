"""The commands of the contract: each ``cmd/<verb>`` a service registers and a channel or tool requests.

A request carries a JSON object and an MQTT v5 response topic; the reply is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code",
"message"}}`` (streaming verbs send ``{"ok": true, "partial": ...}`` first).
"""

from __future__ import annotations

# -- the modem (daemon/modem) --------------------------------------------------------
HANGUP = "hangup"
DIAL = "dial"
SMS_SEND = "sms/send"
BLOCK = "block"
UNBLOCK = "unblock"
BLOCKED = "blocked"  # the blocked numbers

# -- the built-in simulator (modem.driver: simulator): script the caller -------------
SIMULATOR_CALL = "simulator/call"
SIMULATOR_SPEAK = "simulator/speak"
SIMULATOR_DTMF = "simulator/dtmf"
SIMULATOR_HANGUP = "simulator/hangup"
SIMULATOR_SMS = "simulator/sms"
SIMULATOR_UNPLUG = "simulator/unplug"
SIMULATOR_REPLUG = "simulator/replug"
SIMULATOR_URC = "simulator/urc"  # {"line": "..."}: the modem sends this line unprompted (fault tests: stray URCs)

# -- the call history (daemon/call) --------------------------------------------------
CALLS_LIST = "calls/list"
CALLS_GET = "calls/get"
CALLS_DELETE = "calls/delete"

# -- chat with a persona (daemon/dialogue) -------------------------------------------
CHAT = "chat"
PERSONAS = "personas"
SPEAK = "speak"
CHAT_AUDIO_RATE = 16_000  # a ``chat`` request's ``audio_file``: a WAV of 16 kHz mono PCM16

# -- the rest ------------------------------------------------------------------------
CALLBACK_REQUEST = "notify/callback_request"  # "call me back", left through a channel
RELOAD = "reload"  # read the config again
