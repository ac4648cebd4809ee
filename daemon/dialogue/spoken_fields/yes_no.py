"""Yes or no in an utterance, in English or Russian; negation wins, and `None` when unclear."""

from __future__ import annotations

import re

from daemon.dialogue.spoken_fields.words import check_language, fold

# Phrases that would mislead a word-by-word look: rewritten before it ("" drops them).
_YES_NO_REWRITES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("why not", "yes"), ("no problem", ""), ("not a problem", ""), ("no worries", ""),
        ("nothing wrong", "yes"), ("not bad", ""), ("no doubt", "yes"), ("don't worry", ""),
        ("i don't know", ""), ("don't know", ""), ("do not know", ""), ("not sure", ""),
        ("don't remember", ""), ("do not remember", ""), ("can't remember", ""), ("cannot remember", ""),
        ("uh huh", "yes"), ("mm hmm", "yes"), ("that's it", "yes"), ("of course", "yes"),
        ("go ahead", "yes"), ("please do", "yes"), ("sounds good", "yes"), ("no no", "no"),
        ("not right", "no"), ("not correct", "no"), ("not quite", "no"), ("not really", "no"),
    ),
    "ru": (
        ("почему бы и нет", "да"), ("не вопрос", "да"), ("без проблем", "да"), ("нет проблем", "да"),
        ("не проблема", "да"), ("не за что", ""), ("не знаю", ""), ("не уверен", ""), ("не уверена", ""),
        ("не помню", ""), ("не припомню", ""),
        ("так и есть", "да"), ("все так", "да"), ("именно так", "да"), ("не так", "нет"),
        ("не совсем", "нет"), ("не то", "нет"), ("не туда", "нет"),
    ),
}
_YES_WORDS = frozenset({
    "yes", "yeah", "yep", "yup", "yea", "ya", "correct", "right", "sure", "exactly", "absolutely",
    "definitely", "certainly", "indeed", "affirmative", "ok", "okay", "alright", "fine", "perfect",
    "good", "great", "mhm",
    "да", "верно", "правильно", "конечно", "ага", "угу", "точно", "именно", "хорошо", "ладно",
    "давайте", "можно", "окей", "ок", "согласен", "согласна", "разумеется", "естественно",
    "отлично", "подтверждаю", "годится",
})
_NO_WORDS = frozenset({
    "no", "nope", "nah", "nay", "wrong", "incorrect", "negative", "not", "isn't", "wasn't", "don't",
    "doesn't", "didn't", "aren't", "never",
    "нет", "неверно", "неправильно", "не", "нету", "ошибка", "ошиблись", "неточно",
    "неправильный", "неправильная", "неправильное", "неверный", "неверная", "неверное", "ошибочно",
})
_YES_NO_TOKEN_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def _yes_no_words(text: str, language: str) -> list[str]:
    folded = " " + " ".join(_YES_NO_TOKEN_RE.findall(fold(text))) + " "
    for phrase, replacement in _YES_NO_REWRITES[language]:
        folded = folded.replace(f" {phrase} ", f" {replacement} ")
    return folded.split()


def detect_yes_no(text: str, language: str) -> bool | None:
    """True for yes, False for no, None when unclear. Negation wins: "yes... no, that's not right" is False."""
    language = check_language(language)
    words = _yes_no_words(text, language)
    if any(word in _NO_WORDS for word in words):
        return False
    if any(word in _YES_WORDS for word in words):
        return True
    return None
