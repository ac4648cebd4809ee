"""``normalize(text, language)``: the text a TTS voice should read, from the text an LLM wrote.

First a language-independent clean-up: Unicode NFC, every kind of space
becomes a plain one, Markdown emphasis, headings, bullets and link targets
are dropped (an LLM writes them; a voice would read them), emoji go. Then the
language's rules spell out numbers, dates, times, phone numbers, money,
abbreviations (and, in Russian, Latin words). Languages without rules get the
clean-up only. Line breaks are kept: the sentence splitter treats them as
sentence ends.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from engines.text_normalize.english import normalize_english
from engines.text_normalize.russian import normalize_russian

RULES: dict[str, Callable[[str], str]] = {"en": normalize_english, "ru": normalize_russian}
SUPPORTED_LANGUAGES = frozenset(RULES)

_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000\t]")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufe0e\ufe0f]")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)\s]+)\)")
_MARKDOWN_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|`+)(?=\S)(.+?)(?<=\S)\1")
_MARKDOWN_LINE_START = re.compile(r"^[ ]*(?:#{1,6}[ ]+|[-*•·][ ]+|>[ ]*)", re.MULTILINE)
_KEEP_SYMBOLS = frozenset("°№©®™")
_MANY_SPACES = re.compile(r"[ ]{2,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ ]+([,.!?;:…])")
_BLANK_LINES = re.compile(r"[ ]*\n[\n ]*")


def base_language(language: str) -> str:
    """"ru-RU" -> "ru"."""
    return language.split("-")[0].split("_")[0].lower()


def clean_up(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", _SPACES.sub(" ", text)).replace("\r\n", "\n").replace("\r", "\n")
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _MARKDOWN_EMPHASIS.sub(r"\2", text)
    text = _MARKDOWN_LINE_START.sub("", text)
    return "".join(ch for ch in text if ch in _KEEP_SYMBOLS or unicodedata.category(ch) not in ("So", "Cs", "Co", "Cn"))


def tidy(text: str) -> str:
    text = _MANY_SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return _BLANK_LINES.sub("\n", text).strip()


def normalize(text: str, language: str) -> str:
    """``text`` as words a ``language`` voice reads correctly ("en", "ru"; others: clean-up only)."""
    rules = RULES.get(base_language(language))
    text = clean_up(text)
    if rules is not None:
        text = rules(text)
    return tidy(text)
