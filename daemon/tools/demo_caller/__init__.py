"""Bundled caller recordings for ``secretary demo`` and the end-to-end tests.

A simulated caller leaves a message for the box's owner, one line per turn:
introduces himself and the reason for the call, gives a phone number in words,
confirms, then asks for one more thing in a longer line (for barge-in tests).
``<language>/script.json`` lists the lines in order; each WAV is 8 kHz mono
PCM16 with about 0.2 s of silence either side and its peak near -3 dBFS.
English is Piper's joe voice, Russian espeak-ng (robotic: whisper-base does not
understand it). ``scripts/make_demo_caller`` regenerates the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RECORDINGS_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "ru")
MANIFEST = "script.json"


@dataclass(frozen=True)
class CallerLine:
    """One recorded caller turn: the WAV, what is said in it, and its length in seconds."""

    wav: Path
    text: str
    seconds: float


def caller_script(language: str) -> list[CallerLine]:
    """The caller's lines in ``language`` ("en" or "ru"), in the order they are spoken."""
    if language not in LANGUAGES:
        raise ValueError(f"no caller recordings for language {language!r}; have {', '.join(LANGUAGES)}")
    directory = RECORDINGS_DIR / language
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    return [
        CallerLine(wav=directory / line["wav"], text=line["text"], seconds=float(line["seconds"]))
        for line in manifest["lines"]
    ]
