"""``channels.twilio``: calls to Twilio numbers, answered by the same secretary over Media Streams.

Twilio reaches the box at ``public_url`` (a reverse proxy or tunnel in front
of ``listen``). The account SID and auth token come from the environment;
the token also checks every webhook's ``X-Twilio-Signature``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from config.section import EnvVarName, ListenAddress, PublicUrl, Section

E164 = Annotated[
    str,
    Field(pattern=r"^\+[1-9][0-9]{6,14}$", json_schema_extra={"allowed": "a number in E.164 form, e.g. +15551230000"}),
]


class TwilioConfig(Section):
    enabled: bool = False
    listen: ListenAddress = Field("127.0.0.1:8090", json_schema_extra={"allowed": "host:port the webhooks listen on"})
    public_url: PublicUrl | None = Field(
        None, json_schema_extra={"allowed": "the https:// URL Twilio reaches this box at (required when enabled)"}
    )
    account_sid_env: EnvVarName = "SECRETARY_TWILIO_ACCOUNT_SID"
    auth_token_env: EnvVarName = "SECRETARY_TWILIO_AUTH_TOKEN"
    media_streams: bool = Field(
        True, json_schema_extra={"allowed": "true: live audio over Media Streams; false: the <Gather>/<Say> fallback"}
    )
    numbers: dict[E164, str] = Field(
        default_factory=dict,
        json_schema_extra={"allowed": "a mapping of Twilio number to persona id (others get call.persona)"},
    )

    @model_validator(mode="after")
    def _public_url_when_enabled(self) -> TwilioConfig:
        if self.enabled and self.public_url is None:
            raise ValueError("public_url is required when enabled: Twilio signs its webhooks for that URL")
        return self
