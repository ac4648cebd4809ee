"""The ``personas`` section: who answers the phone, in which language and voice.

A persona is everything the caller perceives: the name it gives, the language
it speaks, its greeting and goodbye, its voice (which TTS backends may speak
for it, the cloned voice it speaks with (its reference samples are
configured once under ``engines.tts.xtts.voices``), an intonation preset), which LLM
backends may write its replies (and the LoRA adapter that gives them its
style), what it asks a caller who leaves a message and which business facts it
may share. The defaults (``gulya`` in Russian, ``lidia`` in English) ship in
``config/personas.yaml``.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from config.rhvoice_voices import RHVOICE_VOICES, check_offered, offered_voices
from config.section import Section

PersonaName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        json_schema_extra={"allowed": "a short id of lowercase letters, digits, '_' or '-' (e.g. lidia)"},
    ),
]
AskedSlot = Literal["name", "reason", "callback_number"]
TtsBackendName = Literal["xtts", "piper", "rhvoice", "espeak"]
Preset = Literal["warm", "calm", "energetic", "natural", "neutral"]


class PersonaVoice(Section):
    tts: list[TtsBackendName] | None = Field(
        None,
        json_schema_extra={"allowed": "the TTS backends that may speak for this persona (a subset of engines.tts.chain), or null for all"},
    )
    name: str | None = Field(
        None,
        min_length=1,
        json_schema_extra={
            "allowed": "a cloned voice under engines.tts.xtts.voices (its reference samples live there), "
            f"an RHVoice voice licensed for commercial use ({', '.join(offered_voices())}), or null"
        },
    )
    preset: Preset | None = None

    @field_validator("name")
    @classmethod
    def _licensed(cls, name: str | None) -> str | None:
        if name is not None and name.strip().lower() in RHVOICE_VOICES:
            return check_offered(name)
        return name


class PersonaLlm(Section):
    chain: list[str] | None = Field(
        None, json_schema_extra={"allowed": "names of engines.llm.backends this persona may use, or null for all"}
    )
    lora: str | None = Field(
        None, min_length=1, json_schema_extra={"allowed": "a LoRA adapter name of a vllm backend, or null"}
    )


class PersonaConfig(Section):
    display_name: str = Field(min_length=1, max_length=64)
    language: Literal["en", "ru"]
    system_prompt: str = Field(min_length=1)
    greeting: str = Field(min_length=1, max_length=400)
    goodbye: str = Field(min_length=1, max_length=400)
    voice: PersonaVoice = Field(default_factory=PersonaVoice)
    llm: PersonaLlm = Field(default_factory=PersonaLlm)
    asks: list[AskedSlot] = Field(default_factory=lambda: ["name", "reason", "callback_number"])
    facts: list[str] = Field(
        default_factory=list, json_schema_extra={"allowed": "short facts the persona may tell callers"}
    )
    dialogue: Literal["auto", "llm", "scripted"] = Field(
        "auto",
        json_schema_extra={
            "allowed": "'auto' (the LLM when a conversational backend is up, else the scripted take-a-message policy), 'llm' or 'scripted'"
        },
    )

    @model_validator(mode="after")
    def _check(self) -> PersonaConfig:
        if len(set(self.asks)) != len(self.asks):
            raise ValueError("asks names a slot twice")
        return self


def bundled_personas() -> dict[str, PersonaConfig]:
    """The default personas shipped in ``config/personas.yaml``."""
    text = resources.files("config").joinpath("personas.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {name: PersonaConfig.model_validate(value) for name, value in data.items()}
