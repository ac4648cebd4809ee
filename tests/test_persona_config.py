"""Personas and the call section: bundled defaults, merging, and cross-section checks a person can act on."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import parse_config_text


def load(text: str):  # type: ignore[no-untyped-def]
    return parse_config_text("box_id: b\n" + text, "test.yaml").settings


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return "\n".join(str(issue) for issue in caught.value.issues)


def test_bundled_personas_ship_russian_and_english() -> None:
    cfg = load("")
    assert cfg.personas["gulya"].language == "ru" and cfg.personas["lidia"].language == "en"
    assert cfg.call.persona == "lidia"


def test_a_config_persona_is_merged_over_the_bundled_ones() -> None:
    cfg = load(
        "call: {persona: anna}\n"
        "personas:\n  anna: {display_name: Anna, language: en, system_prompt: p, greeting: Hi, goodbye: Bye}\n"
    )
    assert set(cfg.personas) == {"gulya", "lidia", "anna"}


def test_unknown_persona_is_explained() -> None:
    assert "call.persona is 'nobody', which is not a persona (defined: gulya, lidia)" in problems("call: {persona: nobody}\n")


def test_persona_llm_chain_must_name_backends() -> None:
    text = "personas:\n  lidia: {display_name: L, language: en, system_prompt: p, greeting: Hi, goodbye: Bye, llm: {chain: [cloud]}}\n"
    assert "personas.lidia.llm.chain names 'cloud', which is not under engines.llm.backends (defined: local)" in problems(text)


def test_persona_lora_must_exist_on_a_vllm_backend() -> None:
    text = "personas:\n  lidia: {display_name: L, language: en, system_prompt: p, greeting: Hi, goodbye: Bye, llm: {lora: lidia-style}}\n"
    assert "no vllm backend it may use has that adapter (adapters: none)" in problems(text)


def test_persona_voice_must_be_an_xtts_voice_when_xtts_speaks_for_it() -> None:
    text = (
        "engines: {tts: {chain: [xtts, espeak]}}\n"
        "personas:\n  lidia: {display_name: L, language: en, system_prompt: p, greeting: Hi, goodbye: Bye, voice: {name: anna}}\n"
    )
    assert "personas.lidia.voice.name is 'anna', which is not under engines.tts.xtts.voices (defined: none)" in problems(text)


def test_persona_tts_must_share_a_backend_with_the_chain() -> None:
    text = "personas:\n  lidia: {display_name: L, language: en, system_prompt: p, greeting: Hi, goodbye: Bye, voice: {tts: [xtts]}}\n"
    assert "shares no backend with engines.tts.chain" in problems(text)


def test_call_section_rejects_the_same_dtmf_key_twice() -> None:
    assert "leave_message and end_call must be different keys" in problems('call: {dtmf: {leave_message: "#", end_call: "#"}}\n')


def test_packaged_llm_is_not_conversational_unless_said() -> None:
    assert load("").engines.llm.backends["local"].is_conversational is False
    cfg = load("engines: {llm: {backends: {local: {kind: llama_cpp, conversational: true}}}}\n")
    assert cfg.engines.llm.backends["local"].is_conversational is True
