"""What the installed RHVoice packages hold: their voices and the licence Debian's copyright file gives each.

Both read package files only (no library): ``installed_voices`` the
``voice.info`` of each voice directory under ``/usr/share/RHVoice/voices``,
``copyright_licences`` the ``Files: data/voices/<dir>/*`` stanzas of a Debian
machine-readable copyright file (voices without their own stanza fall under
``Files: data/*``). ``secretary doctor`` lists the former; a test holds the
config's licence table (config/rhvoice_voices.py) to the latter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VOICES_DIR = Path("/usr/share/RHVoice/voices")
COPYRIGHT_FILE = Path("/usr/share/doc/rhvoice-russian/copyright")
_LANGUAGE_CODES = {"russian": "ru", "english": "en", "ukrainian": "uk", "tatar": "tt", "polish": "pl"}


@dataclass(frozen=True)
class InstalledVoice:
    id: str
    name: str
    language: str
    gender: str


def installed_voices(voices_dir: Path = VOICES_DIR) -> dict[str, InstalledVoice]:
    """Voice id (lowercase name) -> the voice, for every readable ``voice.info``; {} when RHVoice is absent."""
    found: dict[str, InstalledVoice] = {}
    if not voices_dir.is_dir():
        return found
    for info in sorted(voices_dir.glob("*/voice.info")):
        try:
            text = info.read_text(encoding="utf-8")
        except OSError:
            continue
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        name = fields.get("name", "").strip()
        if not name:
            continue
        language = fields.get("language", "").strip()
        found[name.lower()] = InstalledVoice(
            id=name.lower(),
            name=name,
            language=_LANGUAGE_CODES.get(language.lower(), language.lower()),
            gender=fields.get("gender", "").strip(),
        )
    return found


def copyright_licences(copyright_file: Path, voice_dirs: list[str]) -> dict[str, str]:
    """The licence of each voice directory name (e.g. ``evgeniy-rus``) by Debian's copyright file."""
    stanzas = re.split(r"\n\s*\n", copyright_file.read_text(encoding="utf-8"))
    by_pattern: dict[str, str] = {}
    for stanza in stanzas:
        files = re.search(r"^Files:((?:.*\n?)(?:[ \t]+.*\n?)*)", stanza, re.MULTILINE)
        licence = re.search(r"^License:\s*(\S+)", stanza, re.MULTILINE)
        if files and licence:
            for pattern in files.group(1).split():
                by_pattern[pattern] = licence.group(1)
    default = by_pattern.get("data/*", "")
    return {name: by_pattern.get(f"data/voices/{name}/*", default) for name in voice_dirs}
