"""Who may do what on the box's broker: one role per client, its login and its rights, derived from the contract.

Every process that talks to the box's mosquitto is one of ``ROLES``: the
daemon, the web page, each channel (Telegram, Twilio, the website widget, the
remote bridge's local side) and ``cli`` (the owner's ``secretary`` tools:
doctor, demo, a dashboard). Least privilege, from what the code sends today:

- only the daemon reads ``cmd/#``, writes the box's state and events
  (``DAEMON_WRITES``) and the replies (``reply/+``);
- a channel sends only the verbs it uses (the widget only ``chat`` and the
  call-back request; the bridge only ``hangup``) and reads only its own reply
  topic, ``reply/<client_id>``; no channel writes state or events;
- ``cli`` sends every verb and reads every state and event.

``daemon/tools/broker_users.py`` turns ``ROLES`` into mosquitto's password
and ACL files; ``bus_login`` says which user a process connects as: with
``mqtt.credentials_file`` set, its role's ``secretary-<role>`` and the password
``SECRETARY_MQTT_PASSWORD_<ROLE>`` from that file; without it, the one
``mqtt.username`` / ``mqtt.password_env`` of an external broker.
``MAX_PACKET_BYTES`` caps every MQTT packet on the box's broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from channels.bus_contract import verbs
from channels.bus_contract.limits import CHANNEL_MAX_PACKET_BYTES
from channels.bus_contract.topics import (
    CALL_EVENT,
    CALL_STATE,
    CALLBACK_EVENT,
    COMMAND_FILTER,
    EVERY_ENGINE_STATE,
    EVERY_SERVICE_STATE,
    MODEM_EVENT,
    MODEM_STATE,
    SMS_EVENT,
    STATUS,
    TELEGRAM_TOPICS,
    WEB_PAGE_TOPICS,
    Topics,
    command,
    reply,
)
from config.schema import MqttConfig

# The broker's max_packet_size: the biggest packet any reader of the bus accepts, a command's reply
# (limits.py: calls/list of 200 calls, plus the topic and properties). Audio never travels on the bus
# (a chat's ``audio_file`` is a path). Anything bigger is refused by mosquitto itself, from any client.
MAX_PACKET_BYTES = CHANNEL_MAX_PACKET_BYTES

ALL_VERBS = "#"  # in ``Role.sends``: every ``cmd/<verb>``
USERNAME_PREFIX = "secretary-"
PASSWORD_ENV_PREFIX = "SECRETARY_MQTT_PASSWORD_"

# What the daemon publishes besides its replies: the box's retained state and its events.
DAEMON_WRITES = (STATUS, MODEM_STATE, MODEM_EVENT, CALL_STATE, CALL_EVENT, EVERY_ENGINE_STATE, EVERY_SERVICE_STATE,
                 SMS_EVENT, CALLBACK_EVENT)


@dataclass(frozen=True)
class Role:
    """One kind of client of the box's broker and what it may do (suffixes under ``<prefix>/<box_id>/``)."""

    name: str
    reads: tuple[str, ...] = ()  # topic filters it may subscribe to, besides its own reply topic
    sends: tuple[str, ...] = ()  # the command verbs it may publish (``ALL_VERBS``: every one)
    writes: tuple[str, ...] = ()  # the state and event topics it may publish
    serves_commands: bool = False  # reads ``cmd/#`` and writes every ``reply/<client>``

    @property
    def username(self) -> str:
        return f"{USERNAME_PREFIX}{self.name}"

    @property
    def password_env(self) -> str:
        """The variable holding its password in ``mqtt.credentials_file``."""
        return f"{PASSWORD_ENV_PREFIX}{self.name.upper()}"

    def client_id(self, box_id: str) -> str:
        """Its MQTT client id on box ``box_id``; its replies come back on ``reply/<client_id>``."""
        return f"{USERNAME_PREFIX}{self.name}-{box_id}"

    def reply_topic(self, topics: Topics) -> str:
        return topics.reply(self.client_id(topics.box_id))

    def may_read(self) -> tuple[str, ...]:
        """The suffix filters it may read (``cmd/#`` for the daemon); a client also reads ``reply_topic``."""
        return (COMMAND_FILTER,) if self.serves_commands else self.reads

    def may_write(self) -> tuple[str, ...]:
        """Every suffix (filter) it may publish."""
        sent = tuple(command(verb) for verb in self.sends)
        return (*self.writes, *sent, reply("+")) if self.serves_commands else (*self.writes, *sent)


DAEMON = Role("daemon", writes=DAEMON_WRITES, serves_commands=True)
WEB = Role("web", reads=WEB_PAGE_TOPICS, sends=(verbs.SPEAK, verbs.CALLS_DELETE, verbs.RELOAD))
TELEGRAM = Role("telegram", reads=TELEGRAM_TOPICS, sends=(
    verbs.CALLS_LIST, verbs.CALLS_GET, verbs.DIAL, verbs.BLOCK, verbs.SMS_SEND, verbs.CHAT))
TWILIO = Role("twilio", sends=(verbs.CHAT, verbs.CALLBACK_REQUEST))
WIDGET = Role("widget", sends=(verbs.CHAT, verbs.CALLBACK_REQUEST))
REMOTE = Role("remote", reads=DAEMON_WRITES, sends=(verbs.HANGUP,))  # the remote bridge's local side
CLI = Role("cli", reads=DAEMON_WRITES, sends=(ALL_VERBS,))  # the owner's tools: doctor, demo, a dashboard
ROLES = (DAEMON, WEB, TELEGRAM, TWILIO, WIDGET, REMOTE, CLI)


@dataclass(frozen=True)
class BusLogin:
    """The user and password one client connects with (``None``: none sent)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)


ANONYMOUS = BusLogin()


def bus_login(mqtt: MqttConfig, role: Role, secret: Callable[[str], str | None]) -> BusLogin:
    """Who ``role`` connects as: its own user with ``mqtt.credentials_file``, else the config's one identity."""
    if mqtt.credentials_file is not None:
        return BusLogin(role.username, secret(role.password_env))
    return BusLogin(mqtt.username, secret(mqtt.password_env))
