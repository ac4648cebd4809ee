"""The typed shape of the box's configuration.

Every section forbids unknown keys so a typo is an error, not a silent default.
Fields that need a human description of what is allowed carry it in
``json_schema_extra={"allowed": ...}``; the rest are described from their type
(see ``config.errors``).  Secrets never live here: fields ending in ``_env``
name the environment variable that holds the secret.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator

from config.audio_schema import AudioConfig
from config.call_schema import CallConfig
from config.channels_schema import ChannelsConfig
from config.engines_schema import EnginesConfig, VllmConfig
from config.persona_schema import PersonaConfig, PersonaName, bundled_personas
from config.section import EnvVarName, ListenAddress, Section, is_loopback_host, split_host_port

LogLevel = Literal["debug", "info", "warning", "error", "critical"]

_TOPIC_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class LogConfig(Section):
    level: LogLevel = "info"
    format: Literal["auto", "json", "text"] = Field(
        "auto", json_schema_extra={"allowed": "'auto' (JSON unless on a terminal), 'json' or 'text'"}
    )
    levels: dict[str, LogLevel] = Field(
        default_factory=dict,
        json_schema_extra={"allowed": "a mapping of logger name to level, e.g. {bus: debug}"},
    )


class ModemConfig(Section):
    driver: Literal["sim7600", "simulator"] = "simulator"
    at_port: str = Field(
        "auto", min_length=1, json_schema_extra={"allowed": "a device path like /dev/ttyUSB2, or 'auto'"}
    )
    audio_port: str = Field(
        "auto", min_length=1, json_schema_extra={"allowed": "a device path like /dev/ttyUSB4, or 'auto'"}
    )
    answer_after_rings: int = Field(2, ge=0, le=10)
    pin_env: EnvVarName = "SECRETARY_SIM_PIN"
    blocked_numbers: list[str] = Field(
        default_factory=list, json_schema_extra={"allowed": "a list of phone numbers to reject"}
    )


class MqttConfig(Section):
    url: str = Field(
        "mqtt://127.0.0.1:1883",
        json_schema_extra={"allowed": "a broker URL like mqtt://host:1883 or mqtts://host:8883"},
    )
    topic_prefix: str = Field(
        "secretary",
        pattern=_TOPIC_SEGMENT.pattern,
        json_schema_extra={"allowed": "one topic level of letters, digits, '_', '.', '-' (no '/', '+', '#')"},
    )
    username: str | None = None  # one identity for every client (an external broker); see credentials_file
    password_env: EnvVarName = "SECRETARY_MQTT_PASSWORD"
    credentials_file: Path | None = Field(
        None,
        json_schema_extra={"allowed": "the 0600 file `secretary mqtt users` writes (each client connects as its own "
                                      "user, e.g. /etc/secretary/mqtt-credentials.env), or null for mqtt.username"},
    )
    client_id: str | None = Field(None, min_length=1, max_length=64)
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_max_s: float = Field(10.0, ge=0.1, le=300)
    max_queued_events: int = Field(10_000, ge=10, le=1_000_000)
    command_timeout_s: float = Field(10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"must start with mqtt:// or mqtts://, got {json.dumps(value)}")
        if not parts.hostname:
            raise ValueError(f"must name a host, e.g. mqtt://127.0.0.1:1883, got {json.dumps(value)}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"has an invalid port, got {json.dumps(value)}") from None
        if port == 0:
            raise ValueError(f"port must be from 1 to 65535, got {json.dumps(value)}")
        if parts.password:
            raise ValueError("must not contain a password; put it in the environment (mqtt.password_env)")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


_WebHost = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_\[\]-]+$",
                                json_schema_extra={"allowed": "a host name or IP address, e.g. secretary.example.org"})]
_ProxyNetwork = Annotated[IPvAnyNetwork, Field(
    json_schema_extra={"allowed": "an IP address or network, e.g. 127.0.0.1 or 10.0.0.0/8"})]


class WebTlsConfig(Section):
    mode: Literal["auto", "on", "off"] = Field(
        "auto",
        json_schema_extra={"allowed": "'auto' (HTTPS unless web.listen is a loopback address), 'on' or 'off' "
                                      "(plain HTTP: only with a loopback web.listen)"},
    )
    cert_file: Path | None = Field(
        None, json_schema_extra={"allowed": "a PEM certificate (chain) file, or null for data_dir/web/tls/cert.pem"}
    )
    key_file: Path | None = Field(
        None, json_schema_extra={"allowed": "its PEM private key file, or null for data_dir/web/tls/key.pem"}
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: object) -> object:
        """YAML reads a bare on/off as true/false: take them as the words meant."""
        if value is True:
            return "on"
        if value is False:
            return "off"
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> WebTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set both web.tls.cert_file and web.tls.key_file, or neither (then the box makes "
                             "a self-signed certificate in data_dir/web/tls/)")
        return self


class WebConfig(Section):
    enabled: bool = True
    listen: ListenAddress = Field(
        "127.0.0.1:8080", json_schema_extra={"allowed": "host:port, e.g. 127.0.0.1:8080 or [::1]:8080"}
    )
    tls: WebTlsConfig = Field(default_factory=WebTlsConfig)
    allowed_hosts: list[_WebHost] = Field(
        default_factory=list,
        json_schema_extra={"allowed": "a list of further names or addresses the page answers to, e.g. "
                                      "[secretary.example.org]; its own hostname, hostname.local, its IP "
                                      "addresses and localhost are always allowed"},
    )
    trusted_proxies: list[_ProxyNetwork] = Field(
        default_factory=list,
        json_schema_extra={"allowed": "a list of proxy addresses or networks whose X-Forwarded-For is believed, "
                                      "e.g. [127.0.0.1]; empty: none"},
    )

    @model_validator(mode="after")
    def _no_plain_http_on_the_lan(self) -> WebConfig:
        if self.tls.mode == "off" and not self.loopback:
            raise ValueError(
                f"web.tls.mode is off but web.listen {self.listen} is reachable from the network: the password "
                "and session cookie would cross it in clear. Use web.tls.mode: auto (a self-signed certificate "
                "is made) or listen on 127.0.0.1"
            )
        return self

    @property
    def host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen)[1]

    @property
    def loopback(self) -> bool:
        """Whether ``listen`` is reachable from this machine only."""
        return is_loopback_host(self.host)

    @property
    def tls_enabled(self) -> bool:
        """HTTPS: ``on``, or ``auto`` on anything but loopback."""
        return self.tls.mode == "on" or (self.tls.mode == "auto" and not self.loopback)

    def tls_files(self, data_dir: Path) -> tuple[Path, Path]:
        """The certificate and key files: the configured ones or the defaults inside data_dir."""
        if self.tls.cert_file is not None and self.tls.key_file is not None:
            return self.tls.cert_file, self.tls.key_file
        return data_dir / "web" / "tls" / "cert.pem", data_dir / "web" / "tls" / "key.pem"


class SupervisorConfig(Section):
    backoff_initial_s: float = Field(0.5, gt=0, le=60)
    backoff_max_s: float = Field(30.0, gt=0, le=3600)
    stable_after_s: float = Field(60.0, gt=0, le=86_400)
    stop_timeout_s: float = Field(4.0, gt=0, le=60)


class SecretaryConfig(Section):
    box_id: str = Field(
        pattern=_TOPIC_SEGMENT.pattern,
        json_schema_extra={"allowed": "a name for this box: letters, digits, '_', '.', '-' (max 64)"},
    )
    data_dir: Path = Path("/var/lib/secretary")
    secrets_file: Path | None = Field(
        None, json_schema_extra={"allowed": "the path of a 0600 env file with KEY=value lines, or null"}
    )
    log: LogConfig = Field(default_factory=LogConfig)
    modem: ModemConfig = Field(default_factory=ModemConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    engines: EnginesConfig = Field(default_factory=EnginesConfig)
    personas: dict[PersonaName, PersonaConfig] = Field(
        default_factory=bundled_personas,
        json_schema_extra={"allowed": "a mapping of persona id to persona; merged over the bundled gulya and lidia"},
    )
    call: CallConfig = Field(default_factory=CallConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)

    @field_validator("personas", mode="before")
    @classmethod
    def _merge_bundled_personas(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        merged: dict[object, object] = dict(bundled_personas())
        merged.update(value)
        return merged

    @model_validator(mode="after")
    def _check_personas(self) -> SecretaryConfig:
        if self.call.persona not in self.personas:
            raise ValueError(
                f"call.persona is {self.call.persona!r}, which is not a persona "
                f"(defined: {', '.join(sorted(self.personas))})"
            )
        llm = self.engines.llm
        for name, persona in self.personas.items():
            chain = persona.llm.chain
            unknown = [b for b in chain or () if b not in llm.backends]
            if unknown:
                raise ValueError(
                    f"personas.{name}.llm.chain names {unknown[0]!r}, which is not under engines.llm.backends "
                    f"(defined: {', '.join(sorted(llm.backends))})"
                )
            if persona.voice.tts is not None and not set(persona.voice.tts) & set(self.engines.tts.chain):
                raise ValueError(
                    f"personas.{name}.voice.tts {persona.voice.tts} shares no backend with engines.tts.chain "
                    f"{list(self.engines.tts.chain)}: nothing could speak for {name}"
                )
            voice = persona.voice.name
            speaks_xtts = "xtts" in (persona.voice.tts or self.engines.tts.chain) and "xtts" in self.engines.tts.chain
            if voice is not None and speaks_xtts and voice not in self.engines.tts.xtts.voices:
                raise ValueError(
                    f"personas.{name}.voice.name is {voice!r}, which is not under engines.tts.xtts.voices "
                    f"(defined: {', '.join(sorted(self.engines.tts.xtts.voices)) or 'none'})"
                )
            lora = persona.llm.lora
            if lora is not None:
                names = chain if chain is not None else list(llm.backends)
                adapters = {a for b in names if isinstance(c := llm.backends[b], VllmConfig) for a in c.lora_adapters}
                if lora not in adapters:
                    raise ValueError(
                        f"personas.{name}.llm.lora is {lora!r}, but no vllm backend it may use has that adapter "
                        f"(adapters: {', '.join(sorted(adapters)) or 'none'})"
                    )
        return self

    @model_validator(mode="after")
    def _check_channels(self) -> SecretaryConfig:
        for bot_id, bot in self.channels.telegram.bots.items():
            where = f"channels.telegram.bots.{bot_id}"
            self._check_refs(where, bot.persona, bot.llm)
            unknown = [b for b in bot.tts or () if b not in self.engines.tts.chain]
            if unknown:
                raise ValueError(
                    f"{where}.tts names {unknown[0]!r}, which is not in engines.tts.chain {list(self.engines.tts.chain)}"
                )
        for number, persona in self.channels.twilio.numbers.items():
            self._check_refs(f"channels.twilio.numbers.{number}", persona, None, persona_key="")
        for widget_id, widget in self.channels.widget.widgets.items():
            self._check_refs(f"channels.widget.widgets.{widget_id}", widget.persona, widget.llm)
        return self

    def _check_refs(self, where: str, persona: str | None, llm: list[str] | None, persona_key: str = ".persona") -> None:
        """A channel's persona and LLM backends must exist."""
        if persona is not None and persona not in self.personas:
            raise ValueError(
                f"{where}{persona_key} is {persona!r}, which is not a persona (defined: {', '.join(sorted(self.personas))})"
            )
        unknown = [b for b in llm or () if b not in self.engines.llm.backends]
        if unknown:
            raise ValueError(
                f"{where}.llm names {unknown[0]!r}, which is not under engines.llm.backends "
                f"(defined: {', '.join(sorted(self.engines.llm.backends))})"
            )
