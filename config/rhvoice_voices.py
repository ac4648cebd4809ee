"""The RHVoice voices Debian ships (``rhvoice-russian`` 1.8) and their licences: which ones the box may offer.

The box is a commercial product, so only voices whose licence allows
commercial use may be configured. The licences are those of Debian's
``/usr/share/doc/rhvoice-russian/copyright`` (1.8.0+dfsg-3): voices without a
``Files: data/voices/<name>/*`` stanza fall under ``data/*`` (LGPL-2.1+);
Aleksandr-hq is CC-BY-SA-4.0 (commercial use allowed, with attribution); the
other nine Russian voices are CC-BY-NC-ND-4.0 and are refused at config load.
``tests/engines/test_tts_rhvoice_voices.py`` checks this table against the
installed copyright file, so a new package version with other terms fails CI.

Voice ids are the lowercase names RHVoice reports (``Irina`` -> ``irina``).
This module is data only: ``config`` validates against it, the daemon hands the
offered names to the TTS engine, ``secretary doctor`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMERCIAL_LICENCES = frozenset({"LGPL-2.1+", "CC-BY-SA-4.0"})


@dataclass(frozen=True)
class RhvoiceVoice:
    id: str
    language: str
    gender: str
    licence: str

    @property
    def commercial(self) -> bool:
        return self.licence in COMMERCIAL_LICENCES


RHVOICE_VOICES: dict[str, RhvoiceVoice] = {
    v.id: v
    for v in (
        RhvoiceVoice("aleksandr", "ru", "male", "LGPL-2.1+"),
        RhvoiceVoice("aleksandr-hq", "ru", "male", "CC-BY-SA-4.0"),
        RhvoiceVoice("anna", "ru", "female", "LGPL-2.1+"),
        RhvoiceVoice("elena", "ru", "female", "LGPL-2.1+"),
        RhvoiceVoice("irina", "ru", "female", "LGPL-2.1+"),
        RhvoiceVoice("arina", "ru", "female", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("artemiy", "ru", "male", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("evgeniy-rus", "ru", "male", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("mikhail", "ru", "male", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("pavel", "ru", "male", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("tatiana", "ru", "female", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("victoria", "ru", "female", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("vitaliy", "ru", "male", "CC-BY-NC-ND-4.0"),
        RhvoiceVoice("yuriy", "ru", "male", "CC-BY-NC-ND-4.0"),
    )
}


def offered_voices(language: str | None = None) -> list[str]:
    """The voice ids the box may offer (commercial use allowed), optionally of one language."""
    return sorted(v.id for v in RHVOICE_VOICES.values() if v.commercial and (language is None or v.language == language))


def check_offered(name: str, language: str | None = None) -> str:
    """``name`` as a voice id if the box may offer it; otherwise ``ValueError`` saying why and what is allowed."""
    voice_id = name.strip().lower()
    allowed = ", ".join(offered_voices(language))
    voice = RHVOICE_VOICES.get(voice_id)
    if voice is None:
        raise ValueError(f"{name!r} is not an RHVoice voice of Debian's rhvoice-russian (allowed: {allowed})")
    if not voice.commercial:
        raise ValueError(
            f"RHVoice voice {name!r} is licensed {voice.licence} (no commercial use) and cannot be offered "
            f"by the box; allowed: {allowed}"
        )
    if language is not None and voice.language != language:
        raise ValueError(f"RHVoice voice {name!r} speaks {voice.language!r}, not {language!r} (allowed: {allowed})")
    return voice_id
