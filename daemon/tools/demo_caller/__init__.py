"""Bundled caller recordings for ``secretary demo`` and the end-to-end tests.

A simulated caller leaves a message for the box's owner, one line per turn:
introduces himself and the reason for the call, gives a phone number in words,
confirms, then asks for one more thing in a longer line (for barge-in tests).
``<language>/script.json`` lists the lines in order; each WAV is 8 kHz mono
PCM16 with about 0.2 s of silence either side and its peak near -3 dBFS.
English is Piper's joe voice; Russian is RHVoice's male voice Aleksandr
(quality max), a different voice from the Russian secretary's (Irina). Whisper-base
hears the Russian lines at 8 kHz almost word for word (it writes ё as е and
"четвергутром" as one word), and hears the number as "8, 916, 1, 2345, 67".
The number is dictated with a pause after the 8 ("восемь, девятьсот шестнадцать").
Without that pause whisper sometimes heard "816".
``scripts/make_demo_caller`` regenerates the files (``--check`` transcribes them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDINGS_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "ru")
MANIFEST = "script.json"


@dataclass(frozen=True)
class CallerLine:
    """One recorded caller turn: the WAV, what is said in it, and its length in seconds."""

    wav: Path
    text: str
    seconds: float


def _manifest(language: str) -> dict[str, Any]:
    if language not in LANGUAGES:
        raise ValueError(f"no caller recordings for language {language!r}; have {', '.join(LANGUAGES)}")
    manifest: dict[str, Any] = json.loads((RECORDINGS_DIR / language / MANIFEST).read_text(encoding="utf-8"))
    return manifest


def caller_voice(language: str) -> str:
    """Which voice speaks the caller's lines in ``language`` (as ``scripts/make_demo_caller`` wrote it)."""
    return str(_manifest(language)["voice"])


def caller_script(language: str) -> list[CallerLine]:
    """The caller's lines in ``language`` ("en" or "ru"), in the order they are spoken."""
    directory = RECORDINGS_DIR / language
    manifest = _manifest(language)
    return [
        CallerLine(wav=directory / line["wav"], text=line["text"], seconds=float(line["seconds"]))
        for line in manifest["lines"]
    ]
