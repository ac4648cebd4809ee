"""The Telegram channel: the owner's bots, call notifications through a durable outbox, chat by text and voice.

python-telegram-bot 22 is moving durations (``retry_after``, ``Voice.duration``)
from seconds to ``timedelta`` and warns on every access until a program opts
in; this channel handles both, so it opts in before telegram is imported.
"""

import os

os.environ.setdefault("PTB_TIMEDELTA", "1")
