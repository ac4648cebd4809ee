"""What the scripted take-a-message policy says, in English and Russian: its phrases and how it says numbers back.

The Russian phrases are a phone secretary's: formal "вы", a question at the end of each turn, and
a phone number read back in words, group by group as Russians dictate it ("восемь, девятьсот
шестнадцать, сто двадцать три, сорок пять, шестьдесят семь"), so the caller can check it by ear.
English reads a number digit by digit in its groups ("five five five, zero one three four"). The
words come from the TTS text normaliser's phone reading (engines/text_normalize), the groups from
`spoken_fields.numbers.digit_groups`, so the secretary says a number the way she would say it in
any other reply. The greeting and the goodbye are the persona's (config/personas.yaml).
"""

from __future__ import annotations

from daemon.dialogue.spoken_fields.numbers import digit_groups
from daemon.dialogue.spoken_fields.reasons import is_governed_reason
from daemon.dialogue.spoken_fields.words import check_language
from engines.text_normalize import english as english_rules
from engines.text_normalize import russian as russian_rules
from engines.text_normalize.phone_numbers import PhoneNumber

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "ask_name": "May I have your name, please?",
        "ask_reason": "What is it about?",
        "ask_callback_number": "What number should we call you back on?",
        "ask_caller_id": "Should we call you back on the number you're calling from, ending in {digits}?",
        "hint_name": "Sorry, I didn't catch your name. Could you say it again, please?",
        "hint_reason": "Sorry, I didn't catch that. Briefly, what is your call about?",
        "hint_callback_number": "Sorry, I didn't catch the number. Please say the number digit by digit.",
        "hint_caller_id": "Sorry, should we call you back on the number ending in {digits}? Please say yes or no.",
        "caller_id_unknown": "Sorry, your number didn't come through. Could you tell me the number, please?",
        "thanks": "Thank you.",
        "thanks_name": "Thank you, {name}.",
        "thanks_name_corrected": "Thank you, {name}.",
        "give_up": "No problem.",
        "no_need": "No problem.",
        "go_on": "Yes, go on, please.",
        "repeat": "Of course.",
        "still_here": "Yes, I'm here.",
        "readback": "Let me read that back.",
        "readback_name": "Name: {value}.",
        "readback_reason": "About: {value}.",
        "readback_reason_governed": "About: {value}.",
        "readback_callback_number": "Number: {value}.",
        "confirm": "Is that right?",
        "confirm_again": "Sorry, is that right? Please say yes or no.",
        "correction": "What should I correct: {options}?",
        "correction_again": "Sorry, I didn't get that. What should I correct: {options}?",
        "option_name": "your name",
        "option_reason": "the reason",
        "option_callback_number": "the number",
        "or": "or",
        "taken": "Thank you, I'll pass your message on.",
        "taken_as_is": "All right, I'll pass your message on as it is.",
        "declined": "All right, thank you for calling.",
        "nothing_taken": "I'm sorry, I couldn't take your message.",
        "silence": "Are you still there?",
        "goodbye": "Goodbye!",
        "summary_name": "Caller: {value}.",
        "summary_reason": "Reason: {value}.",
        "summary_callback_number": "Call back: {value}.",
        "summary_missing_name": "not given",
        "summary_missing_reason": "not given",
        "summary_missing_callback_number": "not given",
        "summary_declined": "The caller declined to leave a message.",
    },
    "ru": {
        "ask_name": "Подскажите, пожалуйста, как вас зовут?",
        "ask_reason": "Скажите, пожалуйста, по какому вы вопросу?",
        "ask_callback_number": "По какому номеру вам перезвонить?",
        "ask_caller_id": "Номер, с которого вы звоните, заканчивается на {digits}. Перезвонить вам на него?",
        "hint_name": "Извините, плохо слышно. Повторите, пожалуйста, как вас зовут?",
        "hint_reason": "Извините, плохо слышно. Скажите коротко, по какому вы вопросу?",
        "hint_callback_number": "Извините, номер плохо слышно. Продиктуйте его, пожалуйста, ещё раз, не торопясь.",
        "hint_caller_id": (
            "Извините, перезвонить вам на номер, который заканчивается на {digits}? Скажите, пожалуйста, да или нет."
        ),
        "caller_id_unknown": "Извините, ваш номер не определился. Продиктуйте его, пожалуйста.",
        "thanks": "Спасибо.",
        "thanks_name": "Очень приятно, {name}.",
        "thanks_name_corrected": "Спасибо, {name}.",
        "give_up": "Ничего страшного.",
        "no_need": "Хорошо.",
        "go_on": "Да, записываю.",
        "repeat": "Конечно, повторю.",
        "still_here": "Да, я вас слушаю.",
        "readback": "Давайте проверим.",
        "readback_name": "Вас зовут {value}.",
        "readback_reason": "Ваш вопрос: {value}.",
        "readback_reason_governed": "Вы звоните {value}.",
        "readback_callback_number": "Номер телефона: {value}.",
        "confirm": "Всё верно?",
        "confirm_again": "Извините, всё верно? Скажите, пожалуйста, да или нет.",
        "correction": "Что нужно исправить: {options}?",
        "correction_again": "Извините, плохо слышно. Что нужно исправить: {options}?",
        "option_name": "имя",
        "option_reason": "вопрос",
        "option_callback_number": "номер",
        "or": "или",
        "taken": "Спасибо, я обязательно передам ваше сообщение.",
        "taken_as_is": "Хорошо, я передам сообщение как есть.",
        "declined": "Хорошо, спасибо за звонок.",
        "nothing_taken": "К сожалению, не удалось записать сообщение.",
        "silence": "Алло, вы меня слышите?",
        "goodbye": "До свидания!",
        "summary_name": "Имя: {value}.",
        "summary_reason": "Вопрос: {value}.",
        "summary_callback_number": "Перезвонить: {value}.",
        "summary_missing_name": "не указано",
        "summary_missing_reason": "не указан",
        "summary_missing_callback_number": "не указан",
        "summary_declined": "Сообщение оставлять не стали.",
    },
}

_SPEAK_PHONE = {"en": english_rules.speak_phone, "ru": russian_rules.speak_phone}


def phrases(language: str) -> dict[str, str]:
    """The policy's phrase table for `language` ('en' or 'ru'; ValueError otherwise)."""
    return PHRASES[check_language(language)]


def spoken_number(number: str, language: str) -> str:
    """A phone number as the secretary reads it back, in words, group by group.

    "+79161234567", ru -> "плюс семь, девятьсот шестнадцать, сто двадцать три, сорок пять,
    шестьдесят семь"; "5550134", en -> "five five five, zero one three four".
    """
    language = check_language(language)
    digits = number.lstrip("+")
    phone = PhoneNumber(plus=number.startswith("+"), groups=tuple(digit_groups(digits, language)))
    return _SPEAK_PHONE[language](phone)


def spoken_ending(number: str, language: str) -> str:
    """The last four digits, as in "the number ending in ...": ru "двадцать два, тридцать три", en one by one."""
    language = check_language(language)
    last = number.lstrip("+")[-4:]
    groups = (last[:2], last[2:]) if language == "ru" else (last,)
    return _SPEAK_PHONE[language](PhoneNumber(plus=False, groups=groups))


def written_number(number: str, language: str = "en") -> str:
    """A phone number for a one-line summary: "+79161234567" -> "+7 916 123 45 67"."""
    prefix = "+" if number.startswith("+") else ""
    return prefix + " ".join(digit_groups(number.lstrip("+"), language))


def readback_reason(reason: str, language: str) -> str:
    """"Вы звоните по поводу счёта." for a reason that starts with its preposition, else "Ваш вопрос: ..."."""
    texts = phrases(language)
    if is_governed_reason(reason, language):
        return texts["readback_reason_governed"].format(value=reason[0].lower() + reason[1:])
    return texts["readback_reason"].format(value=reason)
