"""The caller's name in an utterance ("my name is John Peters", "меня зовут Иван", "John Peters speaking").

A name is one to three words after a lead-in, before a trailer ("Иван меня зовут") or between the
two ("Меня Иван зовут"); a weak lead-in ("it's", "это", "я") needs what follows to look like a
name. Whisper's habits are allowed for: a hesitation or a comma after the lead-in ("Это, э-э,
Сергей"), a name cut by a full stop ("John. Smith.") and a name said again in full ("Иван, Иван
Петров"). `drop_introduction` cuts such a self-introduction off a clause, for the reason parser.
"""

from __future__ import annotations

import re

from daemon.dialogue.spoken_fields.numbers import NUMBER_WORDS, PLUS_WORDS
from daemon.dialogue.spoken_fields.words import Token, check_language, has_case, is_filler, word_tokens

MAX_NAME_WORDS = 3

_PUNCTUATION = frozenset(".,!?;:…—–-")

# Lead-ins before a name. Strong ones say "a name follows"; weak ones ("it's", "это", "я") are
# also how many other sentences start, so what follows them must look like a name.
_STRONG_NAME_LEADS: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (("my", "name", "is"), ("my", "name's"), ("name", "is"), ("name's",), ("my", "names"),
           ("you", "can", "call", "me")),
    "ru": (("меня", "зовут"), ("зовут", "меня"), ("мое", "имя"), ("моя", "фамилия"),
           ("с", "вами", "говорит"), ("вас", "беспокоит")),
}
_WEAK_NAME_LEADS: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (("this", "is"), ("it's",), ("its",), ("it", "is"), ("i", "am"), ("i'm",), ("im",)),
    "ru": (("это",), ("я",), ("беспокоит",)),
}
_NAME_TRAILERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (("speaking",), ("here",)),
    "ru": (("беспокоит",), ("меня", "зовут"), ("звать",)),
}
# A name between two words: "Меня Иван зовут".
_NAME_FRAMES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "en": (),
    "ru": ((("меня",), ("зовут",)), (("меня",), ("звать",))),
}
# What whisper writes where a name is cut in two ("John. Smith."): the name goes on after it.
_NAME_BREAKS = frozenset({".", "…"})

# Words that end a name: "John and ...", "John calling about", "Иван, звоню", "Иван из банка".
_NAME_STOPS = frozenset({
    "and", "calling", "from", "with", "at", "of", "here", "speaking", "again", "please", "phoning",
    "ringing", "regarding", "about", "but", "so", "because", "who", "i", "i'm", "im", "my", "the",
    "и", "звоню", "звонил", "звонила", "из", "с", "со", "от", "по", "насчет", "а", "но", "беспокоит",
    "говорит", "я", "мне", "меня", "вот", "хочу", "хотел", "хотела",
})

# Words that are never a name (or its first word).
_NON_NAME_WORDS = frozenset({
    # yes/no, fillers, greetings, politeness
    "yes", "yeah", "yep", "yup", "yea", "no", "nope", "nah", "ok", "okay", "alright", "sure", "right",
    "wrong", "correct", "um", "umm", "uh", "uhh", "er", "erm", "ah", "oh", "hmm", "mm", "mhm", "well",
    "hi", "hello", "hey", "bye", "goodbye", "thanks", "thank", "please", "sorry", "pardon", "excuse",
    "what", "why", "who", "where", "when", "how", "which", "that", "this", "these", "those", "there",
    "it", "it's", "its", "is", "am", "are", "was", "were", "be", "been", "me", "you", "he", "she",
    "we", "they", "him", "her", "us", "them", "your", "his", "our", "their", "a", "an", "not",
    "just", "only", "also", "still", "really", "very", "quite", "actually", "maybe", "to", "for",
    "in", "on", "by", "as", "if", "or", "then", "than", "do", "don't", "does", "did", "have", "has",
    "had", "can", "could", "would", "will", "shall", "should", "may", "might", "must", "need",
    "want", "wanted", "like", "know", "think", "guess", "mean", "call", "calling", "message",
    "number", "phone", "name", "reason", "fine", "good", "great", "bad", "busy", "afraid", "glad",
    "happy", "interested", "worried", "concerned", "curious", "urgent", "important", "personal",
    "nothing", "something", "anything", "everything", "someone", "somebody", "anyone", "nobody",
    "back", "away", "out", "home", "late", "early", "now", "today", "tomorrow", "yesterday", "soon",
    "about", "regarding", "concerning", "again", "all", "some", "any", "one", "same", "new", "old",
    "speaking", "here", "and", "the", "of", "with", "from", "at", "so", "but", "because", "i", "i'm",
    "im", "my", "mine", "myself", "own", "unknown", "anonymous", "nevermind", "never", "mind",
    "wait", "hold", "hang", "listen", "look", "see", "say", "said", "tell", "ask", "asking",
    "anybody", "everybody", "everyone", "spelled", "spelt", "misspelled", "different", "incorrect",
    "confused", "tired", "scared", "pleased", "surprised", "disappointed", "annoyed", "married",
    "retired", "based", "located", "called", "named", "probably", "basically", "literally",
    "currently", "finally", "exactly", "totally", "hopefully", "unfortunately", "definitely",
    "absolutely", "certainly", "obviously", "stuck", "sick", "ill", "lost", "done", "ready",
    "available", "free", "open", "closed", "broken", "missing", "yours", "boss", "manager", "owner",
    "client", "customer", "friend", "colleague",
    # Russian
    "да", "нет", "ага", "угу", "ну", "вот", "так", "э", "ээ", "эм", "мм", "ладно", "хорошо", "окей",
    "ок", "алло", "здравствуйте", "привет", "добрый", "доброе", "день", "вечер", "утро", "спасибо",
    "пожалуйста", "извините", "простите", "до", "свидания", "пока", "верно", "неверно", "правильно",
    "неправильно", "конечно", "точно", "именно", "не", "ни", "бы", "же", "ли", "то", "это", "этот",
    "эта", "эти", "тот", "та", "те", "все", "всё", "весь", "вся", "я", "ты", "вы", "он", "она", "оно",
    "мы", "они", "мне", "меня", "вам", "вас", "вами", "ему", "ей", "им", "их", "его", "ее", "мой",
    "моя", "мое", "мои", "ваш", "ваша", "ваше", "наш", "сам", "сама", "тут", "здесь", "там", "сейчас",
    "уже", "еще", "ещё", "тоже", "также", "просто", "очень", "только", "потом", "по", "поводу",
    "насчет", "про", "о", "об", "в", "во", "на", "за", "к", "ко", "у", "из", "от", "для", "без",
    "с", "со", "и", "а", "но", "или", "что", "чтобы", "как", "кто", "где", "когда", "почему", "зачем",
    "какой", "какая", "какое", "звоню", "звонил", "звонила", "звонок", "хотел", "хотела", "хочу",
    "могу", "можно", "нужно", "надо", "номер", "телефон", "имя", "вопрос", "сообщение", "важно",
    "срочно", "был", "была", "было", "будет", "есть", "нету", "ничего", "никто", "кто-то", "что-то",
    "неважно", "снова", "опять", "нормально", "отлично", "сорри", "буду", "пишу", "думаю",
    "неправильное", "неправильный", "неверное", "неверный", "другое", "другой", "клиент", "знакомый",
}) | frozenset(NUMBER_WORDS) | PLUS_WORDS

_RU_NON_NAME_ENDINGS = ("ть", "ться", "тся", "ю", "юсь", "усь", "ось", "ешь", "ете", "ите", "ло", "но")
_EN_NON_NAME_ENDINGS = ("ing",)
_EN_CONTRACTION_RE = re.compile(r"'(?:s|re|ll|ve|d|m|t)$|n't$")
_LEADING_FILLERS = frozenset({
    "yes", "yeah", "yep", "sure", "ok", "okay", "well", "so", "um", "umm", "uh", "er", "erm", "ah",
    "oh", "hmm", "hi", "hello", "hey", "it's", "its", "sorry", "right",
    "да", "ну", "так", "вот", "э", "ээ", "эм", "алло", "здравствуйте", "привет", "ага", "хорошо",
})


def _looks_like_name_word(token: Token, *, cased: bool, strict: bool) -> bool:
    """Whether one word can be part of a name.

    `strict` is for what follows a weak lead-in ("it's ...", "я ..."): in cased STT output the word
    must be capitalised; in caseless output it must not look like a verb or an adverb.
    """
    folded = token.folded
    if not token.is_word or folded in _NON_NAME_WORDS or len(folded) < 2:
        return False
    if _EN_CONTRACTION_RE.search(folded) or is_filler(folded):
        return False
    if cased and token.text[0].isupper():
        return True  # a capital inside cased STT output is the best evidence of a name there is
    if not strict:
        return True
    if cased:
        return False
    endings = _RU_NON_NAME_ENDINGS if _is_cyrillic(folded) else _EN_NON_NAME_ENDINGS
    return not folded.endswith(endings)


def _is_cyrillic(word: str) -> bool:
    return any("а" <= c <= "я" for c in word)


def _title(word: str) -> str:
    if not (word.islower() or word.isupper()):
        return word  # keep "McDonald" as written
    return re.sub(r"[^\W\d_]+", lambda m: m.group().capitalize(), word)


def _skip_hesitation(tokens: list[Token], index: int) -> int:
    """Past the commas and hesitations after a lead-in: "Это, э-э, Сергей" -> at "Сергей"."""
    while index < len(tokens) and (tokens[index].folded in (",", "—", "–", "-") or is_filler(tokens[index].folded)):
        index += 1
    return index


def _name_after(tokens: list[Token], index: int, *, cased: bool, strict: bool) -> list[Token]:
    """Up to three name words starting at tokens[index]; [] when the first one is not a name word."""
    words: list[Token] = []
    while index < len(tokens) and len(words) < MAX_NAME_WORDS:
        token = tokens[index]
        if token.folded in _NAME_STOPS or not _looks_like_name_word(token, cased=cased, strict=strict and not words):
            break
        if words and cased and words[0].text[0].isupper() and not token.text[0].isupper():
            break  # "Иван Петров компания ..." : a capitalised name does not go on in lowercase
        words.append(token)
        index += 1
    return words


def _lead_matches(tokens: list[Token], index: int, lead: tuple[str, ...]) -> bool:
    return tuple(t.folded for t in tokens[index:index + len(lead)]) == lead


def _ends_there(tokens: list[Token], index: int) -> bool:
    return index >= len(tokens) or not tokens[index].is_word


def _completed(tokens: list[Token], words: list[Token], *, cased: bool) -> list[Token]:
    """The name as whisper may have broken it up after `words`.

    "John. Smith." -> John Smith (a full stop inside a name, in cased text, when the second part
    ends the sentence); "Иван, Иван Петров" / "John... John Smith" -> the name said again in full.
    """
    after = tokens.index(words[-1]) + 1
    resume = after
    while resume < len(tokens) and not tokens[resume].is_word:
        resume += 1
    if resume == after or resume >= len(tokens):
        return words
    again = _name_after(tokens, resume, cased=cased, strict=False)
    if again and again[0].folded == words[0].folded and len(again) > len(words):
        return again
    if (
        cased
        and any(token.folded in _NAME_BREAKS for token in tokens[after:resume])
        and len(words) < MAX_NAME_WORDS
        and again
        and again[0].text[0].isupper()
        and _ends_there(tokens, tokens.index(again[-1]) + 1)
    ):
        return (words + again)[:MAX_NAME_WORDS]
    return words


def _name_by_leads(
    tokens: list[Token], leads: tuple[tuple[str, ...], ...], *, cased: bool, strict: bool
) -> list[Token]:
    for index in range(len(tokens)):
        for lead in leads:
            if _lead_matches(tokens, index, lead):
                words = _name_after(tokens, _skip_hesitation(tokens, index + len(lead)), cased=cased, strict=strict)
                if words:
                    return _completed(tokens, words, cased=cased)
    return []


def _name_before_trailer(
    tokens: list[Token], trailers: tuple[tuple[str, ...], ...], *, cased: bool
) -> list[Token]:
    """"John Peters speaking" / "Иван Петров беспокоит" / "Иван меня зовут"."""
    for index in range(1, len(tokens)):
        if not any(_lead_matches(tokens, index, trailer) for trailer in trailers):
            continue
        words: list[Token] = []
        for previous in reversed(tokens[max(0, index - MAX_NAME_WORDS):index]):
            if previous.folded in _NAME_STOPS or not _looks_like_name_word(previous, cased=cased, strict=True):
                break
            words.insert(0, previous)
        if words:
            return words
    return []


def _name_in_frame(
    tokens: list[Token], frames: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...], *, cased: bool
) -> list[Token]:
    """"Меня Иван зовут": a name between the two halves of a lead-in."""
    for index in range(len(tokens)):
        for before, after in frames:
            if _lead_matches(tokens, index, before):
                words = _name_after(tokens, index + len(before), cased=cased, strict=False)
                if words and _lead_matches(tokens, tokens.index(words[-1]) + 1, after):
                    return words
    return []


def _short_answer_name(tokens: list[Token], *, cased: bool) -> list[Token]:
    """When we just asked for the name: "John Peters." / "Um, John." / "Иван, звоню насчёт счёта"."""
    index = 0
    while index < len(tokens) and (
        not tokens[index].is_word
        or tokens[index].folded in _LEADING_FILLERS
        or is_filler(tokens[index].folded)
    ):
        index += 1
    words = _name_after(tokens, index, cased=cased, strict=False)
    after = index + len(words)
    if not words or after < len(tokens) and not (
        tokens[after].folded in _PUNCTUATION or tokens[after].folded in _NAME_STOPS
    ):
        return []  # "Peter wants to know ..." is a sentence, not a name
    return _completed(tokens, words, cased=cased)


def _find_name(text: str, language: str, *, expecting_name: bool) -> list[Token]:
    tokens = word_tokens(text)
    cased = has_case(text)
    for finder in (
        lambda: _name_by_leads(tokens, _STRONG_NAME_LEADS[language], cased=cased, strict=False),
        lambda: _name_in_frame(tokens, _NAME_FRAMES[language], cased=cased),
        lambda: _name_before_trailer(tokens, _NAME_TRAILERS[language], cased=cased),
        lambda: _name_by_leads(tokens, _WEAK_NAME_LEADS[language], cased=cased, strict=True),
    ):
        words = finder()
        if words:
            return words
    return _short_answer_name(tokens, cased=cased) if expecting_name else []


def extract_name(text: str, language: str, *, expecting_name: bool = False) -> str | None:
    """The caller's name in an utterance, title-cased, or None.

    Finds "my name is X", "this is X", "it's X", "I am X", "X speaking", "меня зовут X", "это X",
    "я X", "X беспокоит". A name is one to three words and ends at punctuation or at words like
    "and", "calling", "from", "и", "звоню", "из". With `expecting_name` (we just asked for the
    name) a short answer is the name itself: "John Peters." -> "John Peters".
    """
    language = check_language(language)
    words = _find_name(text, language, expecting_name=expecting_name)
    return " ".join(_title(word.text) for word in words) or None


def drop_introduction(clause: str, language: str) -> str:
    """Cut "this is John Peters (from Acme)" / "меня зовут Иван" off the start of a clause."""
    tokens = word_tokens(clause)
    cased = has_case(clause)
    for leads, strict in ((_STRONG_NAME_LEADS[language], False), (_WEAK_NAME_LEADS[language], True)):
        for lead in leads:
            if _lead_matches(tokens, 0, lead):
                words = _name_after(tokens, _skip_hesitation(tokens, len(lead)), cased=cased, strict=strict)
                if words:
                    return _drop_company(clause[words[-1].end:])
    trailers = _NAME_TRAILERS[language]
    for index in range(1, min(len(tokens), MAX_NAME_WORDS + 1)):
        trailer = next((t for t in trailers if _lead_matches(tokens, index, t)), None)
        if trailer is not None:
            end = index + len(trailer)
            if _name_before_trailer(tokens[:end], trailers, cased=cased) == tokens[:index]:
                return clause[tokens[end - 1].end:]  # "John Peters speaking"
            break
    return clause


def _drop_company(rest: str) -> str:
    """" from Acme and I need a quote" -> " and I need a quote"."""
    match = re.match(r"\s*(?:from|of|at|из|с|со|от)\s+[^,.!?;]*?(?=\s+(?:and|и|а)\s+|$)", rest, re.IGNORECASE)
    return rest[match.end():] if match else rest
