"""The base every config section shares, and field types used across sections."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

EnvVarName = Annotated[
    str,
    Field(
        pattern=_ENV_NAME.pattern,
        json_schema_extra={"allowed": "an environment variable name like SECRETARY_MQTT_PASSWORD"},
    ),
]


class Section(BaseModel):
    """Base of every config section: immutable, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
