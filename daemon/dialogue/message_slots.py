"""The message a caller leaves, and the pure-text helpers that fill it from speech-to-text results.

The scripted take-a-message policy (daemon/dialogue/take_message_policy.py) and the LLM tool call fill the
same `MessageSlots`. Everything here is deterministic string work on STT output: whisper-base
varies case and punctuation, writes numbers as digits or words, and sometimes mis-hears, so the
parsers are tolerant and say `None` rather than guess when nothing fits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SLOT_NAMES: tuple[str, ...] = ("name", "reason", "callback_number")
LANGUAGES: tuple[str, ...] = ("en", "ru")

MIN_PHONE_DIGITS = 5
MAX_PHONE_DIGITS = 15
MAX_NAME_WORDS = 3
MAX_REASON_WORDS = 30


def check_language(language: str) -> str:
    """'en', 'ru' (also 'en-US', 'ru_RU', any case) -> 'en' / 'ru'; anything else raises ValueError."""
    base = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    if base not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return base


def _fold(text: str) -> str:
    """Lowercase, ё -> е, typographic apostrophes -> "'"."""
    return text.lower().replace("ё", "е").replace("’", "'").replace("ʼ", "'")


# ---------------------------------------------------------------------------------------------
# The slots
# ---------------------------------------------------------------------------------------------


@dataclass
class MessageSlots:
    name: str | None = None
    reason: str | None = None
    callback_number: str | None = None

    def missing(self, asks: Sequence[str] = SLOT_NAMES) -> list[str]:
        """The slots of `asks` (in that order) that are still empty."""
        check_slot_names(asks)
        return [slot for slot in dict.fromkeys(asks) if getattr(self, slot) is None]

    def as_dict(self) -> dict[str, str | None]:
        return {slot: getattr(self, slot) for slot in SLOT_NAMES}

    def merge(self, other: Mapping[str, object]) -> list[str]:
        """Take values from an LLM tool call's arguments; return the names of the slots that changed.

        Unknown keys are ignored; None or a blank string means "not given" and leaves a slot as it
        is. Every value is checked before any slot changes, so a bad value (not a string, or a
        callback number that is not 5..15 digits) raises ValueError and leaves the slots untouched.
        """
        if not isinstance(other, Mapping):
            kind = type(other).__name__
            raise ValueError(f"message slots must be an object of name/reason/callback_number, got {kind}")
        updates: dict[str, str] = {}
        for slot in SLOT_NAMES:
            if slot in other:
                value = _clean_slot_value(slot, other[slot])
                if value is not None:
                    updates[slot] = value
        changed = [slot for slot, value in updates.items() if getattr(self, slot) != value]
        for slot in changed:
            setattr(self, slot, updates[slot])
        return changed


def check_slot_names(names: Sequence[str]) -> None:
    """Raise ValueError naming any entry of `names` that is not one of SLOT_NAMES."""
    unknown = [name for name in names if name not in SLOT_NAMES]
    if unknown:
        raise ValueError(f"unknown message slot(s) {unknown}: expected some of {list(SLOT_NAMES)}")


def _clean_slot_value(slot: str, value: object) -> str | None:
    if value is None:
        return None
    if slot == "callback_number" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{slot} must be a string, got {type(value).__name__} {value!r}")
    text = " ".join(value.split())
    if not text:
        return None
    if slot != "callback_number":
        return text
    number = normalize_phone_number(text)
    if number is None:
        raise ValueError(
            f"callback_number {value!r} is not a phone number: "
            f"expected {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, optionally with a leading '+'"
        )
    return number


# ---------------------------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------------------------

_WRITTEN_NUMBER_RE = re.compile(r"\+?\d+")
_WRITTEN_SEPARATORS_RE = re.compile(r"[\s\-‐‑–—.()\[\]/]+")


def normalize_phone_number(text: str) -> str | None:
    """'+7 (916) 123-45-67' -> '+79161234567'. Spaces, dashes, dots, brackets go; a leading '+' stays.

    Anything else in the text (letters, a '+' in the middle) or a digit count outside 5..15 gives None.
    """
    compact = _WRITTEN_SEPARATORS_RE.sub("", text.strip())
    if not _WRITTEN_NUMBER_RE.fullmatch(compact):
        return None
    if not MIN_PHONE_DIGITS <= len(compact.lstrip("+")) <= MAX_PHONE_DIGITS:
        return None
    return compact


# Number words. Both languages are always recognised (whisper sometimes answers in the other
# language's words); Latin and Cyrillic spellings never collide.
_EN_ZERO = ("zero", "oh", "o", "nought")
_EN_UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EN_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
_EN_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_RU_ZERO = ("ноль", "нуль", "ноля", "нуля", "нолем", "нулем")
_RU_UNITS: tuple[tuple[str, ...], ...] = (
    ("один", "одна", "одно", "одного", "одной", "одну", "одним", "одном"),
    ("два", "две", "двух", "двум", "двумя"),
    ("три", "трех", "трем", "тремя"),
    ("четыре", "четырех", "четырем", "четырьмя"),
    ("пять", "пяти", "пятью"),
    ("шесть", "шести", "шестью"),
    ("семь", "семи", "семью"),
    ("восемь", "восьми", "восемью", "восьмью"),
    ("девять", "девяти", "девятью"),
)
_RU_TEEN_STEMS = (
    "десят", "одиннадцат", "двенадцат", "тринадцат", "четырнадцат",
    "пятнадцат", "шестнадцат", "семнадцат", "восемнадцат", "девятнадцат",
)
_RU_TENS: tuple[tuple[str, ...], ...] = (
    ("двадцать", "двадцати", "двадцатью"),
    ("тридцать", "тридцати", "тридцатью"),
    ("сорок", "сорока"),
    ("пятьдесят", "пятидесяти", "пятьюдесятью"),
    ("шестьдесят", "шестидесяти", "шестьюдесятью"),
    ("семьдесят", "семидесяти", "семьюдесятью"),
    ("восемьдесят", "восьмидесяти", "восемьюдесятью"),
    ("девяносто", "девяноста"),
)
_RU_HUNDREDS: tuple[tuple[str, ...], ...] = (
    ("сто", "ста"),
    ("двести", "двухсот", "двумстам"),
    ("триста", "трехсот", "тремстам"),
    ("четыреста", "четырехсот", "четыремстам"),
    ("пятьсот", "пятисот", "пятистам"),
    ("шестьсот", "шестисот", "шестистам"),
    ("семьсот", "семисот", "семистам"),
    ("восемьсот", "восьмисот", "восьмистам"),
    ("девятьсот", "девятисот", "девятистам"),
)


def _number_words() -> dict[str, tuple[str, int]]:
    words: dict[str, tuple[str, int]] = {}
    for word in (*_EN_ZERO, *_RU_ZERO):
        words[word] = ("zero", 0)
    for value, word in enumerate(_EN_UNITS, start=1):
        words[word] = ("unit", value)
    for value, word in enumerate(_EN_TEENS, start=10):
        words[word] = ("teen", value)
    for value, word in enumerate(_EN_TENS, start=2):
        words[word] = ("tens", value * 10)
    for value, forms in enumerate(_RU_UNITS, start=1):
        words.update({form: ("unit", value) for form in forms})
    for value, stem in enumerate(_RU_TEEN_STEMS, start=10):
        words.update({stem + ending: ("teen", value) for ending in ("ь", "и", "ью")})
    for value, forms in enumerate(_RU_TENS, start=2):
        words.update({form: ("tens", value * 10) for form in forms})
    for value, forms in enumerate(_RU_HUNDREDS, start=1):
        words.update({form: ("hundreds", value * 100) for form in forms})
    words["hundred"] = ("hundred", 100)
    for word in ("thousand", "тысяча", "тысячи", "тысяч", "тысячу"):
        words[word] = ("thousand", 1000)
    words["double"] = ("repeat", 2)
    words["triple"] = ("repeat", 3)
    return words


_NUMBER_WORDS = _number_words()
_PLUS_WORDS = frozenset({"plus", "плюс"})
# Words that may sit between the groups of one spoken number without ending it.
_NUMBER_JOINERS = frozenset({
    "and", "dash", "hyphen", "then", "space", "uh", "um", "umm", "er", "erm", "ah", "hmm", "mm",
    "и", "тире", "дефис", "потом", "затем", "э", "ээ", "эм", "мм", "ну",
})
_NUMBER_TOKEN_RE = re.compile(r"\+|\d+|[^\W\d_]+(?:'[^\W\d_]+)*")

# One token of a spoken number: (kind, text, value), kind being "digits", "zero", "unit", "teen",
# "tens", "hundred", "hundreds", "thousand", "repeat" ("double"), "a" ("a hundred") or "and".
_NumberToken = tuple[str, str, int]


@dataclass
class _Run:
    """One stretch of number tokens: a candidate phone number."""

    plus: bool = False
    tokens: list[_NumberToken] = field(default_factory=list)

    def digits(self) -> str:
        return _spoken_digits(self.tokens)


def _number_runs(text: str) -> list[_Run]:
    words = _NUMBER_TOKEN_RE.findall(_fold(text))
    runs: list[_Run] = []
    current: _Run | None = None
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        kind = _token_kind(word, following)
        if kind == "plus":
            current = _Run(plus=True)
            runs.append(current)
        elif kind == "joiner":
            if current is not None and word == "and":
                current.tokens.append(("and", word, 0))  # "one hundred and five"
            continue
        elif kind == "other":
            current = None
        else:
            if current is None:
                current = _Run()
                runs.append(current)
            value = int(word) if kind == "digits" else _NUMBER_WORDS.get(word, ("", 1))[1]
            current.tokens.append((kind, word, value))
    return runs


def _token_kind(word: str, following: str) -> str:
    if word == "+" or word in _PLUS_WORDS:
        return "plus"
    if word.isdigit():
        return "digits"
    if word == "a" and _NUMBER_WORDS.get(following, ("",))[0] in ("hundred", "thousand"):
        return "a"  # "a hundred"
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word][0]
    if word in _NUMBER_JOINERS:
        return "joiner"
    return "other"


def _spoken_digits(tokens: list[_NumberToken]) -> str:
    out: list[str] = []
    index = 0
    while index < len(tokens):
        kind, text, value = tokens[index]
        if kind == "digits":
            out.append(text)
            index += 1
        elif kind == "zero":
            out.append("0")
            index += 1
        elif kind == "and":
            index += 1
        elif kind == "repeat":
            digit = _single_digit(tokens[index + 1]) if index + 1 < len(tokens) else None
            if digit is None:
                index += 1  # "double" with no digit after it says nothing
            else:
                out.append(digit * value)
                index += 2
        else:
            number, index = _cardinal(tokens, index)
            if number is not None:
                out.append(str(number))
    return "".join(out)


def _single_digit(token: _NumberToken) -> str | None:
    kind, text, value = token
    if kind == "zero":
        return "0"
    if kind == "unit":
        return str(value)
    if kind == "digits" and len(text) == 1:
        return text
    return None


def _cardinal(tokens: list[_NumberToken], index: int) -> tuple[int | None, int]:
    """A number said as a number ("nine hundred sixteen", "сорок пять", "two thousand") -> its value."""
    value, index = _below_thousand(tokens, index)
    if index < len(tokens) and tokens[index][0] == "thousand":
        value, index = (value or 1) * 1000, index + 1
        if index + 1 < len(tokens) and tokens[index][0] == "and" and tokens[index + 1][0] in ("unit", "teen", "tens"):
            index += 1
        rest, index = _below_thousand(tokens, index)
        value += rest or 0
    return value, index


def _below_thousand(tokens: list[_NumberToken], index: int) -> tuple[int | None, int]:
    def kind_at(i: int) -> str:
        return tokens[i][0] if i < len(tokens) else ""

    if kind_at(index) in ("unit", "teen", "a") and kind_at(index + 1) == "hundred":
        multiplier = 1 if kind_at(index) == "a" else tokens[index][2]
        hundreds, index = multiplier * 100, index + 2
    elif kind_at(index) == "hundred":
        hundreds, index = 100, index + 1
    elif kind_at(index) == "hundreds":  # Russian: "девятьсот пять" is 905
        hundreds, index = tokens[index][2], index + 1
        rest, index = _below_hundred(tokens, index)
        return hundreds + (rest or 0), index
    elif kind_at(index) == "a":
        return None, index + 1
    else:
        return _below_hundred(tokens, index)
    # English: "nine hundred sixteen" is 916 and "one hundred and five" is 105, but "eight hundred,
    # five five five ..." dictates 800 and then digits, so a bare unit after "hundred" stays apart.
    if kind_at(index) == "and" and kind_at(index + 1) in ("unit", "teen", "tens"):
        index += 1
    elif kind_at(index) not in ("teen", "tens"):
        return hundreds, index
    rest, index = _below_hundred(tokens, index)
    return hundreds + (rest or 0), index


def _below_hundred(tokens: list[_NumberToken], index: int) -> tuple[int | None, int]:
    kind = tokens[index][0] if index < len(tokens) else ""
    if kind == "tens":
        value = tokens[index][2]
        if index + 1 < len(tokens) and tokens[index + 1][0] == "unit":
            return value + tokens[index + 1][2], index + 2
        return value, index + 1
    if kind in ("teen", "unit"):
        return tokens[index][2], index + 1
    return None, index


def extract_phone_number(text: str, language: str) -> str | None:
    """The phone number spoken or written in an utterance, as digits with an optional leading '+'.

    "+7 916 123-45-67" -> "+79161234567"; "five five five, oh one three four" -> "5550134";
    "double five five one two three four" -> "5551234"; "восемь девятьсот шестнадцать сто двадцать
    три сорок пять шестьдесят семь" -> "89161234567". Number words, digits, punctuation and
    fillers ("and", "dash", "и", "тире", "um") continue a number; any other word ends it. When an
    utterance holds several numbers, the longest one of 5..15 digits wins (the last of equals).
    """
    check_language(language)
    best: str | None = None
    best_length = 0
    for run in _number_runs(text):
        digits = run.digits()
        if MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS and len(digits) >= best_length:
            best, best_length = ("+" if run.plus else "") + digits, len(digits)
    return best


def extract_digits(text: str, language: str) -> str:
    """The digits of the longest number said in an utterance, however short ("" when none).

    For a number dictated across two STT finals: "восемь девятьсот шестнадцать" -> "8916".
    """
    check_language(language)
    best = ""
    for run in _number_runs(text):
        digits = run.digits()
        if digits and len(digits) >= len(best.lstrip("+")):
            best = ("+" if run.plus else "") + digits
    return best


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*|\d+|[.,!?;:…—–]|(?<!\w)-(?!\w)")
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
_NAME_TRAILERS: dict[str, frozenset[str]] = {
    "en": frozenset({"speaking"}),
    "ru": frozenset({"беспокоит"}),
}

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
}) | frozenset(_NUMBER_WORDS) | _PLUS_WORDS

# Hesitations in any length: "ummm", "hmmm", "эээ", "ммм", "эм".
_FILLER_RE = re.compile(r"^(?:u+h+|u+m+|e+r+m*|h+m+|a+h+|m+|o+h+|э+м*|м+|х+м+|а+)$")
_RU_NON_NAME_ENDINGS = ("ть", "ться", "тся", "ю", "юсь", "усь", "ось", "ешь", "ете", "ите", "ло", "но")
_EN_NON_NAME_ENDINGS = ("ing",)
_EN_CONTRACTION_RE = re.compile(r"'(?:s|re|ll|ve|d|m|t)$|n't$")
_LEADING_FILLERS = frozenset({
    "yes", "yeah", "yep", "sure", "ok", "okay", "well", "so", "um", "umm", "uh", "er", "erm", "ah",
    "oh", "hmm", "hi", "hello", "hey", "it's", "its", "sorry", "right",
    "да", "ну", "так", "вот", "э", "ээ", "эм", "алло", "здравствуйте", "привет", "ага", "хорошо",
})


@dataclass(frozen=True)
class _Token:
    text: str  # as written
    folded: str  # lowercase, ё -> е
    start: int
    end: int

    @property
    def is_word(self) -> bool:
        return self.text[0].isalpha()


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(), _fold(m.group()), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def _has_case(text: str) -> bool:
    """Whether the STT output carries case at all (not all-lowercase, not all-caps)."""
    letters = [c for c in text if c.isalpha()]
    return any(c.isupper() for c in letters) and any(c.islower() for c in letters)


def _looks_like_name_word(token: _Token, *, cased: bool, strict: bool) -> bool:
    """Whether one word can be part of a name.

    `strict` is for what follows a weak lead-in ("it's ...", "я ..."): in cased STT output the word
    must be capitalised; in caseless output it must not look like a verb or an adverb.
    """
    folded = token.folded
    if not token.is_word or folded in _NON_NAME_WORDS or len(folded) < 2:
        return False
    if _EN_CONTRACTION_RE.search(folded) or _FILLER_RE.match(folded):
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


def _name_after(tokens: list[_Token], index: int, *, cased: bool, strict: bool) -> list[_Token]:
    """Up to three name words starting at tokens[index]; [] when the first one is not a name word."""
    words: list[_Token] = []
    while index < len(tokens) and len(words) < MAX_NAME_WORDS:
        token = tokens[index]
        if token.folded in _NAME_STOPS or not _looks_like_name_word(token, cased=cased, strict=strict and not words):
            break
        if words and cased and words[0].text[0].isupper() and not token.text[0].isupper():
            break  # "Иван Петров компания ..." : a capitalised name does not go on in lowercase
        words.append(token)
        index += 1
    return words


def _lead_matches(tokens: list[_Token], index: int, lead: tuple[str, ...]) -> bool:
    return tuple(t.folded for t in tokens[index:index + len(lead)]) == lead


def _name_by_leads(
    tokens: list[_Token], leads: tuple[tuple[str, ...], ...], *, cased: bool, strict: bool
) -> list[_Token]:
    for index in range(len(tokens)):
        for lead in leads:
            if _lead_matches(tokens, index, lead):
                words = _name_after(tokens, index + len(lead), cased=cased, strict=strict)
                if words:
                    return words
    return []


def _name_before_trailer(tokens: list[_Token], trailers: frozenset[str], *, cased: bool) -> list[_Token]:
    """"John Peters speaking" / "Иван Петров беспокоит"."""
    for index, token in enumerate(tokens):
        if token.folded not in trailers:
            continue
        words: list[_Token] = []
        for previous in reversed(tokens[max(0, index - MAX_NAME_WORDS):index]):
            if previous.folded in _NAME_STOPS or not _looks_like_name_word(previous, cased=cased, strict=True):
                break
            words.insert(0, previous)
        if words:
            return words
    return []


def _short_answer_name(tokens: list[_Token], *, cased: bool) -> list[_Token]:
    """When we just asked for the name: "John Peters." / "Um, John." / "Иван, звоню насчёт счёта"."""
    index = 0
    while index < len(tokens) and (
        not tokens[index].is_word
        or tokens[index].folded in _LEADING_FILLERS
        or _FILLER_RE.match(tokens[index].folded)
    ):
        index += 1
    words = _name_after(tokens, index, cased=cased, strict=False)
    after = index + len(words)
    if not words or after < len(tokens) and not (
        tokens[after].folded in _PUNCTUATION or tokens[after].folded in _NAME_STOPS
    ):
        return []  # "Peter wants to know ..." is a sentence, not a name
    return words


def _find_name(text: str, language: str, *, expecting_name: bool) -> list[_Token]:
    tokens = _tokens(text)
    cased = _has_case(text)
    for finder in (
        lambda: _name_by_leads(tokens, _STRONG_NAME_LEADS[language], cased=cased, strict=False),
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


# ---------------------------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------------------------

_CALL = r"(?:i'?m|i\s+am|we'?re|we\s+are)?\s*(?:just\s+|actually\s+)?(?:calling|phoning|ringing|call)"
_ABOUT = r"(?:about|regarding|concerning|re|in\s+regards?\s+to|with\s+regards?\s+to|because(?:\s+of)?)"
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
    "ru": (
        r"(?:я\s+)?(?:звоню|звонил[аи]?|обращаюсь)[\s,]+(?:вам[\s,]+)?"
        r"(?:по\s+поводу|насч[её]т|по\s+вопросу|относительно|из-за|потому\s*,?\s+что|так\s+как|чтобы)",
        r"у\s+меня\s+(?:вопрос|дело|просьба)\s+(?:по\s+поводу|насч[её]т|по|про|о|об|относительно)",
        r"(?:это|я)\s+(?:по\s+поводу|насч[её]т|по\s+вопросу|относительно)",
        r"(?:причина|цель)\s+(?:моего\s+)?звонка\s*(?:[—–:-]|это)?",
        r"по\s+поводу",
        r"насч[её]т",
        r"по\s+вопросу",
        r"относительно",
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
}) | frozenset(_NUMBER_WORDS) | _PLUS_WORDS


def _reason_lead_end(text: str, language: str) -> int | None:
    """Where the reason starts after the earliest lead-in ("I'm calling about", "по поводу"), if any."""
    best: tuple[int, int] | None = None
    for pattern in _REASON_LEAD_RES[language]:
        for match in pattern.finditer(text):
            if match.end() > match.start() and _at_word_edges(text, match.start(), match.end()):
                if best is None or (match.start(), -match.end()) < (best[0], -best[1]):
                    best = (match.start(), match.end())
                break
    return None if best is None else best[1]


def _at_word_edges(text: str, start: int, end: int) -> bool:
    while start < end and text[start].isspace():
        start += 1
    before_ok = start == 0 or not text[start - 1].isalnum()
    after_ok = end == len(text) or not text[end].isalnum()
    return before_ok and after_ok


def _drop_introduction(clause: str, language: str) -> str:
    """Cut "this is John Peters (from Acme)" / "меня зовут Иван" off the start of a clause."""
    tokens = _tokens(clause)
    cased = _has_case(clause)
    for leads, strict in ((_STRONG_NAME_LEADS[language], False), (_WEAK_NAME_LEADS[language], True)):
        for lead in leads:
            if _lead_matches(tokens, 0, lead):
                words = _name_after(tokens, len(lead), cased=cased, strict=strict)
                if words:
                    return _drop_company(clause[words[-1].end:])
    for index, token in enumerate(tokens[1:MAX_NAME_WORDS + 1], start=1):
        if token.folded in _NAME_TRAILERS[language]:
            if _name_before_trailer(tokens[:index + 1], _NAME_TRAILERS[language], cased=cased) == tokens[:index]:
                return clause[token.end:]  # "John Peters speaking"
            break
    return clause


def _drop_company(rest: str) -> str:
    """" from Acme and I need a quote" -> " and I need a quote"."""
    match = re.match(r"\s*(?:from|of|at|из|с|со|от)\s+[^,.!?;]*?(?=\s+(?:and|и|а)\s+|$)", rest, re.IGNORECASE)
    return rest[match.end():] if match else rest


def _is_number_clause(clause: str) -> bool:
    """"my number is 555 0134", "call me back on five five five ...", "перезвоните мне"."""
    if _CALLBACK_REQUEST_RE.match(" ".join(clause.replace(",", " ").split())):
        return True
    has_number = any(t.text.isdigit() or t.folded in _NUMBER_WORDS for t in _tokens(clause))
    return has_number and bool(_NUMBER_CUE_RE.search(clause))


def _is_contentless(clause: str) -> bool:
    """Only fillers, yes/no, politeness, digits and number words: nothing a reason could be."""
    words = [t.folded for t in _tokens(clause) if t.is_word]
    return all(word in _CONTENTLESS_WORDS or _FILLER_RE.match(word) for word in words)


def _clean_clause(clause: str, language: str) -> str:
    clause = _GREETING_RE.sub("", clause)
    clause = _drop_introduction(clause, language)
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
    start = _reason_lead_end(text, language)
    if start is None and require_lead_in:
        return None
    body = text if start is None else text[start:]
    kept: list[str] = []
    for clause in _CLAUSE_SPLIT_RE.split(body):
        cleaned = _clean_clause(clause, language)
        if cleaned and not _is_number_clause(cleaned) and not _is_contentless(cleaned):
            kept.append(cleaned)
    if not kept:
        return None
    words = ", ".join(kept).split()
    return " ".join(words[:MAX_REASON_WORDS])


# ---------------------------------------------------------------------------------------------
# Yes / no
# ---------------------------------------------------------------------------------------------

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
    folded = " " + " ".join(_YES_NO_TOKEN_RE.findall(_fold(text))) + " "
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
