"""The base every config section shares, and field types used across sections."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

EnvVarName = Annotated[
    str,
    Field(
        pattern=_ENV_NAME.pattern,
        json_schema_extra={"allowed": "an environment variable name like SECRETARY_MQTT_PASSWORD"},
    ),
]


class Section(BaseModel):
    """Base of every config section: immutable, strict about unknown keys.

    ``REPLACED_KEYS`` names keys a section once had, each with what took its
    place, so an old config is told what to change instead of "unknown key".
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
    REPLACED_KEYS: ClassVar[dict[str, str]] = {}


def split_host_port(value: str) -> tuple[str, int]:
    """Parse ``host:port`` (IPv6 in brackets); raise ValueError with a readable reason."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:8080, got {json.dumps(value)}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"IPv6 host must be in brackets, e.g. [::1]:8080, got {json.dumps(value)}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"IPv6 host must be in brackets, e.g. [::1]:8080, got {json.dumps(value)}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be from 1 to 65535, got {json.dumps(value)}")
    return host, int(port_text)


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: a listener or a connection that never leaves this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_listen(value: str) -> str:
    split_host_port(value)
    return value


def check_public_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
        raise ValueError(f"must be the public base URL, like https://box.example.com, got {value!r}")
    return value.rstrip("/")


# ``host:port`` a server listens on; the base URL a service is reached at from outside.
ListenAddress = Annotated[str, AfterValidator(_check_listen)]
PublicUrl = Annotated[str, AfterValidator(check_public_url)]
