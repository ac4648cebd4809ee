"""What the call is about, as a short clause cut out of an utterance ("I'm calling about the invoice").

Lead-ins ("I'm calling about", "я звоню"), greetings, the caller's self-introduction and any
clause that gives a phone number are stripped; what is left is the reason, or `None` when nothing
meaningful is said. A Russian preposition that governs the rest stays with it ("по поводу счёта",
"насчёт доставки", not "счёта"), so the reason reads as Russian in the read-back and the summary.
"""

from __future__ import annotations

import re

from daemon.dialogue.spoken_fields.names import drop_introduction
from daemon.dialogue.spoken_fields.numbers import NUMBER_WORDS, PLUS_WORDS
from daemon.dialogue.spoken_fields.words import check_language, is_filler, word_tokens

MAX_REASON_WORDS = 30

_CALL = r"(?:i'?m|i\s+am|we'?re|we\s+are)?\s*(?:just\s+|actually\s+)?(?:calling|phoning|ringing|call)"
_ABOUT = r"(?:about|regarding|concerning|re|in\s+regards?\s+to|with\s+regards?\s+to|because(?:\s+of)?)"
_RU_ABOUT = r"(?P<keep>по\s+поводу|насч[её]т|по\s+вопросу|относительно|из-за)"
_REASON_LEADS: dict[str, tuple[str, ...]] = {
    "en": (
        rf"{_CALL}\s+(?:you\s+)?{_ABOUT}",
        rf"{_CALL}\s+(?:you\s+)?to\s+(?:ask|talk|speak|enquire|inquire|find\s+out)\s+(?:about|regarding|concerning)",
        rf"{_CALL}\s+(?:you\s+)?(?:in\s+order\s+)?to",
        r"(?:it'?s|it\s+is|this\s+is|that'?s|the\s+call\s+is|my\s+call\s+is)\s+"
        r"(?:about|regarding|concerning|in\s+regards?\s+to)",
        r"the\s+reason\s+(?:for\s+(?:my|the|this)\s+call\s+|i'?m\s+calling\s+|of\s+(?:my|the)\s+call\s+)?"
        r"is(?:\s+that)?",
        r"i(?:'d|\s+would)\s+like\s+to\s+(?:talk|speak|ask)\s+(?:to\s+you\s+|with\s+you\s+|him\s+|her\s+)?about",
        r"i\s+want(?:ed)?\s+to\s+(?:talk|speak|ask)\s+(?:to\s+you\s+|with\s+you\s+|him\s+|her\s+)?about",
        r"(?:^|(?<=[,.!?;:]))\s*(?:about|regarding|concerning|re|in\s+regards?\s+to|with\s+regards?\s+to)",
    ),
    # (?P<keep>...): a preposition that stays with the reason.
    "ru": (
        r"(?:я\s+)?(?:звоню|звонил[аи]?|обращаюсь)[\s,]+(?:вам[\s,]+)?"
        rf"(?:{_RU_ABOUT}|потому\s*,?\s+что|так\s+как|чтобы)",
        r"у\s+меня\s+(?:вопрос|дело|просьба)\s+(?P<keep>по\s+поводу|насч[её]т|по|про|о|об|относительно)",
        rf"(?:это|я)\s+{_RU_ABOUT}",
        r"(?:причина|цель)\s+(?:моего\s+)?звонка\s*(?:[—–:-]|это)?",
        _RU_ABOUT,
    ),
}
_REASON_LEAD_RES = {
    language: [re.compile(pattern, re.IGNORECASE) for pattern in patterns]
    for language, patterns in _REASON_LEADS.items()
}
_GREETING_RE = re.compile(
    r"^\s*(?:(?:(?:hi|hello|hey)(?:\s+there)?|good\s+(?:morning|afternoon|evening|day)"
    r"|yes|yeah|well|so|um+|uh+|er|erm|oh|ok(?:ay)?"
    r"|здравствуйте|добрый\s+(?:день|вечер)|доброе\s+утро|доброй\s+ночи|привет|алло|да|ну|слушайте"
    r"|э+|эм+)\b[\s,.!?;:-]*)+",
    re.IGNORECASE,
)
_CLAUSE_SPLIT_RE = re.compile(r"[.!?;…]+|,(?!\d)")
_CLAUSE_LEAD_CONNECTORS_RE = re.compile(
    r"^\s*(?:and|but|so|also|then|и|а|но|ещё|еще|также|что)\b[\s,]*", re.IGNORECASE
)
_CALLBACK_REQUEST_RE = re.compile(
    r"^(?:please\s+)?(?:call|ring)\s+(?:me|us)(?:\s+back)?(?:\s+please)?$"
    r"|^(?:пожалуйста\s+)?перезвоните(?:\s+(?:мне|нам))?(?:\s+пожалуйста)?$",
    re.IGNORECASE,
)
_NUMBER_CUE_RE = re.compile(
    r"\b(?:number|phone|reach\s+me|call\s+me|номер|телефон|перезвон\w*|звоните)\b", re.IGNORECASE
)
# Words that carry nothing a reason could be: fillers, yes/no, greetings, politeness, pronouns.
_CONTENTLESS_WORDS = frozenset({
    "yes", "yeah", "yep", "yup", "no", "nope", "nah", "ok", "okay", "alright", "sure", "right", "well",
    "um", "umm", "uh", "uhh", "er", "erm", "ah", "oh", "hmm", "mm", "mhm", "hi", "hello", "hey",
    "bye", "goodbye", "thanks", "thank", "please", "sorry", "pardon", "it", "it's", "its", "is",
    "that", "that's", "thats", "this", "a", "an", "the", "i", "i'm", "im", "me", "my", "you", "we",
    "just", "so", "and", "but", "not", "nothing", "all", "what", "never", "mind", "nevermind",
    "да", "нет", "ага", "угу", "ну", "вот", "так", "э", "ээ", "эм", "мм", "ладно", "хорошо", "окей",
    "ок", "алло", "здравствуйте", "привет", "добрый", "доброе", "день", "вечер", "утро", "спасибо",
    "пожалуйста", "извините", "простите", "до", "свидания", "пока", "не", "надо", "нужно", "это",
    "я", "вы", "мы", "мне", "вам", "и", "а", "но", "все", "ничего", "что",
    "wrong", "incorrect", "correct", "fine", "неправильно", "неверно", "верно", "правильно",
}) | frozenset(NUMBER_WORDS) | PLUS_WORDS


_GOVERNED_RE = re.compile(r"^(?:по\s+поводу|насч[её]т|по\s+вопросу|относительно|из-за|по|про|о|об)\s", re.IGNORECASE)


def is_governed_reason(reason: str, language: str) -> bool:
    """Whether a reason starts with the preposition that governs it ("по поводу счёта", "насчёт доставки")."""
    return check_language(language) == "ru" and bool(_GOVERNED_RE.match(reason))


def _reason_lead_end(text: str, language: str) -> tuple[int, int] | None:
    """Where the reason starts after the earliest lead-in, and where its kept preposition ends.

    "Я звоню по поводу счёта" -> the start of "по поводу" and its end; "I'm calling about the
    invoice" -> the end of "about" twice.
    """
    best: tuple[int, int, int] | None = None
    for pattern in _REASON_LEAD_RES[language]:
        for match in pattern.finditer(text):
            if match.end() > match.start() and _at_word_edges(text, match.start(), match.end()):
                if best is None or (match.start(), -match.end()) < (best[0], -best[1]):
                    kept = "keep" in pattern.groupindex and match.start("keep") >= 0
                    best = (match.start(), match.end(), match.start("keep") if kept else match.end())
                break
    return None if best is None else (best[2], best[1])


def _at_word_edges(text: str, start: int, end: int) -> bool:
    while start < end and text[start].isspace():
        start += 1
    before_ok = start == 0 or not text[start - 1].isalnum()
    after_ok = end == len(text) or not text[end].isalnum()
    return before_ok and after_ok


def _is_number_clause(clause: str) -> bool:
    """"my number is 555 0134", "call me back on five five five ...", "перезвоните мне"."""
    if _CALLBACK_REQUEST_RE.match(" ".join(clause.replace(",", " ").split())):
        return True
    has_number = any(t.text.isdigit() or t.folded in NUMBER_WORDS for t in word_tokens(clause))
    return has_number and bool(_NUMBER_CUE_RE.search(clause))


def _is_contentless(clause: str) -> bool:
    """Only fillers, yes/no, politeness, digits and number words: nothing a reason could be."""
    words = [t.folded for t in word_tokens(clause) if t.is_word]
    return all(word in _CONTENTLESS_WORDS or is_filler(word) for word in words)


def _clean_clause(clause: str, language: str) -> str:
    clause = _GREETING_RE.sub("", clause)
    clause = drop_introduction(clause, language)
    clause = _CLAUSE_LEAD_CONNECTORS_RE.sub("", clause)
    return clause.strip(" \t\n,.!?;:-—–")


def extract_reason(text: str, language: str, *, require_lead_in: bool = False) -> str | None:
    """What the call is about, as a short clause, or None when nothing meaningful is said.

    Strips lead-ins ("I'm calling about", "it's about", "regarding", "я звоню по поводу",
    "насчёт", "по поводу"), greetings, the caller's self-introduction and any clause that gives a
    phone number. With `require_lead_in` only a reason introduced by such a lead-in counts (the
    policy uses that when it did not ask for the reason).
    """
    language = check_language(language)
    text = text.replace("’", "'")
    lead = _reason_lead_end(text, language)
    if lead is None and require_lead_in:
        return None
    body = text if lead is None else text[lead[1]:]
    kept: list[str] = []
    governed = lead is not None and lead[0] < lead[1]  # a kept preposition governs the first clause
    for clause in _CLAUSE_SPLIT_RE.split(body):
        cleaned = _clean_clause(clause, language)
        if cleaned and not _is_number_clause(cleaned) and not _is_contentless(cleaned):
            if governed and lead is not None:
                cleaned = f"{text[lead[0]:lead[1]].strip()} {cleaned}"  # "по поводу" + "счёта"
            kept.append(cleaned)
        if cleaned:
            governed = False
    if not kept:
        return None
    words = ", ".join(kept).split()
    return " ".join(words[:MAX_REASON_WORDS])
