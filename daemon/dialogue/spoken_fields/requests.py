"""What the caller asks of the secretary rather than tells: "what?", "алло?", "call me back on this number", "no need".

Each reader takes an STT final in English or Russian and says whether it is that request. They
look at folded words and phrases, so whisper's case and punctuation ("Что? Что?", "Повторите,
пожалуйста.") do not matter; a long utterance is never a bare request (it carries an answer).
"""

from __future__ import annotations

import re

from daemon.dialogue.spoken_fields.words import check_language, fold
from daemon.dialogue.spoken_fields.yes_no import detect_yes_no

# "I don't want to leave a message" at the first question.
_DECLINE_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "no thanks", "no thank you", "don't want", "do not want", "dont want", "no message",
        "not leave a message", "never mind", "nevermind", "bye", "goodbye", "call back later", "call later",
        "i'll call back", "i will call back", "ill call back", "not interested", "wrong number",
        "forget it",
    ),
    "ru": (
        "не надо", "ничего не нужно", "не нужно", "нет спасибо", "до свидания", "пока", "не хочу",
        "перезвоню", "не стоит", "ошибся номером", "ошиблась номером", "ошиблись номером", "не буду",
    ),
}
NOTHING_WORDS = frozenset({"nothing", "ничего"})
SHORT_ANSWER_MAX_WORDS = 3

# "I'd rather not give that", said when one part of the message is asked.
_NO_NEED_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "no need", "not needed", "don't need", "do not need", "not necessary", "rather not", "don't want",
        "do not want", "skip it", "no thanks", "no thank you",
    ),
    "ru": (
        "не надо", "не нужно", "не стоит", "не обязательно", "необязательно", "не хочу", "не буду",
        "нет спасибо", "не надо перезванивать", "перезванивать не надо",
    ),
}

# "What?", "Повторите, пожалуйста": the caller did not hear the question.
_REPEAT_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "say that again", "say it again", "say again", "come again", "repeat", "didn't catch", "did not catch",
        "didn't hear", "did not hear", "can't hear", "cannot hear", "what did you say", "one more time",
        "didn't get that", "i beg your pardon",
    ),
    "ru": (
        "повторите", "повтори", "повторить", "еще раз", "не расслышал", "не расслышала", "не понял",
        "не поняла", "не слышно", "плохо слышно", "не услышал", "не услышала", "что вы сказали",
        "что вы спросили", "не разобрал", "не разобрала",
    ),
}
# An utterance made only of these, with at least one of _REPEAT_TRIGGERS, asks for a repeat.
_REPEAT_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"what", "pardon", "sorry", "huh", "eh", "excuse", "me", "please", "uh", "um"}),
    "ru": frozenset({"что", "чего", "а", "ась", "как", "извините", "простите", "пожалуйста", "э", "ээ"}),
}
_REPEAT_TRIGGERS = frozenset({"what", "pardon", "huh", "eh", "что", "чего", "ась", "как"})

# "Алло? Вы меня слышите?": the caller is not sure the line is still there.
_LINE_CHECK_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"hello", "hallo", "are", "you", "still", "there", "can", "hear", "me", "anyone", "is"}),
    "ru": frozenset({"алло", "ало", "вы", "меня", "слышите", "слышно", "тут", "здесь", "еще", "есть", "кто"}),
}
_LINE_CHECK_TRIGGERS = frozenset({"hello", "hallo", "there", "hear", "алло", "ало", "слышите", "слышно"})
_REPEAT_MAX_WORDS = 8

# "Call me back on this number" / "на этот же номер": the caller ID is the callback number.
_THIS_NUMBER_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "this number", "the same number", "same number", "this phone", "number i'm calling from",
        "number im calling from", "number i am calling from", "one i'm calling from", "one im calling from",
        "this one", "that number", "that one", "the same one",
    ),
    "ru": (
        "этот номер", "этот же номер", "этот же", "этому номеру", "этому же номеру", "тот же номер",
        "тот же", "с которого звоню", "с которого я звоню", "с этого номера", "на этот", "этот самый",
        "который определился", "определился",
    ),
}
# Without being asked for a number, "this number" needs a word about calling back.
_CALLBACK_CUES: dict[str, tuple[str, ...]] = {
    "en": ("call me", "call back", "ring me", "reach me", "call on", "calling back"),
    "ru": ("перезвон", "звоните", "позвоните", "набер", "наберите", "звонить"),
}

_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(fold(text))


def _has_phrase(words: list[str], phrases: tuple[str, ...]) -> bool:
    joined = f" {' '.join(words)} "
    return any(f" {phrase} " in joined for phrase in phrases)


def declines_message(text: str, language: str) -> bool:
    """"No thanks, bye", "Не надо", a short "no" or "nothing": no message at all (at the first question)."""
    language = check_language(language)
    words = _words(text)
    if _has_phrase(words, _DECLINE_PHRASES[language]):
        return True
    if len(words) > SHORT_ANSWER_MAX_WORDS:
        return False
    return detect_yes_no(text, language) is False or not NOTHING_WORDS.isdisjoint(words)


def says_nothing_to_correct(text: str) -> bool:
    """"Nothing" / "ничего" (short): nothing needs correcting."""
    words = _words(text)
    return len(words) <= SHORT_ANSWER_MAX_WORDS and not NOTHING_WORDS.isdisjoint(words)


def declines_slot(text: str, language: str) -> bool:
    """"Не надо", "no need", "I'd rather not": the caller will not give what was just asked."""
    return _has_phrase(_words(text), _NO_NEED_PHRASES[check_language(language)])


def asks_to_repeat(text: str, language: str) -> bool:
    """"Что?", "Повторите, пожалуйста", "Sorry, what?", "Could you say that again?"."""
    language = check_language(language)
    words = _words(text)
    if not words or len(words) > _REPEAT_MAX_WORDS or any(word.isdigit() for word in words):
        return False
    if _has_phrase(words, _REPEAT_PHRASES[language]):
        return True
    return all(word in _REPEAT_WORDS[language] for word in words) and not _REPEAT_TRIGGERS.isdisjoint(words)


def checks_the_line(text: str, language: str) -> bool:
    """"Алло?", "Алло, вы меня слышите?", "Hello? Are you there?": only that, nothing else said."""
    words = _words(text)
    return (
        bool(words)
        and all(word in _LINE_CHECK_WORDS[check_language(language)] for word in words)
        and not _LINE_CHECK_TRIGGERS.isdisjoint(words)
    )


def means_this_number(text: str, language: str, *, asked_for_number: bool) -> bool:
    """"Перезвоните на этот номер", "на этот же", "call me back on this number": the number called from.

    When the number was not just asked for, the utterance must also speak of calling back.
    """
    language = check_language(language)
    words = _words(text)
    if not _has_phrase(words, _THIS_NUMBER_PHRASES[language]):
        return False
    if asked_for_number:
        return True
    joined = " ".join(words)
    return any(cue in joined for cue in _CALLBACK_CUES[language])
