"""What every spoken-field parser shares: the two languages, case folding, and the words of an utterance.

STT output varies case, apostrophes and "ё"/"е"; the parsers compare folded words and keep each
word's place in the text so that what they find can be cut out of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LANGUAGES: tuple[str, ...] = ("en", "ru")


def check_language(language: str) -> str:
    """'en', 'ru' (also 'en-US', 'ru_RU', any case) -> 'en' / 'ru'; anything else raises ValueError."""
    base = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    if base not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return base


def fold(text: str) -> str:
    """Lowercase, ё -> е, typographic apostrophes -> "'"."""
    return text.lower().replace("ё", "е").replace("’", "'").replace("ʼ", "'")


_WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*|\d+|[.,!?;:…—–]|(?<!\w)-(?!\w)")

# Hesitations in any length: "ummm", "hmmm", "эээ", "ммм", "эм".
FILLER_RE = re.compile(r"^(?:u+h+|u+m+|e+r+m*|h+m+|a+h+|m+|o+h+|э+м*|м+|х+м+|а+)$")


def is_filler(word: str) -> bool:
    """A hesitation, also as whisper hyphenates it: "э-э", "э-э-э", "м-м", "uh-uh"."""
    return bool(FILLER_RE.match(fold(word).replace("-", "")))


@dataclass(frozen=True)
class Token:
    text: str  # as written
    folded: str  # lowercase, ё -> е
    start: int
    end: int

    @property
    def is_word(self) -> bool:
        return self.text[0].isalpha()


def word_tokens(text: str) -> list[Token]:
    return [Token(m.group(), fold(m.group()), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def has_case(text: str) -> bool:
    """Whether the STT output carries case at all (not all-lowercase, not all-caps)."""
    letters = [c for c in text if c.isalpha()]
    return any(c.isupper() for c in letters) and any(c.islower() for c in letters)
