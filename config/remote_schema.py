"""``channels.remote``: republish the box's bus to a remote broker (a fleet dashboard, Home Assistant).

The bridge is a channel: it reads the local bus like any other and keeps a
second connection to ``url`` (TLS with ``mqtts://``, credentials from the
environment), where it publishes the chosen ``topics`` under the same
``<topic_prefix>/<box_id>/`` layout, with its own last will (``status``:
``offline``). Home Assistant MQTT discovery makes the box appear with no
manual setup; the only command accepted from the remote side is the ones
listed in ``commands``. SMS events go without their text unless
``forward_sms_text`` says otherwise. A plain ``mqtt://`` url to a host other
than this one works, but ``cleartext_warning`` says what then goes in clear
(the bridge logs it and shows it in its service state; ``secretary doctor``
prints it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from config.section import EnvVarName, Section, is_loopback_host


class HomeAssistantConfig(Section):
    enabled: bool = True
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    node_name: str | None = Field(
        None, min_length=1, max_length=64, json_schema_extra={"allowed": "the device name shown in Home Assistant (default: Secretary <box_id>)"}
    )


class RemoteBridgeConfig(Section):
    enabled: bool = False
    url: str | None = Field(
        None, json_schema_extra={"allowed": "the remote broker, mqtts://host:8883 (or mqtt:// on a trusted network)"}
    )
    username: str | None = None
    password_env: EnvVarName = "SECRETARY_REMOTE_MQTT_PASSWORD"
    ca_file: Path | None = Field(
        None, json_schema_extra={"allowed": "a PEM file of the CA that signed the remote broker's certificate, or null for the system's"}
    )
    client_id: str | None = Field(None, min_length=1, max_length=64)
    topic_prefix: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        json_schema_extra={"allowed": "the prefix on the remote broker (default: mqtt.topic_prefix)"},
    )
    # None: the bridge's default selection, the box's state and events (channels/remote_bridge/topics.py).
    topics: list[str] | None = Field(
        None,
        min_length=1,
        json_schema_extra={"allowed": "MQTT topic filters under the box's prefix (as in config/example.yaml); "
                                      "null (the default) for the box's status, modem, calls, SMS, engines and services"},
    )
    commands: list[Literal["hangup"]] = Field(
        default_factory=lambda: ["hangup"], json_schema_extra={"allowed": "commands the remote side may send: hangup"}
    )
    home_assistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    forward_sms_text: bool = Field(
        False, json_schema_extra={"allowed": "true: SMS events reach the remote broker with their text; "
                                             "false (the default): only who sent one and when"},
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"must be mqtts://host:port or mqtt://host:port, got {value!r}")
        if parts.password:
            raise ValueError("must not contain a password; put it in the environment (password_env)")
        return value

    @field_validator("topics")
    @classmethod
    def _check_topics(cls, value: list[str] | None) -> list[str] | None:
        for topic in value or ():
            levels = topic.split("/")
            if not topic or topic.startswith("/") or "cmd" in levels[:1] or any(
                ("+" in level and level != "+") or ("#" in level and level != "#") for level in levels
            ) or ("#" in levels and levels[-1] != "#"):
                raise ValueError(f"{topic!r} is not a topic filter under the box's prefix (and cmd/ is never bridged)")
        return value

    @model_validator(mode="after")
    def _url_when_enabled(self) -> RemoteBridgeConfig:
        if self.enabled and self.url is None:
            raise ValueError("url is required when enabled")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url or "").hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url or "")
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url or "").scheme == "mqtts"

    @property
    def cleartext_warning(self) -> str | None:
        """What goes in clear when the bridge is on and ``url`` is plain ``mqtt://`` to another host; else None."""
        if not self.enabled or self.url is None or self.tls or is_loopback_host(self.host):
            return None
        sms = "SMS senders and texts" if self.forward_sms_text else "SMS senders"
        return (f"channels.remote.url is plain mqtt:// to {self.host}: the remote broker's username and password, "
                f"callers' numbers, call events with their transcripts and {sms} cross the network in clear; "
                "use mqtts:// (and ca_file for a self-signed broker)")
