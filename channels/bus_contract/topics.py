"""The MQTT topics of design.md's contract: every suffix under ``<prefix>/<box_id>/``, and who subscribes to what.

Retained state (newest wins): ``status``, ``modem/state``, ``call/state``,
``engines/<name>/state``, ``services/<name>/state``. Events (not retained,
in order): ``call/event``, ``sms/event``, ``callback/event``,
``modem/event``. Commands arrive on ``cmd/<verb>`` (the verbs are in
``verbs.py``); a channel's replies come back on ``reply/<client_id>``. The
remote bridge adds two topics on the remote broker only: ``last_call`` and
``ha/<command>``.

Filters follow MQTT: ``+`` is one level, ``#`` (last) the rest. ``Topics``
turns a suffix into the full topic of one box.
"""

from __future__ import annotations

from dataclasses import dataclass

_ENGINES, _SERVICES, _STATE, _EVENT, _ANY = "engines", "services", "state", "event", "+"

# -- retained state ------------------------------------------------------------------
STATUS = "status"  # "online" / "offline" (the daemon's last will)
PLAIN_TEXT = (STATUS,)  # the topics whose payload is text, not JSON
MODEM_STATE = "modem/state"
CALL_STATE = "call/state"
EVERY_ENGINE_STATE = f"{_ENGINES}/{_ANY}/{_STATE}"  # engines/<name>/state, one per engine
EVERY_SERVICE_STATE = f"{_SERVICES}/{_ANY}/{_STATE}"  # services/<name>/state, one per supervised service
RECORDER_SERVICE = "recorder"  # the service that watches call recording and disk space; degraded says why
RECORDER_STATE = f"{_SERVICES}/{RECORDER_SERVICE}/{_STATE}"

# -- events --------------------------------------------------------------------------
CALL_EVENT = "call/event"  # the calls on every line; its one writer is daemon/call/announcer.py
SMS_EVENT = "sms/event"
CALLBACK_EVENT = "callback/event"
MODEM_EVENT = "modem/event"

# -- command plumbing (never bridged) ------------------------------------------------
COMMANDS = "cmd"  # cmd/<verb>
COMMAND_FILTER = "cmd/#"
REPLIES = "reply"  # reply/<client_id>: where a channel's command replies arrive
NEVER_BRIDGED = (COMMANDS, REPLIES)

# -- the remote broker only (channels/remote_bridge) ---------------------------------
LAST_CALL = "last_call"  # retained: the newest incoming call, for the "last caller" sensor
REMOTE_COMMANDS = "ha"  # ha/<command>: a button pressed on the remote side

# -- what each reader subscribes to --------------------------------------------------
WEB_PAGE_TOPICS = (STATUS, MODEM_STATE, CALL_STATE, CALL_EVENT, EVERY_ENGINE_STATE, EVERY_SERVICE_STATE)
TELEGRAM_TOPICS = (STATUS, MODEM_STATE, CALL_STATE, CALL_EVENT, SMS_EVENT, CALLBACK_EVENT, EVERY_ENGINE_STATE,
                   EVERY_SERVICE_STATE)
BRIDGED_BY_DEFAULT = (STATUS, MODEM_STATE, CALL_STATE, CALL_EVENT, SMS_EVENT, EVERY_ENGINE_STATE, EVERY_SERVICE_STATE)
DOCTOR_TOPICS = (STATUS, MODEM_STATE, RECORDER_STATE)


def matches(topic_filter: str, suffix: str) -> bool:
    """Whether ``suffix`` matches the MQTT ``topic_filter`` (``+`` one level, ``#`` last: the rest, or none)."""
    want, have = topic_filter.split("/"), suffix.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


def engine_state(engine: str) -> str:
    return f"{_ENGINES}/{engine}/{_STATE}"


def service_state(service: str) -> str:
    return f"{_SERVICES}/{service}/{_STATE}"


def engine_name(suffix: str) -> str | None:
    """``stt`` for ``engines/stt/state``; None for anything else."""
    return _middle_level(suffix, _ENGINES)


def service_name(suffix: str) -> str | None:
    """``modem`` for ``services/modem/state``; None for anything else."""
    return _middle_level(suffix, _SERVICES)


def _middle_level(suffix: str, family: str) -> str | None:
    levels = suffix.split("/")
    if len(levels) == 3 and levels[0] == family and levels[2] == _STATE and levels[1]:
        return levels[1]
    return None


def is_state(suffix: str) -> bool:
    """Retained state: ``status`` and every ``.../state``."""
    return suffix == STATUS or suffix.endswith(f"/{_STATE}")


def is_event(suffix: str) -> bool:
    """An event topic (``call/event``, ``sms/event``, any ``.../event``): in order, not retained."""
    return suffix == _EVENT or suffix.endswith(f"/{_EVENT}")


def command(verb: str) -> str:
    """``cmd/sms/send`` for ``sms/send``."""
    return f"{COMMANDS}/{verb}"


def command_verb(suffix: str) -> str | None:
    """``sms/send`` for ``cmd/sms/send``; None for other suffixes."""
    head = f"{COMMANDS}/"
    return suffix[len(head):] if suffix.startswith(head) and len(suffix) > len(head) else None


def reply(client_id: str) -> str:
    return f"{REPLIES}/{client_id}"


def remote_command(name: str) -> str:
    """``ha/hangup``: the remote-side topic of a command the bridge accepts."""
    return f"{REMOTE_COMMANDS}/{name}"


@dataclass(frozen=True)
class Topics:
    """One box's full topics: ``<prefix>/<box_id>/<suffix>``."""

    prefix: str
    box_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.box_id}"

    def __call__(self, suffix: str) -> str:
        return f"{self.base}/{suffix}"

    def suffix(self, topic: str) -> str | None:
        """The suffix of one of this box's topics; None for a topic of anything else."""
        head = f"{self.base}/"
        return topic[len(head):] if topic.startswith(head) else None

    @property
    def status(self) -> str:
        return self(STATUS)

    @property
    def modem_state(self) -> str:
        return self(MODEM_STATE)

    @property
    def call_state(self) -> str:
        return self(CALL_STATE)

    @property
    def call_event(self) -> str:
        return self(CALL_EVENT)

    def engine_state(self, engine: str) -> str:
        return self(engine_state(engine))

    def service_state(self, service: str) -> str:
        return self(service_state(service))

    @property
    def command_filter(self) -> str:
        return self(COMMAND_FILTER)

    def command(self, verb: str) -> str:
        return self(command(verb))

    def command_verb(self, topic: str) -> str | None:
        """``<base>/cmd/sms/send`` -> ``sms/send``; None for other topics."""
        suffix = self.suffix(topic)
        return command_verb(suffix) if suffix is not None else None

    def reply(self, client_id: str) -> str:
        return self(reply(client_id))

    def is_reply(self, topic: str) -> bool:
        """Whether ``topic`` is one of this box's reply topics: ``<base>/reply/<one level>``, no wildcard."""
        suffix = self.suffix(topic) or ""
        head, _, client = suffix.partition("/")
        return head == REPLIES and bool(client) and not set(client) & {"/", "+", "#"}
