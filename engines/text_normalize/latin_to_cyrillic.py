"""Latin-script words inside Russian text, rewritten the way a Russian speaker says them.

A Russian voice cannot read "Telegram" or "PDF". Known words come from a small
dictionary of brands and loanwords as Russians pronounce them ("Telegram" →
"телеграм", "WhatsApp" → "ватсап", "iPhone" → "айфон"). Short all-capital
words not in it are acronyms, spelled with English letter names ("PDF" → "пи-ди-эф").
Anything else goes through English-like spelling rules (digraphs first:
"sh" → "ш", "ch" → "ч", "oo" → "у", "c" before e/i/y → "с" ...), which
is rough but far better than silence or letter-by-letter Latin.
"""

from __future__ import annotations

import re
from collections.abc import Callable

LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’]*(?:[-.][A-Za-z][A-Za-z0-9]*)*")

# lower-case spelling -> how Russians say it
KNOWN_WORDS: dict[str, str] = {
    "telegram": "телеграм", "whatsapp": "ватсап", "viber": "вайбер", "skype": "скайп", "zoom": "зум",
    "google": "гугл", "youtube": "ютуб", "yandex": "яндекс", "instagram": "инстаграм", "facebook": "фейсбук",
    "twitter": "твиттер", "tiktok": "тикток", "vk": "вэ-ка", "vkontakte": "вконтакте", "ozon": "озон",
    "wildberries": "вайлдберриз", "avito": "авито", "sber": "сбер", "sberbank": "сбербанк", "tinkoff": "тинькофф",
    "apple": "эппл", "iphone": "айфон", "ipad": "айпэд", "macbook": "макбук", "mac": "мак", "ios": "ай-о-эс",
    "android": "андроид", "samsung": "самсунг", "xiaomi": "сяоми", "huawei": "хуавей", "microsoft": "майкрософт",
    "windows": "виндоус", "linux": "линукс", "office": "офис", "excel": "эксель", "word": "ворд",
    "powerpoint": "пауэрпойнт", "outlook": "аутлук", "gmail": "джимейл", "email": "имейл", "e-mail": "имейл",
    "mail": "мейл", "online": "онлайн", "offline": "офлайн", "wi-fi": "вай-фай", "wifi": "вай-фай",
    "bluetooth": "блютус", "ok": "окей", "okay": "окей", "chatgpt": "чат джи-пи-ти", "openai": "оупен-эй-ай",
    "uber": "убер", "tesla": "тесла", "amazon": "амазон", "netflix": "нетфликс", "spotify": "спотифай",
    "slack": "слэк", "notion": "ноушн", "github": "гитхаб", "python": "пайтон", "java": "джава",
    "javascript": "джаваскрипт", "hello": "хеллоу", "hi": "хай", "bye": "бай", "sorry": "сорри",
    "thanks": "сэнкс", "weekend": "уикенд", "deadline": "дедлайн", "meeting": "митинг", "manager": "менеджер",
    "team": "тим", "chat": "чат", "bot": "бот", "app": "эп", "web": "веб", "site": "сайт", "smart": "смарт",
    "business": "бизнес", "startup": "стартап", "marketplace": "маркетплейс", "service": "сервис",
    "support": "саппорт", "premium": "премиум", "pro": "про", "plus": "плюс", "max": "макс", "mini": "мини",
    "secretary": "секретари", "ai": "эй-ай", "it": "ай-ти", "sms": "эс-эм-эс", "pdf": "пи-ди-эф",
    "usb": "ю-эс-би", "vpn": "ви-пи-эн", "crm": "си-ар-эм", "ceo": "си-и-оу", "hr": "эйч-ар", "tv": "ти-ви",
    "gps": "джи-пи-эс", "id": "ай-ди", "qr": "кью-ар", "url": "ю-ар-эл", "faq": "эф-эй-кью",
    "mr": "мистер", "mrs": "миссис", "ms": "мисс", "dr": "доктор", "inc": "инкорпорейтед", "ltd": "лимитед",
    "llc": "эл-эл-си", "ikea": "икеа", "george": "джордж", "gym": "джим",
}

LETTER_NAMES: dict[str, str] = {
    "a": "эй", "b": "би", "c": "си", "d": "ди", "e": "и", "f": "эф", "g": "джи", "h": "эйч", "i": "ай",
    "j": "джей", "k": "кей", "l": "эл", "m": "эм", "n": "эн", "o": "оу", "p": "пи", "q": "кью", "r": "ар",
    "s": "эс", "t": "ти", "u": "ю", "v": "ви", "w": "дабл-ю", "x": "экс", "y": "уай", "z": "зед",
}

# Longest first; applied left to right.
_RULES: tuple[tuple[str, str], ...] = (
    ("tion", "шн"), ("sion", "жн"), ("ough", "аф"), ("augh", "оф"), ("igh", "ай"), ("sch", "ск"),
    ("tch", "ч"), ("dge", "дж"), ("ck", "к"), ("sh", "ш"), ("ch", "ч"), ("th", "т"), ("ph", "ф"),
    ("wh", "у"), ("qu", "кв"), ("kn", "н"), ("wr", "р"), ("oo", "у"), ("ee", "и"), ("ea", "и"),
    ("ai", "эй"), ("ay", "эй"), ("ey", "эй"), ("oy", "ой"), ("oi", "ой"), ("ou", "ау"), ("ow", "оу"),
    ("au", "о"), ("aw", "о"), ("ew", "ью"), ("ie", "и"), ("ll", "лл"), ("ss", "сс"), ("ng", "нг"),
    ("x", "кс"), ("j", "дж"), ("w", "у"), ("q", "к"),
    ("a", "а"), ("b", "б"), ("d", "д"), ("e", "е"), ("f", "ф"), ("h", "х"), ("i", "и"), ("k", "к"),
    ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"),
    ("u", "у"), ("v", "в"), ("z", "з"),
)
_VOWELS = set("aeiouy")


def transliterate_word(word: str) -> str:
    """One Latin word as Russian speakers read it."""
    lowered = word.lower().replace("’", "'")
    known = KNOWN_WORDS.get(lowered) or KNOWN_WORDS.get(lowered.rstrip("."))
    if known is not None:
        return known
    parts = re.split(r"[-.]", lowered)
    if len(parts) > 1:
        return "-".join(transliterate_word(p) for p in parts if p)
    letters = re.sub(r"[^a-z0-9]", "", lowered)
    if not letters:
        return word
    if _is_acronym(word):
        return spell(letters)
    return _by_rules(letters)


def spell(letters: str) -> str:
    """Letter by letter with English letter names: "pdf" -> "пи-ди-эф"."""
    return "-".join(LETTER_NAMES.get(ch, ch) for ch in letters.lower() if ch.isalnum())


def _is_acronym(word: str) -> bool:
    """Capitals read letter by letter ("DHL", "CRM", "USB") rather than as a word ("NASA")."""
    letters = [ch.lower() for ch in word if ch.isalpha()]
    if len(letters) == 1:
        return True
    if not any(ch in _VOWELS for ch in letters):
        return True
    if not word.isupper():
        return False
    return len(letters) <= 3 or (letters[0] not in _VOWELS and letters[1] not in _VOWELS)


_LONG_VOWELS = {"a": "ей", "e": "и", "i": "ай", "o": "оу", "u": "ю", "y": "ай"}
_SILENT_E_CONSONANT = {"g": "дж", "c": "с"}
_DIGRAPHS = tuple((pattern, sound) for pattern, sound in _RULES if len(pattern) > 1)
_LETTERS = {letter: sound for letter, sound in _RULES if len(letter) == 1}


def _by_rules(word: str) -> str:
    """English-like reading: digraphs, soft c/g, y as vowel or consonant, silent h, final silent e."""
    stem, long_vowel_at, tail = _split_silent_e(word)
    out: list[str] = []
    i = 0
    while i < len(stem):
        sound, length = _sound_at(stem, i, long_vowel_at)
        out.append(sound)
        i += length
    return "".join(out) + tail


def _split_silent_e(word: str) -> tuple[str, int, str]:
    """A final silent "e" after vowel + consonant makes the vowel long: "page", "mike", "jane".

    Returns the letters left to read, the index of the long vowel (-1: none) and the sound of a
    soft "ge" / "ce" ending, which is cut off the letters.
    """
    if len(word) <= 3 or not word.endswith("e") or word[-2] in _VOWELS:
        return word, -1, ""
    long_vowel_at = len(word) - 3 if word[-3] in _VOWELS and word[-4] not in _VOWELS else -1
    if word[-2] in _SILENT_E_CONSONANT:
        return word[:-2], long_vowel_at, _SILENT_E_CONSONANT[word[-2]]
    if long_vowel_at >= 0:
        return word[:-1], long_vowel_at, ""
    return word, -1, ""


def _sound_at(word: str, i: int, long_vowel_at: int) -> tuple[str, int]:
    """The sound of the letters at ``i`` and how many letters it takes."""
    ch = word[i]
    if ch.isdigit():
        return ch, 1
    if i == long_vowel_at:
        return _LONG_VOWELS[ch], 1
    digraph = _digraph_at(word, i)
    if digraph is not None:
        return digraph
    return _letter_sound(word, i), 1


def _digraph_at(word: str, i: int) -> tuple[str, int] | None:
    for pattern, sound in _DIGRAPHS:
        if word.startswith(pattern, i):
            return sound, len(pattern)
    return None


def _letter_sound(word: str, i: int) -> str:
    """One letter on its own; c, g, h and y depend on their neighbours."""
    in_context = _LETTERS_IN_CONTEXT.get(word[i])
    if in_context is not None:
        return in_context(word, i)
    return _LETTERS.get(word[i], "")


def _previous(word: str, i: int) -> str:
    return word[i - 1] if i > 0 else ""


def _next(word: str, i: int) -> str:
    return word[i + 1] if i + 1 < len(word) else ""


def _c_sound(word: str, i: int) -> str:
    """Soft before e, i, y: "city" -> "сити"."""
    return "с" if _next(word, i) in ("e", "i", "y") else "к"


def _g_sound(word: str, i: int) -> str:
    """Soft before e, i except at the start: "magic" -> "маджик", "get" -> "гет"."""
    return "дж" if _next(word, i) in ("e", "i") and i > 0 else "г"


def _h_sound(word: str, i: int) -> str:
    """Silent after a vowel unless a vowel follows: "oh" -> "о", "ahead" -> "ахид"."""
    return "" if _previous(word, i) in _VOWELS and _next(word, i) not in _VOWELS else "х"


def _y_sound(word: str, i: int) -> str:
    """A consonant before a vowel at the start ("yes"), "ай" between consonants ("hybrid"), else "и" ("baby")."""
    nxt = _next(word, i)
    if i == 0 and nxt in _VOWELS:
        return "й"
    if nxt and nxt not in _VOWELS and _previous(word, i) not in _VOWELS:
        return "ай"
    return "и"


_LETTERS_IN_CONTEXT: dict[str, Callable[[str, int], str]] = {
    "c": _c_sound,
    "g": _g_sound,
    "h": _h_sound,
    "y": _y_sound,
}


def replace_latin_words(text: str) -> str:
    """``text`` with every Latin-script word rewritten in Cyrillic."""
    return LATIN_WORD.sub(lambda m: transliterate_word(m.group(0)), text)
