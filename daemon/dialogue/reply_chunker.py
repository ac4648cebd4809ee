"""Streaming chunker between the LLM and TTS: text deltas in, speakable pieces out.

The LLM streams a reply a few characters at a time; TTS wants whole sentences,
but should start on the first piece as soon as it can be spoken naturally.
``ReplyChunker.feed`` returns the pieces that are ready, ``flush`` the rest at
the end of the reply.

Where a piece ends:

- At a sentence end: a run of ``.`` ``!`` ``?`` ``…`` (so also ``?!`` and
  ``...``), optionally followed by closing quotes/brackets, markdown or emoji,
  once the next character is known to be whitespace (or the reply ended).
  "3." at the end of the text so far is not yet a sentence end ("3.5" may
  follow). A single period is not a sentence end after an abbreviation (see
  ``_EN_ABBREVIATIONS``/``_RU_ABBREVIATIONS``: titles such as "Dr." or "ул."
  never end one; "etc.", "a.m.", "руб." end one only when the next word is
  capitalised; "No." and month names are abbreviations only before a number),
  after a single capital initial ("J. K. Rowling", "А. С. Пушкин") or a single
  lowercase Cyrillic letter ("г.", "д.", "т. е."). A list number at the start
  of a line ("1. Call John") is kept with its item: it is not a sentence end.
- At a line break.
- At a clause break (``,`` ``;`` ``:`` followed by whitespace, or a spaced
  dash `` — `` `` – `` `` - ``): the first piece of a reply once it holds
  ``first_min_words`` words (so TTS starts early), later pieces once they hold
  ``min_words`` words and more than 80 characters. A clause break with digits
  on both sides ("555, 0134", "10 - 12") is never a cut.
- Otherwise, once a piece would pass ``max_chars``, at the last space before
  the limit that is not between two digits (so "+7 916 123-45-67" stays whole
  when it can). No piece is longer than ``max_chars``.

Every decision needs only a few characters of look-ahead and is taken only
once they have arrived, so the pieces do not depend on how the stream was
split into deltas. Pieces are cleaned for speech: markdown (``*``, ``_``,
backticks, ``#`` runs, a list bullet at the start of a line) and emoji are
removed, the text kept; whitespace is collapsed. A piece with no letter or
digit left is dropped.

Both abbreviation tables are used for Russian (a Russian reply may name
"Dr. Smith"); English and any other language use the English one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

TERMINATORS = frozenset(".!?…")
CLAUSE_MARKS = frozenset(",;:")
DASHES = frozenset("—–-")
LINE_BREAKS = frozenset("\n\r\u2028\u2029")
CLOSERS = frozenset("\"'»”’)]")
OPENERS = frozenset("\"'«“„‘([")
MARKUP = frozenset("*_`#")
LONG_CLAUSE_CHARS = 80
_MAX_LIST_NUMBER_DIGITS = 3

_MARKUP_RUN = re.compile(r"[*_`#]+")
_BULLET = re.compile(r"^\s*[-•>]\s+")
_DOTTED_LETTERS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_SINGLE_LETTER = re.compile(r"[^\W\d_]")
_SINGLE_DOTTED_LETTER = re.compile(r"[^\W\d_]\.")

_EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F000, 0x1FAFF),  # pictographs, emoticons, transport, flags, supplemental symbols
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2B00, 0x2BFF),  # stars, arrows used as emoji
    (0x2300, 0x23FF),  # watch, hourglass, alarm clock
    (0xFE00, 0xFE0F),  # variation selectors
    (0x200D, 0x200D),  # zero-width joiner
    (0x20E3, 0x20E3),  # combining keycap
    (0xE0000, 0xE007F),  # tag characters (subdivision flags)
)


class _Rule(Enum):
    """When a period after an abbreviation also ends the sentence."""

    NEVER = "never"  # titles and "e.g.": never a sentence end
    BEFORE_CAPITAL = "before_capital"  # "etc.", "руб.": a sentence end only before a capitalised word
    BEFORE_DIGIT = "before_digit"  # "No.", "Jan.": an abbreviation only before a number


def _table(rule: _Rule, words: str) -> dict[str, _Rule]:
    return dict.fromkeys(words.split(), rule)


_EN_ABBREVIATIONS: dict[str, _Rule] = {
    **_table(_Rule.NEVER, "mr mrs ms dr prof st vs approx e.g i.e mt apt ste fig ext tel cf viz"),
    **_table(_Rule.BEFORE_CAPITAL, "etc a.m p.m inc ltd co corp jr sr ave rd blvd dept u.s u.k ph.d"),
    **_table(_Rule.BEFORE_DIGIT, "no nos nr jan feb mar apr jun jul aug sep sept oct nov dec"),
}
_RU_ABBREVIATIONS: dict[str, _Rule] = {
    **_table(_Rule.NEVER, "т.е т.к ул кв им см стр пр напр тел проф доп пер просп обл ст рис"),
    **_table(_Rule.BEFORE_CAPITAL, "т.д т.п др гг руб коп тыс млн млрд мин сек"),
}


@dataclass(frozen=True)
class _Cut:
    """The piece is ``buffer[:end]``; the rest, from ``end``, starts the next one."""

    end: int


# what deciding at one position yields: a cut, the next position to look at, or None (need more text)
_Decision = _Cut | int | None


class ReplyChunker:
    """Cuts one streamed reply into pieces for TTS; reusable after ``flush``."""

    def __init__(self, language: str, *, first_min_words: int = 3, min_words: int = 6, max_chars: int = 220) -> None:
        if first_min_words < 1 or min_words < 1:
            raise ValueError("first_min_words and min_words must be at least 1")
        if max_chars < 20:
            raise ValueError(f"max_chars must be at least 20, got {max_chars}")
        self.language = language
        self._abbreviations = _abbreviations_for(language)
        self._first_min_words = first_min_words
        self._min_words = min_words
        self._max_chars = max_chars
        self._reset()

    def feed(self, delta: str) -> list[str]:
        """Add a delta of the reply; returns the pieces that are ready to speak now."""
        if not self._buffer:
            delta = self._skip_leading_space(delta)
        self._buffer += delta
        return self._scan(final=False)

    def flush(self) -> list[str]:
        """The reply has ended: returns whatever is left, and starts over for the next reply."""
        pieces = self._scan(final=True)
        self._emit(self._buffer, pieces)
        self._reset()
        return pieces

    # -- state ------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._buffer = ""  # the piece being built: never starts with whitespace
        self._pos = 0  # where scanning resumes in the buffer
        self._emitted = 0  # pieces of this reply handed out so far
        self._at_line_start = True  # the buffer starts a line (list bullets and numbers apply)

    def _skip_leading_space(self, text: str) -> str:
        stripped = text.lstrip()
        if any(ch in LINE_BREAKS for ch in text[: len(text) - len(stripped)]):
            self._at_line_start = True
        return stripped

    def _start_next(self, end: int) -> None:
        rest = self._buffer[end:]
        self._at_line_start = False
        self._buffer = self._skip_leading_space(rest)
        self._pos = 0

    def _emit(self, raw: str, pieces: list[str]) -> None:
        text = self._clean(raw)
        if _speakable(text):
            pieces.append(text)
            self._emitted += 1

    def _clean(self, raw: str) -> str:
        text = strip_markup(raw)
        if self._at_line_start:
            text = _BULLET.sub("", text, count=1)
        return " ".join(text.split())

    # -- scanning ---------------------------------------------------------------------------

    def _scan(self, final: bool) -> list[str]:
        pieces: list[str] = []
        while (cut := self._next_cut(final)) is not None:
            self._emit(self._buffer[: cut.end], pieces)
            self._start_next(cut.end)
        return pieces

    def _next_cut(self, final: bool) -> _Cut | None:
        """The next cut in the buffer, or None when more text is needed (or, when final, none is left)."""
        buffer, i = self._buffer, self._pos
        while True:
            if i >= self._max_chars and len(buffer) > self._max_chars:
                return self._force_cut()
            if i >= len(buffer):
                self._pos = i
                return None
            decision = self._decide(i, final)
            if decision is None:
                self._pos = i
                return None
            if isinstance(decision, _Cut):
                return decision if decision.end <= self._max_chars else self._force_cut()
            i = decision

    def _decide(self, i: int, final: bool) -> _Decision:
        ch = self._buffer[i]
        if ch in LINE_BREAKS:
            return _Cut(i)
        if ch in TERMINATORS:
            return self._sentence_end(i, final)
        if ch in CLAUSE_MARKS:
            return self._clause_mark(i, final)
        if ch in DASHES:
            return self._dash(i, final)
        return i + 1

    def _force_cut(self) -> _Cut:
        """Cut an over-long piece at the last space within ``max_chars``, preferably not inside a number."""
        window = self._buffer[: self._max_chars + 1]
        spaces = [j for j in range(1, len(window)) if window[j].isspace()]
        outside_numbers = [j for j in spaces if not (window[j - 1].isdigit() and _next_is_digit(window, j))]
        if outside_numbers:
            return _Cut(outside_numbers[-1])
        return _Cut(spaces[-1] if spaces else self._max_chars)

    # -- sentence ends ----------------------------------------------------------------------

    def _sentence_end(self, i: int, final: bool) -> _Decision:
        buffer = self._buffer
        run_end = _skip(buffer, i, TERMINATORS)
        end = _skip_trailers(buffer, run_end)
        if end == len(buffer):
            return _Cut(end) if final else None
        if not buffer[end].isspace():
            return run_end  # "3.5", "e.g", "?!a": not an end
        if buffer[i:run_end] != ".":
            return _Cut(end)
        verdict = self._period_ends_sentence(i, end, final)
        if verdict is None:
            return None
        return _Cut(end) if verdict else run_end

    def _period_ends_sentence(self, i: int, after: int, final: bool) -> bool | None:
        """Whether the period at ``i`` ends a sentence; None until the next word has arrived."""
        rule = self._abbreviation_rule(self._buffer[:i])
        if rule is None:
            return True
        if rule is _Rule.NEVER:
            return False
        nxt = _next_word_char(self._buffer, after)
        if nxt is None:
            return True if final else None
        if nxt == "":  # a line break follows: the piece ends there anyway
            return True
        if rule is _Rule.BEFORE_CAPITAL:
            return nxt.isupper()
        return not nxt.isdigit()

    def _abbreviation_rule(self, before: str) -> _Rule | None:
        key = _abbreviation_key(before)
        if not key:
            return None
        if self._is_list_number(key, before):
            return _Rule.NEVER
        if _SINGLE_LETTER.fullmatch(key):
            return _Rule.NEVER if key.isupper() or _is_cyrillic(key) else None
        rule = self._abbreviations.get(key.lower())
        if rule is not None:
            return rule
        if _DOTTED_LETTERS.fullmatch(key):  # "J.K", "А.С": initials; "x.y": some lowercase abbreviation
            return _Rule.NEVER if key[0].isupper() else _Rule.BEFORE_CAPITAL
        return None

    def _is_list_number(self, key: str, before: str) -> bool:
        """"1." opening a line is a list item's number, kept with its item."""
        return (
            self._at_line_start
            and key.isdigit()
            and len(key) <= _MAX_LIST_NUMBER_DIGITS
            and self._clean(before) == key
        )

    # -- clause breaks ----------------------------------------------------------------------

    def _clause_mark(self, i: int, final: bool) -> _Decision:
        buffer = self._buffer
        end = _skip_trailers(buffer, i + 1)
        if end == len(buffer):
            return i + 1 if final else None
        if not buffer[end].isspace() or not self._clause_may_end(buffer[:end]):
            return i + 1  # "1,000", "10:30", or too early for a clause break
        return self._unless_between_digits(i, end, final)

    def _dash(self, i: int, final: bool) -> _Decision:
        buffer = self._buffer
        if i == 0 or not buffer[i - 1].isspace():
            return i + 1  # "123-45", "well-known", or a line's bullet
        if i + 1 == len(buffer):
            return i + 1 if final else None
        if not buffer[i + 1].isspace() or not self._clause_may_end(buffer[: i + 1]):
            return i + 1
        return self._unless_between_digits(i, i + 1, final)

    def _clause_may_end(self, raw: str) -> bool:
        text = self._clean(raw)
        words = _count_words(text)
        if self._emitted == 0:
            return words >= self._first_min_words
        return words >= self._min_words and len(text) > LONG_CLAUSE_CHARS

    def _unless_between_digits(self, i: int, end: int, final: bool) -> _Decision:
        """A cut at ``end`` unless the mark at ``i`` stands between two digits ("555, 0134")."""
        before = self._buffer[:i].rstrip()
        if not before or not before[-1].isdigit():
            return _Cut(end)
        nxt = _next_char(self._buffer, end)
        if nxt is None:
            return _Cut(end) if final else None
        return i + 1 if nxt.isdigit() else _Cut(end)


# -- text helpers ---------------------------------------------------------------------------


def _abbreviations_for(language: str) -> dict[str, _Rule]:
    if language.lower().startswith("ru"):
        return {**_EN_ABBREVIATIONS, **_RU_ABBREVIATIONS}
    return dict(_EN_ABBREVIATIONS)


def is_emoji(ch: str) -> bool:
    """True for emoji code points and the joiners/selectors that build emoji sequences."""
    code = ord(ch)
    return any(low <= code <= high for low, high in _EMOJI_RANGES)


def strip_markup(text: str) -> str:
    """``text`` without emoji and markdown marks; a mark joining two words becomes a space."""
    text = "".join(" " if is_emoji(ch) else ch for ch in text)
    return _MARKUP_RUN.sub(lambda m: _markup_replacement(m.string, m.start(), m.end()), text)


def _markup_replacement(text: str, start: int, end: int) -> str:
    joins_words = start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
    return " " if joins_words else ""


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _count_words(text: str) -> int:
    return sum(1 for word in text.split() if _speakable(word))


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


def _skip(text: str, start: int, chars: frozenset[str]) -> int:
    while start < len(text) and text[start] in chars:
        start += 1
    return start


def _skip_trailers(text: str, start: int) -> int:
    """Past closing quotes/brackets, markdown and emoji that may follow a punctuation mark."""
    while start < len(text) and (text[start] in CLOSERS or text[start] in MARKUP or is_emoji(text[start])):
        start += 1
    return start


def _next_char(text: str, start: int) -> str | None:
    """The first non-space character from ``start``; None if none has arrived yet."""
    stripped = text[start:].lstrip()
    return stripped[0] if stripped else None


def _next_is_digit(text: str, start: int) -> bool:
    nxt = _next_char(text, start)
    return nxt is not None and nxt.isdigit()


def _next_word_char(text: str, start: int) -> str | None:
    """The first character of the next word (past spaces, opening quotes, markdown).

    "" when a line break comes first; None when the text so far ends before it.
    """
    j = start
    while j < len(text) and text[j].isspace():
        if text[j] in LINE_BREAKS:
            return ""
        j += 1
    while j < len(text) and (text[j] in OPENERS or text[j] in MARKUP or is_emoji(text[j])):
        j += 1
    return text[j] if j < len(text) else None


def _abbreviation_key(before: str) -> str:
    """The word a period follows, with spaced single letters joined ("и т. д" -> "т.д", "J. K" -> "J.K")."""
    tokens = before.split()
    if not tokens:
        return ""
    key = _strip_openers(tokens[-1])
    j = len(tokens) - 2
    while j >= 0 and _SINGLE_LETTER.fullmatch(key.split(".")[0]):
        previous = _strip_openers(tokens[j])
        if not _SINGLE_DOTTED_LETTER.fullmatch(previous):
            break
        key = previous + key
        j -= 1
    return key


def _strip_openers(token: str) -> str:
    start = 0
    while start < len(token) and (token[start] in OPENERS or token[start] in MARKUP):
        start += 1
    return token[start:]
