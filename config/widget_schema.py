"""``channels.widget``: the website chat widget, one entry per embedded widget.

A site embeds ``<script src="<public_url>/widget.js" data-widget="<id>" async></script>``.
Each widget has its own persona, look, allowed origins (the pages that may
embed it) and rate limit.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from config.section import ListenAddress, PublicUrl, Section

WidgetId = Annotated[
    str,
    Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$",
          json_schema_extra={"allowed": "a short id: lower-case letters, digits, '_' or '-'"}),
]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", json_schema_extra={"allowed": "a colour like #2563eb"})]
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class WidgetConfig(Section):
    persona: str | None = Field(None, json_schema_extra={"allowed": "a persona id (default: call.persona)"})
    title: str = Field("Chat with us", min_length=1, max_length=60)
    greeting: str | None = Field(None, max_length=400, json_schema_extra={"allowed": "the first message (default: the persona's greeting)"})
    primary_color: Color = "#2563eb"
    text_color: Color = "#ffffff"
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    allowed_origins: list[str] = Field(
        min_length=1,
        json_schema_extra={"allowed": "origins of the pages that may embed it, like https://example.com"},
    )
    messages_per_minute: int = Field(10, ge=1, le=600)
    history_turns: int = Field(10, ge=0, le=20)
    llm: list[str] | None = Field(
        None, min_length=1, json_schema_extra={"allowed": "backend names under engines.llm.backends, or null"}
    )

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], no path, e.g. https://example.com")
        return value


class WidgetsConfig(Section):
    listen: ListenAddress = Field("127.0.0.1:8091", json_schema_extra={"allowed": "host:port the widget server listens on"})
    public_url: PublicUrl | None = Field(
        None, json_schema_extra={"allowed": "the URL sites load widget.js from (for the embed snippet), or null"}
    )
    widgets: dict[WidgetId, WidgetConfig] = Field(default_factory=dict)
