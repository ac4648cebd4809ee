"""``channels:``: the ways in besides the phone line: Telegram, Twilio numbers, the website widget.

A Telegram bot is listed under ``channels.telegram.bots`` by a short id. Its
token comes from the environment variable ``token_env`` (never from YAML).
Only the Telegram user ids in ``users`` may talk to it; ``notify`` (default:
all of ``users``) get the call, missed-call and SMS notifications.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from config.remote_schema import RemoteBridgeConfig
from config.section import EnvVarName, Section
from config.twilio_schema import TwilioConfig
from config.widget_schema import WidgetsConfig

_BOT_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

BotId = Annotated[
    str,
    Field(pattern=_BOT_ID.pattern, json_schema_extra={"allowed": "a short id: lower-case letters, digits, '_' or '-'"}),
]
TelegramUserId = Annotated[int, Field(gt=0, json_schema_extra={"allowed": "a numeric Telegram user id"})]


class TelegramBotConfig(Section):
    token_env: EnvVarName
    persona: str | None = Field(
        None, json_schema_extra={"allowed": "a persona id (default: call.persona)"}
    )
    llm: list[str] | None = Field(
        None, min_length=1, json_schema_extra={"allowed": "backend names under engines.llm.backends, or null"}
    )
    tts: list[str] | None = Field(
        None, min_length=1, json_schema_extra={"allowed": "backend names of engines.tts.chain, or null"}
    )
    users: list[TelegramUserId] = Field(min_length=1)
    notify: list[TelegramUserId] | None = Field(
        None, json_schema_extra={"allowed": "user ids that get notifications (default: all users), [] for none"}
    )
    history_turns: int = Field(10, ge=0, le=20)
    voice_replies: bool = True

    @model_validator(mode="after")
    def _notify_are_users(self) -> TelegramBotConfig:
        strangers = sorted(set(self.notify or ()) - set(self.users))
        if strangers:
            raise ValueError(f"notify lists {strangers[0]}, who is not in users: only allowed users get notifications")
        return self

    @property
    def notify_users(self) -> list[int]:
        return list(self.users) if self.notify is None else list(self.notify)


class TelegramConfig(Section):
    api_url: str = Field(
        "https://api.telegram.org",
        json_schema_extra={"allowed": "the Bot API server's base URL (a local bot API server, or the default)"},
    )
    bots: dict[BotId, TelegramBotConfig] = Field(default_factory=dict)
    poll_timeout_s: int = Field(30, ge=1, le=60)
    request_timeout_s: float = Field(20.0, gt=0, le=120)
    retry_initial_s: float = Field(1.0, gt=0, le=60)
    retry_max_s: float = Field(60.0, gt=0, le=3600)
    calls_listed: int = Field(10, ge=1, le=50)
    voice_note_max_s: float = Field(120.0, gt=0, le=600)

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must start with https:// (or http:// for a local server), got {value!r}")
        return value.rstrip("/")


class ChannelsConfig(Section):
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    twilio: TwilioConfig = Field(default_factory=TwilioConfig)
    widget: WidgetsConfig = Field(default_factory=WidgetsConfig)
    remote: RemoteBridgeConfig = Field(default_factory=RemoteBridgeConfig)
