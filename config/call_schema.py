"""The ``call`` section: how a call is conducted and how long its record is kept."""

from __future__ import annotations

from pydantic import Field, model_validator

from config.section import Section

_DTMF = r"^[0-9*#A-D]$"


class BargeInConfig(Section):
    enabled: bool = True
    min_speech_ms: int = Field(
        100, ge=20, le=1000, json_schema_extra={"allowed": "caller speech this long stops the secretary (20..1000 ms)"}
    )
    fade_ms: float = Field(20.0, ge=0, le=200)


class DtmfConfig(Section):
    leave_message: str | None = Field("0", pattern=_DTMF, json_schema_extra={"allowed": "one DTMF key (0-9 * # A-D) or null"})
    end_call: str | None = Field("#", pattern=_DTMF, json_schema_extra={"allowed": "one DTMF key (0-9 * # A-D) or null"})

    @model_validator(mode="after")
    def _check(self) -> DtmfConfig:
        if self.leave_message is not None and self.leave_message == self.end_call:
            raise ValueError("leave_message and end_call must be different keys")
        return self


class CallConfig(Section):
    persona: str = Field(
        "lidia", min_length=1, json_schema_extra={"allowed": "the name of a persona under personas"}
    )
    endpoint_silence_ms: int = Field(
        550, ge=150, le=3000,
        json_schema_extra={"allowed": "caller silence that ends their turn (150..3000 ms)"},
    )
    early_stt_ms: int = Field(
        200, ge=0, le=3000,
        json_schema_extra={"allowed": "with a whisper STT: start transcribing after this much caller silence, "
                                      "before the turn ends (ms, below endpoint_silence_ms; 0: only at the end)"},
    )
    min_utterance_ms: int = Field(
        250, ge=0, le=3000, json_schema_extra={"allowed": "shorter caller sounds are ignored as noise (ms)"}
    )
    barge_in: BargeInConfig = Field(default_factory=BargeInConfig)
    dtmf: DtmfConfig = Field(default_factory=DtmfConfig)
    filler_after_ms: int = Field(
        1000, ge=200, le=2000,
        json_schema_extra={"allowed": "with no reply audio this long after the caller's turn, say a short filler (ms)"},
    )
    silence_prompt_s: float = Field(8.0, ge=2, le=120)
    silence_hangup_s: float = Field(8.0, ge=2, le=120)
    max_duration_s: float = Field(300.0, ge=10, le=7200)
    summary_timeout_s: float = Field(15.0, gt=0, le=120)
    retention_days: float = Field(
        90.0, ge=0, le=3650, json_schema_extra={"allowed": "days to keep call records; 0 keeps them forever"}
    )
    record_audio: bool = True
    min_free_mb: float = Field(
        200.0, ge=0, le=1_000_000,
        json_schema_extra={"allowed": "MB kept free on the data partition: below it the oldest calls' audio is "
                                      "deleted (transcripts kept) and model staging is refused; 0 turns this off"},
    )
    max_answer_wait_s: float = Field(
        20.0, ge=0, le=120,
        json_schema_extra={"allowed": "seconds a call due to be answered may ring on while the box cannot speak yet "
                                      "(engines or greeting still loading); then it is turned away and reported "
                                      "missed, reason not_ready (0..120; 0: turn it away at once)"},
    )

    @model_validator(mode="after")
    def _check_early_stt(self) -> CallConfig:
        if self.early_stt_ms >= self.endpoint_silence_ms and "early_stt_ms" not in self.model_fields_set:
            object.__setattr__(self, "early_stt_ms", 0)  # a very short endpoint window leaves no room for it
        elif self.early_stt_ms >= self.endpoint_silence_ms:
            raise ValueError(
                f"early_stt_ms ({self.early_stt_ms}) must be below endpoint_silence_ms ({self.endpoint_silence_ms}): "
                "the early transcript is started inside the silence that ends the caller's turn"
            )
        return self
