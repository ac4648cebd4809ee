"""Word error rate of a transcript against a package's reference, in English or Russian.

Both texts are normalised the same way before words are compared:

1. lower case; Russian "ё" is "е" (whisper and the references use either);
2. every run of digits is written out in words in the clip's language with ``num2words``
   (cardinal, nominative): "нажмите 1" and "нажмите один" are the same words, "8,5" becomes
   "восемь пять" and "20-21" "двадцать двадцать один". A Russian number in another case
   ("с двенадцати лет" said, "с 12 лет" written) stays one substituted word: the form differs;
3. punctuation, dashes and quotes separate words and are dropped (an apostrophe inside an
   English word stays: "o'clock").

WER = (substitutions + deletions + insertions) / reference words, by word-level edit distance;
a set's WER is the sum of its clips' errors over the sum of their reference words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from num2words import num2words

LANGUAGES = ("en", "ru")
_DIGITS_RE = re.compile(r"\d+")
_WORD_RE = re.compile(r"[a-zа-я0-9]+(?:'[a-z]+)*")


def normalized_words(text: str, language: str) -> list[str]:
    """``text`` as the words the WER compares (see the module docstring)."""
    if language not in LANGUAGES:
        raise ValueError(f"word error rate knows {', '.join(LANGUAGES)}, not {language!r}")
    text = text.lower().replace("ё", "е").replace("’", "'")
    text = _DIGITS_RE.sub(lambda m: f" {num2words(int(m.group()), lang=language)} ", text)
    return _WORD_RE.findall(text.replace("ё", "е"))


@dataclass(frozen=True)
class WordErrors:
    """Edit operations between a reference and a hypothesis, and the reference's length."""

    errors: int
    reference_words: int

    @property
    def rate(self) -> float:
        return self.errors / max(1, self.reference_words)


def word_errors(reference: str, hypothesis: str, language: str) -> WordErrors:
    """How many word edits turn the normalised reference into the normalised hypothesis."""
    ref, hyp = normalized_words(reference, language), normalized_words(hypothesis, language)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return WordErrors(row[len(hyp)], len(ref))


def set_error_rate(counts: list[WordErrors]) -> float:
    """A set's WER: all errors over all reference words."""
    return sum(c.errors for c in counts) / max(1, sum(c.reference_words for c in counts))
