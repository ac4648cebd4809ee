"""Which RHVoice voices the box may offer: the licence table against Debian's copyright file, refusals at config load."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import bundled_config_text, parse_config_text
from config.rhvoice_voices import RHVOICE_VOICES, check_offered, offered_voices
from engines.tts.rhvoice_voices import COPYRIGHT_FILE, VOICES_DIR, copyright_licences, installed_voices

installed = pytest.mark.skipif(
    not COPYRIGHT_FILE.is_file() or not VOICES_DIR.is_dir(),
    reason=f"rhvoice-russian is absent on this machine ({COPYRIGHT_FILE} / {VOICES_DIR} missing)",
)

PERSONA = """
personas:
  vera:
    display_name: Вера
    language: ru
    system_prompt: Ты Вера, секретарь.
    greeting: Здравствуйте!
    goodbye: До свидания!
    voice: {{tts: [rhvoice, espeak], name: {voice}}}
"""


def _load(extra: str) -> object:
    return parse_config_text(bundled_config_text() + extra, "box.yaml", {})


def test_only_voices_licensed_for_commercial_use_are_offered() -> None:
    assert offered_voices("ru") == ["aleksandr", "aleksandr-hq", "anna", "elena", "irina"]
    assert len([v for v in RHVOICE_VOICES.values() if not v.commercial]) == 9
    assert check_offered(" Irina ", "ru") == "irina"
    with pytest.raises(ValueError, match="'victoria' is licensed CC-BY-NC-ND-4.0 .*allowed: aleksandr, aleksandr-hq"):
        check_offered("victoria")
    with pytest.raises(ValueError, match="'natasha' is not an RHVoice voice"):
        check_offered("natasha")


@installed
def test_the_table_matches_the_installed_packages_copyright() -> None:
    voices = installed_voices()
    assert set(voices) == set(RHVOICE_VOICES), "rhvoice-russian ships other voices than config/rhvoice_voices.py knows"
    assert all(v.language == "ru" for v in voices.values())
    dirs = sorted(p.parent.name for p in VOICES_DIR.glob("*/voice.info"))
    licences = copyright_licences(COPYRIGHT_FILE, dirs)
    assert {d.lower(): licences[d] for d in dirs} == {v.id: v.licence for v in RHVOICE_VOICES.values()}


def test_default_config_speaks_russian_with_rhvoice() -> None:
    loaded = parse_config_text(bundled_config_text(), "default.yaml", {})
    tts = loaded.settings.engines.tts
    assert tts.chain == ["piper", "rhvoice", "espeak"] and tts.rhvoice.voices == {"ru": "irina"}
    gulya = loaded.settings.personas["gulya"]
    assert gulya.language == "ru" and gulya.voice.tts == ["xtts", "rhvoice", "espeak"]


def test_a_non_commercial_voice_is_refused_at_config_load() -> None:
    with pytest.raises(ConfigError) as caught:
        _load("engines:\n  tts:\n    rhvoice:\n      voices: {ru: pavel}\n")
    text = caught.value.render()
    assert "engines.tts.rhvoice.voices: RHVoice voice 'pavel' is licensed CC-BY-NC-ND-4.0 (no commercial use)" in text
    assert "allowed: aleksandr, aleksandr-hq, anna, elena, irina" in text
    with pytest.raises(ConfigError, match=r"personas.vera.voice.name: RHVoice voice 'Tatiana' is licensed CC-BY-NC-ND"):
        _load(PERSONA.format(voice="Tatiana"))


def test_a_persona_may_name_an_offered_voice() -> None:
    loaded = _load(PERSONA.format(voice="Anna"))
    assert loaded.settings.personas["vera"].voice.name == "anna"  # type: ignore[attr-defined]


def test_the_engine_is_offered_what_the_config_allows(tmp_path: Path) -> None:
    from daemon.engine_host.engine_wiring import tts_slots

    loaded = parse_config_text(bundled_config_text(), "default.yaml", {})
    slots = {slot.label: slot for slot in tts_slots(loaded.settings.engines.tts, tmp_path)}
    backend = slots["rhvoice"].build()
    settings = backend._settings  # type: ignore[attr-defined]
    assert settings.voice_ids == frozenset(offered_voices())


def test_doctor_says_what_is_installed_or_how_to_install_it(tmp_path: Path) -> None:
    from daemon.engine_host.model_files import rhvoice_check

    absent = rhvoice_check({"ru": "irina"}, voices_dir=tmp_path / "none")
    assert not absent.ok and absent.engine == "tts/rhvoice"
    assert "non-free" in absent.detail and "apt-get install --no-install-recommends librhvoice5 rhvoice-russian" in absent.detail
    if VOICES_DIR.is_dir():
        present = rhvoice_check({"ru": "irina"})
        assert present.ok and "(ru=irina)" in present.detail
        assert "installed: aleksandr, aleksandr-hq, anna, elena, irina (+9 non-commercial, not offered:" in present.detail
