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
    echo_margin_db: float | None = Field(
        6.0, ge=0, le=40,
        json_schema_extra={"allowed": "caller audio must be this much louder than the predicted echo of the box's own "
                                      "voice to count as speech while it talks (0..40 dB; null: no echo gate)"},
    )


class TurnEndConfig(Section):
    """The turn-end model (engines.vad.turn_end_model) ends the caller's turn at a short pause when it is complete."""

    enabled: bool = True
    pause_ms: int = Field(
        200, ge=60, le=2000,
        json_schema_extra={"allowed": "caller silence after which the turn-end model is asked whether they have "
                                      "finished (60..2000 ms, below call.endpoint_silence_ms)"},
    )
    threshold: float = Field(
        0.95, gt=0, lt=1,
        json_schema_extra={"allowed": "the model's probability of a complete turn at or above which the turn ends "
                                      "at the pause (between 0 and 1, e.g. 0.95)"},
    )
    max_silence_ms: int = Field(
        1000, ge=150, le=5000,
        json_schema_extra={"allowed": "caller silence that ends a turn the model judged unfinished (150..5000 ms, "
                                      "at least call.endpoint_silence_ms)"},
    )


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
    turn_end: TurnEndConfig = Field(default_factory=TurnEndConfig)
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

    @model_validator(mode="after")
    def _check_turn_end(self) -> CallConfig:
        turn_end = self.turn_end
        if not turn_end.enabled:
            return self
        given = turn_end.model_fields_set
        if turn_end.pause_ms >= self.endpoint_silence_ms and "pause_ms" not in given:
            object.__setattr__(self, "turn_end", turn_end.model_copy(update={"enabled": False}))
            return self  # a very short endpoint window leaves no room for the model's pause
        if turn_end.max_silence_ms < self.endpoint_silence_ms and "max_silence_ms" not in given:
            turn_end = turn_end.model_copy(update={"max_silence_ms": self.endpoint_silence_ms})
            object.__setattr__(self, "turn_end", turn_end)  # a long endpoint window is the longest wait too
        if turn_end.pause_ms >= self.endpoint_silence_ms:
            raise ValueError(
                f"turn_end.pause_ms ({turn_end.pause_ms}) must be below endpoint_silence_ms "
                f"({self.endpoint_silence_ms}): the turn-end model is asked inside the silence that would end the "
                "turn anyway (or set turn_end.enabled: false)"
            )
        if turn_end.max_silence_ms < self.endpoint_silence_ms:
            raise ValueError(
                f"turn_end.max_silence_ms ({turn_end.max_silence_ms}) must be at least endpoint_silence_ms "
                f"({self.endpoint_silence_ms}): it is how long a caller the model heard as unfinished may pause"
            )
        return self
