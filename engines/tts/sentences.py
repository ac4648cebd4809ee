"""Split normalised text into sentences, the unit TTS backends stream by.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or
brackets) followed by whitespace, or at a line break. Text reaching the
splitter is already normalised, so abbreviations like "Dr." are spelled out and
do not end sentences. A sentence longer than ``max_chars`` (XTTS has a
per-language limit) is cut at the last comma, semicolon, colon or dash before
the limit, else at the last space.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»”)\]]*\s+|\n+")
_SOFT_BREAK = re.compile(r"[,;:—–]\s")


def split_sentences(text: str, max_chars: int | None = None) -> list[str]:
    """Sentences of ``text`` (stripped, none empty), each at most ``max_chars`` long when given."""
    if max_chars is not None and max_chars < 20:
        raise ValueError(f"max_chars must be at least 20, got {max_chars}")
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(0).rstrip())
        sentences.append(text[start:end])
        start = match.end()
    sentences.append(text[start:])
    cleaned = [s.strip() for s in sentences if _speakable(s)]
    if max_chars is None:
        return cleaned
    result: list[str] = []
    for sentence in cleaned:
        result.extend(_cut(sentence, max_chars))
    return result


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _cut(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = -1
        for match in _SOFT_BREAK.finditer(window):
            if match.start() + 1 >= max_chars // 3:
                cut = match.start() + 1
        if cut < 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        piece, rest = rest[:cut].strip(), rest[cut:].strip()
        if _speakable(piece):
            pieces.append(piece)
    if _speakable(rest):
        pieces.append(rest)
    return pieces
