"""Message slots and the STT-text parsers that fill them: phone numbers, names, reasons, yes/no."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from daemon.dialogue.message_slots import (
    SLOT_NAMES,
    MessageSlots,
    check_language,
    detect_yes_no,
    extract_digits,
    extract_name,
    extract_phone_number,
    extract_reason,
    normalize_phone_number,
)

# ---------------------------------------------------------------------------------------------
# MessageSlots
# ---------------------------------------------------------------------------------------------


def test_slot_names_are_the_dataclass_fields() -> None:
    assert SLOT_NAMES == ("name", "reason", "callback_number")
    assert MessageSlots().as_dict() == {"name": None, "reason": None, "callback_number": None}


def test_missing_follows_the_order_of_asks() -> None:
    slots = MessageSlots(reason="the invoice")
    assert slots.missing() == ["name", "callback_number"]
    assert slots.missing(("callback_number", "name")) == ["callback_number", "name"]
    assert slots.missing(["reason"]) == []
    assert slots.missing(()) == []


def test_missing_rejects_unknown_slot_names() -> None:
    with pytest.raises(ValueError, match="email"):
        MessageSlots().missing(("name", "email"))


def test_as_dict_holds_every_slot() -> None:
    slots = MessageSlots(name="John Peters", reason="the invoice", callback_number="+15551234567")
    assert slots.as_dict() == {"name": "John Peters", "reason": "the invoice", "callback_number": "+15551234567"}


def test_merge_fills_slots_and_reports_the_changed_ones() -> None:
    slots = MessageSlots(name="John")
    changed = slots.merge({"name": "John", "reason": "  the   invoice ", "callback_number": "+7 (916) 123-45-67"})
    assert changed == ["reason", "callback_number"]
    assert slots.as_dict() == {"name": "John", "reason": "the invoice", "callback_number": "+79161234567"}


def test_merge_ignores_unknown_keys_none_and_blank_values() -> None:
    slots = MessageSlots(name="John", reason="the invoice")
    assert slots.merge({"name": None, "reason": "   ", "mood": "angry", "callback_number": ""}) == []
    assert slots.as_dict() == {"name": "John", "reason": "the invoice", "callback_number": None}


def test_merge_accepts_an_integer_callback_number() -> None:
    slots = MessageSlots()
    assert slots.merge({"callback_number": 5550134}) == ["callback_number"]
    assert slots.callback_number == "5550134"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": 42}, "name must be a string"),
        ({"reason": ["a", "b"]}, "reason must be a string"),
        ({"callback_number": True}, "callback_number must be a string"),
        ({"callback_number": "call me maybe"}, "is not a phone number"),
        ({"callback_number": "123"}, "5 to 15 digits"),
    ],
)
def test_merge_rejects_bad_values_and_changes_nothing(arguments: dict[str, object], message: str) -> None:
    slots = MessageSlots()
    with pytest.raises(ValueError, match=message):
        slots.merge({"name": "John", **arguments} if "name" not in arguments else arguments)
    assert slots.as_dict() == {"name": None, "reason": None, "callback_number": None}


def test_merge_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError, match="must be an object"):
        MessageSlots().merge(["name", "John"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Languages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given_language", "expected"), [("en", "en"), ("RU", "ru"), ("en-US", "en"), ("ru_RU", "ru")])
def test_check_language_accepts_en_and_ru(given_language: str, expected: str) -> None:
    assert check_language(given_language) == expected


@pytest.mark.parametrize("language", ["de", "", "english"])
def test_unknown_languages_are_refused(language: str) -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        check_language(language)
    with pytest.raises(ValueError, match="unsupported language"):
        extract_phone_number("555 0134", language)
    with pytest.raises(ValueError, match="unsupported language"):
        detect_yes_no("yes", language)


# ---------------------------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+7 916 123-45-67", "+79161234567"),
        ("+7 (916) 123-45-67", "+79161234567"),
        ("8-916-123-45-67", "89161234567"),
        ("555 0134", "5550134"),
        ("  555.0134 ", "5550134"),
        ("[555] 0134", "5550134"),
        ("12345", "12345"),
        ("1234", None),
        ("1234567890123456", None),
        ("555 0134 ext 12", None),
        ("7+9161234567", None),
        ("++79161234567", None),
        ("", None),
        ("five five five", None),
    ],
)
def test_normalize_phone_number(text: str, expected: str | None) -> None:
    assert normalize_phone_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("five five five, oh one three four", "5550134"),
        ("double five five one two three four", "5551234"),
        ("My number is 555-0134.", "5550134"),
        ("555 0134", "5550134"),
        ("5, 5, 5, 0, 1, 3, 4.", "5550134"),
        ("Five. Five. Five. Zero. One. Three. Four.", "5550134"),
        ("It's plus one, five five five, one two three, four five six seven", "+15551234567"),
        ("+1 555 123 4567", "+15551234567"),
        ("triple seven double oh four", "777004"),
        ("nine hundred sixteen, one two three, forty five, sixty seven", "9161234567"),
        ("eight hundred, five five five, one two one two", "8005551212"),
        ("one hundred and five, two two", "10522"),
        ("fifteen hundred twenty-two, three four", "152234"),
        ("a hundred and twenty three four five", "12345"),
        ("two thousand and five, one one", "200511"),
        ("five five five, um, oh one three four", "5550134"),
        ("five five five dash oh one three four", "5550134"),
        ("five five five and then oh one three four", "5550134"),
        ("Oh, it's five five five oh one three four", "5550134"),
        ("MY NUMBER IS FIVE FIVE FIVE OH ONE THREE FOUR", "5550134"),
        ("double 5 1 2 3 4", "551234"),
        ("five five five", None),
        ("I don't have one", None),
        ("nothing", None),
        ("one two three four five six seven eight nine one two three four five six seven", None),
    ],
)
def test_extract_phone_number_english(text: str, expected: str | None) -> None:
    assert extract_phone_number(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+7 916 123-45-67", "+79161234567"),
        ("восемь девятьсот шестнадцать один два три сорок пять шестьдесят семь", "89161234567"),
        ("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "89161234567"),
        ("Восемь, девятьсот шестнадцать, э, сто двадцать три, сорок пять, шестьдесят семь.", "89161234567"),
        ("плюс семь девятьсот шестнадцать 123 45 67", "+79161234567"),
        ("Мой номер: 8 916 123 45 67", "89161234567"),
        ("восемь 916 сто двадцать три 45 67", "89161234567"),
        ("двести двадцать два ноль ноль тридцать", "2220030"),
        ("девятьсот пять, одиннадцать, двенадцать", "9051112"),
        ("ноль ноль семь, тринадцать, девятнадцать", "0071319"),
        ("восемь девятьсот шестнадцать тире сто двадцать три и сорок пять и шестьдесят семь", "89161234567"),
        ("ВОСЕМЬ ДЕВЯТЬСОТ ШЕСТНАДЦАТЬ СТО ДВАДЦАТЬ ТРИ СОРОК ПЯТЬ ШЕСТЬДЕСЯТ СЕМЬ", "89161234567"),
        ("номер восьми девятисот шестнадцати ста двадцати трёх", "8916123"),
        ("одна две три четыре пять", "12345"),
        ("Восьми девятисот шестнадцати", None),
        ("не помню", None),
    ],
)
def test_extract_phone_number_russian(text: str, expected: str | None) -> None:
    assert extract_phone_number(text, "ru") == expected


def test_extract_phone_number_keeps_the_plus_only_when_said_or_written() -> None:
    assert extract_phone_number("плюс семь девять один шесть один два три", "ru") == "+7916123"
    assert extract_phone_number("семь девять один шесть один два три", "ru") == "7916123"
    assert extract_phone_number("plus seven nine one six one two three", "en") == "+7916123"
    assert extract_phone_number("seven nine one six one two three", "en") == "7916123"


def test_extract_phone_number_does_not_join_numbers_across_other_words() -> None:
    text = "I'm calling about invoice 4521, my number is 555 0134"
    assert extract_phone_number(text, "en") == "5550134"


def test_extract_phone_number_prefers_the_longest_then_the_last() -> None:
    assert extract_phone_number("order 45210, my number is 555 0134", "en") == "5550134"
    assert extract_phone_number("555 0134, sorry, I mean 555 0135", "en") == "5550135"


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("восемь девятьсот шестнадцать", "ru", "8916"),
        ("плюс семь", "ru", "+7"),
        ("five five", "en", "55"),
        ("order 12, number 555 0134", "en", "5550134"),
        ("nothing", "en", ""),
    ],
)
def test_extract_digits_returns_even_a_short_number(text: str, language: str, expected: str) -> None:
    assert extract_digits(text, language) == expected


_EN_DIGITS = ("oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_RU_DIGITS = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_RU_TENS = ("", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят", "восемьдесят", "девяносто")
_RU_TEENS = ("десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать", "шестнадцать",
             "семнадцать", "восемнадцать", "девятнадцать")
_RU_HUNDREDS = ("", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот", "восемьсот", "девятьсот")


def _ru_group(group: str) -> str:
    """A Russian speaker's way of saying a 1..3 digit group (leading zeros digit by digit)."""
    if len(group) == 1 or group[0] == "0":
        return " ".join(_RU_DIGITS[int(d)] for d in group)
    value = int(group)
    words = [_RU_HUNDREDS[value // 100]] if value >= 100 else []
    rest = value % 100
    if 10 <= rest < 20:
        words.append(_RU_TEENS[rest - 10])
    else:
        if rest >= 20:
            words.append(_RU_TENS[rest // 10])
        if rest % 10:
            words.append(_RU_DIGITS[rest % 10])
    return " ".join(words)


def _ru_groups_merge(previous: str, following: str) -> bool:
    """Whether two spoken groups run together into one number ("сто" + "один" is 101, "сорок" + "пять" is 45).

    A listener could not tell them apart either, so the round-trip test avoids such pairs.
    """
    if following[0] == "0" or previous[0] == "0" or len(previous) == 1:
        return False
    if len(previous) == 3 and previous[1:] == "00":
        return len(following) <= 2
    return previous[-1] == "0" and previous[-2] != "1" and len(following) == 1


@given(st.text(alphabet="0123456789", min_size=5, max_size=15))
def test_any_number_said_digit_by_digit_in_english_comes_back(digits: str) -> None:
    spoken = " ".join(_EN_DIGITS[int(d)] for d in digits)
    assert extract_phone_number(f"my number is {spoken}, thanks", "en") == digits


@given(st.text(alphabet="0123456789", min_size=5, max_size=15))
def test_any_number_said_digit_by_digit_in_russian_comes_back(digits: str) -> None:
    spoken = ", ".join(_RU_DIGITS[int(d)] for d in digits)
    assert extract_phone_number(f"мой номер {spoken}. Спасибо", "ru") == digits


@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=3), min_size=2, max_size=5))
def test_any_number_said_in_russian_groups_comes_back(groups: list[str]) -> None:
    assume(not any(_ru_groups_merge(a, b) for a, b in zip(groups, groups[1:])))
    digits = "".join(groups)
    spoken = " ".join(_ru_group(group) for group in groups)
    expected = digits if 5 <= len(digits) <= 15 else None
    assert extract_phone_number(spoken, "ru") == expected, spoken


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, this is John Peters, I'm calling about the invoice", "John Peters"),
        ("My name is John Peters.", "John Peters"),
        ("my name is john o'brien and I'm calling about the boiler", "John O'Brien"),
        ("my name's mary", "Mary"),
        ("It's Mary.", "Mary"),
        ("it's mary", "Mary"),
        ("I am John McDonald", "John McDonald"),
        ("I'm Anna from Acme", "Anna"),
        ("Hello, John Peters speaking.", "John Peters"),
        ("This is Jean-Luc Picard calling from the Enterprise", "Jean-Luc Picard"),
        ("this is john peters smith jones", "John Peters Smith"),
        ("I'm calling about the invoice", None),
        ("I'm interested in your services", None),
        ("It's about the invoice", None),
        ("It's urgent", None),
        ("i'm stuck with my order", None),
        ("This is five five five oh one three four", None),
        ("Who's speaking?", None),
        ("yes", None),
        ("The invoice", None),
        ("", None),
    ],
)
def test_extract_name_english(text: str, expected: str | None) -> None:
    assert extract_name(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Меня зовут Иван Петров, звоню по поводу счёта", "Иван Петров"),
        ("меня зовут иван петров и я звоню насчёт доставки", "Иван Петров"),
        ("Это Иван.", "Иван"),
        ("Здравствуйте, я Мария.", "Мария"),
        ("я иван", "Иван"),
        ("Меня зовут Артём", "Артём"),
        ("Здравствуйте, вас беспокоит Мария из банка", "Мария"),
        ("Беспокоит Иван Петров", "Иван Петров"),
        ("Иван Петров беспокоит", "Иван Петров"),
        ("Это Иван Петров компания Ромашка", "Иван Петров"),
        ("Я звоню по поводу счёта", None),
        ("я хочу записаться", None),
        ("Это срочно", None),
        ("это сломалось", None),
        ("нет, это неправильно", None),
        ("Это восемь девятьсот шестнадцать", None),
        ("да", None),
    ],
)
def test_extract_name_russian(text: str, expected: str | None) -> None:
    assert extract_name(text, "ru") == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("John Peters.", "en", "John Peters"),
        ("john peters", "en", "John Peters"),
        ("JOHN PETERS", "en", "John Peters"),
        ("Um, John.", "en", "John"),
        ("Ummm, John.", "en", "John"),
        ("Hmmm", "en", None),
        ("Эээ", "ru", None),
        ("Эээ, Иван", "ru", "Иван"),
        ("Yes, John Peters, from Acme.", "en", "John Peters"),
        ("John, calling about the invoice", "en", "John"),
        ("Иван Петров", "ru", "Иван Петров"),
        ("Да, Иван.", "ru", "Иван"),
        ("Иван, звоню насчёт счёта", "ru", "Иван"),
        ("Peter wants to know about the invoice", "en", None),
        ("The invoice", "en", None),
        ("I don't know", "en", None),
        ("Why?", "en", None),
        ("yes", "en", None),
        ("um", "en", None),
        ("five five five", "en", None),
        ("555 0134", "en", None),
        ("да", "ru", None),
        ("нет", "ru", None),
        ("восемь девять один шесть", "ru", None),
    ],
)
def test_extract_name_when_expecting_a_name(text: str, language: str, expected: str | None) -> None:
    assert extract_name(text, language, expecting_name=True) == expected


def test_a_bare_name_counts_only_when_expecting_one() -> None:
    assert extract_name("John Peters.", "en") is None
    assert extract_name("John Peters.", "en", expecting_name=True) == "John Peters"


def test_weak_lead_in_needs_a_capital_in_cased_text() -> None:
    # Cased output capitalises names; "it's broken" in cased text is not a name...
    assert extract_name("Yes, it's broken", "en") is None
    assert extract_name("Yes, it's Sterling", "en") == "Sterling"
    # ...while caseless output falls back to word lists and suffixes.
    assert extract_name("yes it's sterling", "en") is None
    assert extract_name("my name is sterling", "en") == "Sterling"


# ---------------------------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, this is John Peters, I'm calling about the invoice", "the invoice"),
        ("I'm calling because my boiler broke.", "my boiler broke"),
        ("It's about the invoice from May.", "the invoice from May"),
        ("Regarding the contract renewal", "the contract renewal"),
        ("I’m calling regarding the contract renewal", "the contract renewal"),
        ("I'm calling to ask about the price", "the price"),
        ("I'm calling to book a table", "book a table"),
        ("I'm calling about my boiler, it's broken", "my boiler, it's broken"),
        ("I'm calling about the invoice, my number is 555 0134", "the invoice"),
        ("Hi, I'm calling about the invoice, thank you", "the invoice"),
        ("Hello, John Peters speaking, it's about the delivery", "the delivery"),
        ("Hi, this is John Peters, I need a quote for a new roof.", "I need a quote for a new roof"),
        ("This is John and I need a quote", "I need a quote"),
        ("This is John from Acme and we need a quote", "we need a quote"),
        ("I'm calling about invoice 45210", "invoice 45210"),
        ("The car, please call me back", "The car"),
        ("I wanted to talk about the contract", "the contract"),
        ("The invoice.", "The invoice"),
        ("It's urgent", "It's urgent"),
        ("I'm calling about...", None),
        ("um", None),
        ("yes", None),
        ("hello?", None),
        ("no thanks, bye", None),
        ("five five five oh one three four", None),
        ("My number is 555, 0134", None),
        ("This is John Peters.", None),
    ],
)
def test_extract_reason_english(text: str, expected: str | None) -> None:
    assert extract_reason(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Я звоню по поводу счёта", "счёта"),
        ("Здравствуйте, меня зовут Иван, звоню насчёт доставки", "доставки"),
        ("Это Иван Петров, насчет оплаты", "оплаты"),
        ("По поводу договора аренды.", "договора аренды"),
        ("Я звоню, чтобы узнать цены", "узнать цены"),
        ("у меня вопрос по оплате", "оплате"),
        ("Хочу записаться на приём", "Хочу записаться на приём"),
        ("Насчёт машины, перезвоните мне", "машины"),
        ("Эээ, ммм", None),
        ("Добрый день, это Мария, хочу записаться на приём, мой номер 8 916 123 45 67", "хочу записаться на приём"),
        ("Нет, спасибо", None),
        ("Да", None),
        ("Меня зовут Иван.", None),
        ("восемь девятьсот шестнадцать сто двадцать три", None),
    ],
)
def test_extract_reason_russian(text: str, expected: str | None) -> None:
    assert extract_reason(text, "ru") == expected


def test_extract_reason_can_require_a_lead_in() -> None:
    assert extract_reason("The delivery was late", "en", require_lead_in=True) is None
    assert extract_reason("The delivery was late", "en") == "The delivery was late"
    assert extract_reason("John, calling about the delivery", "en", require_lead_in=True) == "the delivery"
    assert extract_reason("Иван, насчёт доставки", "ru", require_lead_in=True) == "доставки"


def test_extract_reason_keeps_a_long_reason_short() -> None:
    text = "I'm calling about " + " ".join(f"word{i}" for i in range(50))
    reason = extract_reason(text, "en")
    assert reason is not None
    assert reason.split() == [f"word{i}" for i in range(30)]


# ---------------------------------------------------------------------------------------------
# Yes / no
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("Yeah, that's right.", True),
        ("Yep", True),
        ("That's correct.", True),
        ("Sure", True),
        ("Sure, no problem", True),
        ("Uh-huh", True),
        ("Of course", True),
        ("Why not", True),
        ("no", False),
        ("Nope", False),
        ("Wrong.", False),
        ("No, that's not right", False),
        ("That's not right", False),
        ("Not correct", False),
        ("It's incorrect", False),
        ("Yes, but the number is wrong", False),
        ("yes... no, no", False),
        ("I don't know", None),
        ("I don't remember", None),
        ("Not sure", None),
        ("hmm", None),
        ("what?", None),
        ("", None),
    ],
)
def test_detect_yes_no_english(text: str, expected: bool | None) -> None:
    assert detect_yes_no(text, "en") is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Да", True),
        ("Да, всё верно", True),
        ("Верно", True),
        ("Правильно.", True),
        ("Конечно", True),
        ("Ага", True),
        ("Да-да", True),
        ("Почему бы и нет", True),
        ("Без проблем", True),
        ("Нет", False),
        ("Нет, неправильно", False),
        ("Неверно", False),
        ("Неправильно", False),
        ("Да нет, не так", False),
        ("Не совсем", False),
        ("Да, но номер неправильный", False),
        ("Не знаю", None),
        ("Не помню", None),
        ("Что?", None),
        ("ну", None),
    ],
)
def test_detect_yes_no_russian(text: str, expected: bool | None) -> None:
    assert detect_yes_no(text, "ru") is expected
