"""The scripted take-a-message policy: whole conversations in English and Russian."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.dialogue.message_slots import MessageSlots
from daemon.dialogue.policy_speech import spoken_number, written_number
from daemon.dialogue.take_message_policy import (
    DECLINED,
    IN_PROGRESS,
    MESSAGE_TAKEN,
    PolicyTurn,
    TakeMessagePolicy,
)
from engines.text_normalize import normalize

EN_NAME = "May I have your name, please?"
EN_REASON = "What is it about?"
EN_NUMBER = "What number should we call you back on?"
EN_BYE = "Thank you, I'll pass your message on. Goodbye!"
RU_NAME = "Подскажите, пожалуйста, как вас зовут?"
RU_REASON = "Скажите, пожалуйста, по какому вы вопросу?"
RU_NUMBER = "По какому номеру вам перезвонить?"
RU_BYE = "Спасибо, я обязательно передам ваше сообщение. До свидания!"
RU_NUMBER_WORDS = "восемь, девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь"


def say(policy: TakeMessagePolicy, text: str) -> str:
    turn = policy.hear(text)
    assert not turn.done, turn
    assert turn.outcome == IN_PROGRESS
    return turn.say


# ---------------------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------------------


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported language 'de'"):
        TakeMessagePolicy("de")


def test_unknown_slot_in_asks_is_refused() -> None:
    with pytest.raises(ValueError, match="email"):
        TakeMessagePolicy("en", asks=("name", "email"))


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        TakeMessagePolicy("en", max_attempts=0)


def test_policy_turn_defaults() -> None:
    assert PolicyTurn("Hello") == PolicyTurn(say="Hello", done=False, outcome="in_progress")


def test_slots_are_shared_with_the_caller_of_the_policy() -> None:
    slots = MessageSlots()
    policy = TakeMessagePolicy("en", slots=slots)
    assert policy.slots is slots
    policy.next_question()
    policy.hear("My name is John Peters")
    assert slots.name == "John Peters"


# ---------------------------------------------------------------------------------------------
# English conversations
# ---------------------------------------------------------------------------------------------


def test_english_happy_path_fills_two_slots_from_the_first_utterance() -> None:
    policy = TakeMessagePolicy("en")
    assert policy.next_question() == PolicyTurn(EN_NAME)
    assert say(policy, "Hi, this is John Peters, I'm calling about the invoice") == (
        "Thank you, John Peters. " + EN_NUMBER
    )
    assert policy.slots.as_dict() == {"name": "John Peters", "reason": "the invoice", "callback_number": None}
    assert say(policy, "five five five, oh one three four") == (
        "Thank you. Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )
    assert policy.hear("Yes, that's right.") == PolicyTurn(EN_BYE, done=True, outcome=MESSAGE_TAKEN)
    assert policy.slots.callback_number == "5550134"
    assert policy.summary() == "Caller: John Peters. Reason: the invoice. Call back: 555 0134."
    assert policy.done and policy.outcome == MESSAGE_TAKEN


def test_english_one_slot_at_a_time() -> None:
    policy = TakeMessagePolicy("en")
    assert policy.next_question().say == EN_NAME
    assert say(policy, "John.") == "Thank you, John. " + EN_REASON
    assert say(policy, "The delivery was late") == "Thank you. " + EN_NUMBER
    assert say(policy, "My number is +1 555 123 4567") == (
        "Thank you. Let me read that back. Name: John. About: The delivery was late. "
        "Number: plus one, five five five, one two three, four five six seven. Is that right?"
    )
    assert policy.hear("yep").outcome == MESSAGE_TAKEN
    assert policy.summary() == "Caller: John. Reason: The delivery was late. Call back: +1 555 123 4567."


def test_everything_in_one_breath_goes_straight_to_the_read_back() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    assert say(policy, "Hello, this is Mary Smith, I'm calling about my order, my number is 555 0134") == (
        "Thank you, Mary Smith. Let me read that back. Name: Mary Smith. About: my order. "
        "Number: five five five, zero one three four. Is that right?"
    )


def test_asks_sets_the_order_and_the_slots_asked() -> None:
    policy = TakeMessagePolicy("en", asks=("reason", "name"))
    assert policy.next_question().say == EN_REASON
    assert say(policy, "It's about the roof") == "Thank you. " + EN_NAME
    assert say(policy, "Anna") == "Thank you, Anna. Let me read that back. Name: Anna. About: the roof. Is that right?"
    assert policy.hear("correct") == PolicyTurn(EN_BYE, done=True, outcome=MESSAGE_TAKEN)
    assert policy.slots.callback_number is None


def test_the_persona_goodbye_replaces_the_default() -> None:
    policy = TakeMessagePolicy("en", asks=("name",), goodbye="Have a lovely day!")
    policy.next_question()
    say(policy, "John")
    assert policy.hear("yes") == PolicyTurn(
        "Thank you, I'll pass your message on. Have a lovely day!", done=True, outcome=MESSAGE_TAKEN
    )


def test_caller_id_yes_uses_the_number_they_call_from() -> None:
    policy = TakeMessagePolicy("en", caller_number="+1 (555) 987-4567")
    policy.next_question()
    say(policy, "It's Mary")
    assert say(policy, "the quote for the kitchen") == (
        "Thank you. Should we call you back on the number you're calling from, ending in four five six seven?"
    )
    assert say(policy, "Yes, please") == (
        "Thank you. Let me read that back. Name: Mary. About: the quote for the kitchen. "
        "Number: plus one, five five five, nine eight seven, four five six seven. Is that right?"
    )
    assert policy.slots.callback_number == "+15559874567"
    assert policy.hear("That's right").outcome == MESSAGE_TAKEN


def test_caller_id_no_asks_for_a_number() -> None:
    policy = TakeMessagePolicy("en", caller_number="+15559874567")
    policy.next_question()
    say(policy, "It's Mary")
    say(policy, "the quote")
    assert say(policy, "No") == EN_NUMBER
    assert say(policy, "five five five, one two three, four four four four") == (
        "Thank you. Let me read that back. Name: Mary. About: the quote. "
        "Number: five five five, one two three, four four four four. Is that right?"
    )
    assert policy.slots.callback_number == "5551234444"


def test_caller_id_answered_with_a_number_takes_that_number() -> None:
    policy = TakeMessagePolicy("en", caller_number="+15559874567", asks=("callback_number",))
    assert policy.next_question().say == (
        "Should we call you back on the number you're calling from, ending in four five six seven?"
    )
    assert say(policy, "No, call me on five five five oh one three four") == (
        "Thank you. Let me read that back. Number: five five five, zero one three four. Is that right?"
    )


def test_caller_id_unclear_is_re_asked_then_given_up() -> None:
    policy = TakeMessagePolicy("en", caller_number="+15559874567", asks=("name", "callback_number"))
    policy.next_question()
    say(policy, "John")
    assert say(policy, "hmm") == (
        "Sorry, should we call you back on the number ending in four five six seven? Please say yes or no."
    )
    assert say(policy, "what?") == (
        "Of course. Should we call you back on the number you're calling from, ending in four five six seven?"
    )
    assert say(policy, "the blue one") == "No problem. Let me read that back. Name: John. Is that right?"
    assert policy.slots.callback_number is None


def test_an_unknown_or_invalid_caller_number_is_not_offered() -> None:
    for caller in (None, "", "unknown", "123"):
        policy = TakeMessagePolicy("en", caller_number=caller, asks=("callback_number",))
        assert policy.next_question().say == EN_NUMBER


def test_re_ask_with_a_hint_then_move_on() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    assert say(policy, "um") == "Sorry, I didn't catch your name. Could you say it again, please?"
    assert say(policy, "yes") == "No problem. " + EN_REASON
    assert policy.slots.name is None
    assert say(policy, "I need a plumber") == "Thank you. " + EN_NUMBER
    assert say(policy, "I don't know") == "Sorry, I didn't catch the number. Please say the number digit by digit."
    assert say(policy, "I'd rather not say") == (
        "No problem. Let me read that back. About: I need a plumber. Is that right?"
    )
    assert policy.hear("Yes").outcome == MESSAGE_TAKEN
    assert policy.summary() == "Caller: not given. Reason: I need a plumber. Call back: not given."


def test_max_attempts_controls_how_often_a_slot_is_asked() -> None:
    policy = TakeMessagePolicy("en", asks=("callback_number",), max_attempts=3)
    policy.next_question()
    hint = "Sorry, I didn't catch the number. Please say the number digit by digit."
    assert say(policy, "it's on the card") == hint
    assert say(policy, "the usual one") == hint
    assert say(policy, "five five five oh one three four") == (
        "Thank you. Let me read that back. Number: five five five, zero one three four. Is that right?"
    )


def test_a_number_cut_in_two_by_the_stt_is_joined() -> None:
    policy = TakeMessagePolicy("ru", asks=("callback_number",))
    policy.next_question()
    assert say(policy, "восемь девятьсот шестнадцать") == "Да, записываю."
    assert say(policy, "сто двадцать три сорок пять шестьдесят семь") == (
        f"Спасибо. Давайте проверим. Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )


def test_a_number_started_over_is_not_joined_to_its_first_try() -> None:
    policy = TakeMessagePolicy("en", asks=("callback_number",))
    policy.next_question()
    assert say(policy, "five five") == "Yes, go on, please."
    assert say(policy, "five five five, oh one three four") == (
        "Thank you. Let me read that back. Number: five five five, zero one three four. Is that right?"
    )


def test_a_short_fragment_followed_by_nothing_is_a_failed_attempt() -> None:
    policy = TakeMessagePolicy("en", asks=("name", "callback_number"))
    policy.next_question()
    say(policy, "Ann")
    assert say(policy, "one two three") == "Yes, go on, please."
    assert say(policy, "sorry, I forgot") == "Sorry, I didn't catch the number. Please say the number digit by digit."
    assert say(policy, "the one on the card") == "No problem. Let me read that back. Name: Ann. Is that right?"


def test_a_failed_attempt_that_gave_other_slots_re_asks_plainly() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    assert say(policy, "It's about the invoice") == "Thank you. " + EN_NAME
    assert policy.slots.reason == "the invoice"
    assert say(policy, "Bob") == "Thank you, Bob. " + EN_NUMBER


def test_when_nothing_at_all_is_collected_the_call_ends_without_a_message() -> None:
    policy = TakeMessagePolicy("en", asks=("name",), max_attempts=1)
    policy.next_question()
    turn = policy.hear("Sure")
    assert turn == PolicyTurn(
        "No problem. I'm sorry, I couldn't take your message. Goodbye!", done=True, outcome=DECLINED
    )


def test_a_caller_who_never_answers_ends_the_call_after_every_slot_was_tried() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    says = [policy.hear("hmm") for _ in range(6)]
    assert [turn.done for turn in says] == [False] * 5 + [True]
    assert says[-1] == PolicyTurn(
        "No problem. I'm sorry, I couldn't take your message. Goodbye!", done=True, outcome=DECLINED
    )


def test_a_number_in_the_reason_does_not_become_the_callback_number() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    say(policy, "Hi, this is John, I'm calling about invoice 45210")
    assert policy.slots.as_dict() == {"name": "John", "reason": "invoice 45210", "callback_number": None}


# -- confirmation and correction ------------------------------------------------------------


def _at_read_back(language: str = "en", **kwargs: object) -> TakeMessagePolicy:
    policy = TakeMessagePolicy(language, **kwargs)  # type: ignore[arg-type]
    policy.next_question()
    if language == "en":
        say(policy, "Hi, this is John Peters, I'm calling about the invoice")
        say(policy, "five five five, oh one three four")
    else:
        say(policy, "Здравствуйте, меня зовут Иван Петров, звоню по поводу счёта")
        say(policy, "восемь девятьсот шестнадцать один два три сорок пять шестьдесят семь")
    return policy


def test_correction_by_naming_the_slot() -> None:
    policy = _at_read_back()
    assert say(policy, "No, that's not right") == "What should I correct: your name, the reason or the number?"
    assert say(policy, "The number") == EN_NUMBER
    assert say(policy, "five five five, oh one three five") == (
        "Thank you. Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five five, zero one three five. Is that right?"
    )
    assert policy.hear("yes").outcome == MESSAGE_TAKEN
    assert policy.slots.callback_number == "5550135"


def test_correction_with_the_new_number_directly() -> None:
    policy = _at_read_back()
    say(policy, "No")
    assert say(policy, "It's five five five, oh one three six") == (
        "Thank you. Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five five, zero one three six. Is that right?"
    )
    assert policy.slots.callback_number == "5550136"


def test_correction_given_in_the_answer_to_the_read_back() -> None:
    policy = _at_read_back()
    assert say(policy, "No, my name is Jon Peters") == (
        "Thank you. Let me read that back. Name: Jon Peters. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )
    assert say(policy, "No, the number is 555 0199") == (
        "Thank you. Let me read that back. Name: Jon Peters. About: the invoice. "
        "Number: five five five, zero one nine nine. Is that right?"
    )
    assert policy.hear("Yes").outcome == MESSAGE_TAKEN


def test_a_short_number_in_the_correction_replaces_the_number() -> None:
    policy = _at_read_back()
    assert say(policy, "No, it's 12345") == (
        "Thank you. Let me read that back. Name: John Peters. About: the invoice. "
        "Number: one two three, four five. Is that right?"
    )


def test_naming_the_slot_in_the_no_skips_the_correction_question() -> None:
    policy = _at_read_back()
    assert say(policy, "No, the name is wrong") == EN_NAME
    assert say(policy, "Jon Peters") == (
        "Thank you, Jon Peters. Let me read that back. Name: Jon Peters. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )


def test_correcting_the_reason() -> None:
    policy = _at_read_back()
    say(policy, "No")
    assert say(policy, "the reason") == EN_REASON
    assert say(policy, "The invoice for March, it was charged twice") == (
        "Thank you. Let me read that back. Name: John Peters. About: The invoice for March, it was charged twice. "
        "Number: five five five, zero one three four. Is that right?"
    )


def test_a_failed_correction_keeps_the_old_value() -> None:
    policy = _at_read_back()
    say(policy, "No")
    say(policy, "the number")
    assert say(policy, "hmm") == "Sorry, I didn't catch the number. Please say the number digit by digit."
    assert say(policy, "uh") == (
        "No problem. Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )
    assert policy.slots.callback_number == "5550134"


def test_correction_never_offers_the_caller_id_again() -> None:
    policy = _at_read_back(caller_number="+15559874567")
    # the caller gave a number before the caller-ID question came up
    assert policy.slots.callback_number == "5550134"
    say(policy, "No, the number is wrong")
    assert policy.next_question().say == EN_NUMBER


def test_unclear_correction_is_asked_again_then_the_read_back_repeats() -> None:
    policy = _at_read_back()
    say(policy, "No")
    assert say(policy, "hmm") == "Sorry, I didn't get that. What should I correct: your name, the reason or the number?"
    assert say(policy, "well") == (
        "Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )


def test_a_long_answer_with_nothing_in_it_is_not_an_acceptance() -> None:
    policy = _at_read_back()
    say(policy, "No")
    assert say(policy, "Nothing I can put into words") == (
        "Sorry, I didn't get that. What should I correct: your name, the reason or the number?"
    )


def test_nothing_to_correct_takes_the_message() -> None:
    policy = _at_read_back()
    say(policy, "No")
    assert policy.hear("Nothing, it's fine").outcome == MESSAGE_TAKEN


def test_unclear_confirmation_is_asked_once_more_then_accepted() -> None:
    policy = _at_read_back()
    assert say(policy, "hmm") == "Sorry, is that right? Please say yes or no."
    assert policy.hear("mmm") == PolicyTurn(EN_BYE, done=True, outcome=MESSAGE_TAKEN)


def test_endless_corrections_end_with_the_message_as_it_is() -> None:
    policy = _at_read_back()
    for _ in range(3):
        say(policy, "No")
        assert say(policy, "hmm").startswith("Sorry, I didn't get that.")  # unclear
        assert say(policy, "well").startswith("Let me read that back.")  # unclear again: read back
    assert policy.hear("No") == PolicyTurn(
        "All right, I'll pass your message on as it is. Goodbye!", done=True, outcome=MESSAGE_TAKEN
    )


def test_correction_options_follow_the_asked_slots() -> None:
    policy = TakeMessagePolicy("en", asks=("name", "callback_number"))
    policy.next_question()
    say(policy, "Ann")
    say(policy, "555 0134")
    assert say(policy, "No") == "What should I correct: your name or the number?"


# -- declining, silence, the end ------------------------------------------------------------


@pytest.mark.parametrize("text", ["No thanks, bye", "no", "Never mind, I'll call back later", "Goodbye", "nothing"])
def test_english_caller_declines_at_the_first_question(text: str) -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    assert policy.hear(text) == PolicyTurn("All right, thank you for calling. Goodbye!", done=True, outcome=DECLINED)
    assert policy.summary() == (
        "Caller: not given. Reason: not given. Call back: not given. The caller declined to leave a message."
    )


def test_no_is_not_a_decline_once_something_was_given() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    say(policy, "John")
    assert say(policy, "no") == "Sorry, I didn't catch that. Briefly, what is your call about?"


def test_a_refusal_with_a_name_is_not_a_decline() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    assert say(policy, "No, it's John") == "Thank you, John. " + EN_REASON


def test_silence_re_asks_gently_without_counting_an_attempt() -> None:
    policy = TakeMessagePolicy("en", max_attempts=1)
    assert policy.on_silence() == PolicyTurn("Are you still there? " + EN_NAME)
    assert policy.on_silence() == PolicyTurn("Are you still there? " + EN_NAME)
    assert policy.hear("   ") == PolicyTurn("Are you still there? " + EN_NAME)
    assert say(policy, "John") == "Thank you, John. " + EN_REASON
    assert policy.on_silence().say == "Are you still there? " + EN_REASON


def test_silence_at_the_read_back_reads_it_again() -> None:
    policy = _at_read_back()
    assert policy.on_silence().say == (
        "Are you still there? Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )


def test_after_the_end_everything_is_quiet() -> None:
    policy = _at_read_back()
    policy.hear("yes")
    final = PolicyTurn("", done=True, outcome=MESSAGE_TAKEN)
    assert policy.hear("hello?") == final
    assert policy.on_silence() == final
    assert policy.next_question() == final


def test_hear_before_next_question_answers_the_first_question() -> None:
    policy = TakeMessagePolicy("en")
    assert say(policy, "John Peters") == "Thank you, John Peters. " + EN_REASON


# -- switching in from the LLM ---------------------------------------------------------------


def test_next_question_after_the_llm_filled_some_slots() -> None:
    slots = MessageSlots()
    slots.merge({"name": "John Peters", "reason": "the invoice"})
    policy = TakeMessagePolicy("en", slots=slots)
    assert policy.next_question().say == EN_NUMBER


def test_next_question_sees_slots_filled_after_construction() -> None:
    slots = MessageSlots()
    policy = TakeMessagePolicy("en", slots=slots)
    assert policy.next_question().say == EN_NAME
    slots.merge({"name": "John", "reason": "the invoice", "callback_number": "555 0134"})
    assert policy.next_question().say == (
        "Let me read that back. Name: John. About: the invoice. "
        "Number: five five five, zero one three four. Is that right?"
    )
    assert policy.hear("yes").outcome == MESSAGE_TAKEN


def test_next_question_repeats_a_pending_correction_question() -> None:
    policy = _at_read_back()
    say(policy, "No")
    assert policy.next_question().say == "What should I correct: your name, the reason or the number?"


def test_no_decline_when_the_llm_already_has_part_of_the_message() -> None:
    policy = TakeMessagePolicy("en", slots=MessageSlots(name="John", reason="the invoice"))
    policy.next_question()
    assert say(policy, "no") == "Sorry, I didn't catch the number. Please say the number digit by digit."


# ---------------------------------------------------------------------------------------------
# Russian conversations
# ---------------------------------------------------------------------------------------------


def test_russian_happy_path() -> None:
    policy = TakeMessagePolicy("ru")
    assert policy.next_question().say == RU_NAME
    assert say(policy, "Здравствуйте, меня зовут Иван Петров, звоню по поводу счёта") == (
        "Очень приятно, Иван Петров. " + RU_NUMBER
    )
    assert say(policy, "восемь девятьсот шестнадцать один два три сорок пять шестьдесят семь") == (
        "Спасибо. Давайте проверим. Вас зовут Иван Петров. Вы звоните по поводу счёта. "
        f"Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )
    assert policy.hear("Да, всё верно") == PolicyTurn(RU_BYE, done=True, outcome=MESSAGE_TAKEN)
    assert policy.slots.as_dict() == {
        "name": "Иван Петров", "reason": "по поводу счёта", "callback_number": "89161234567"
    }
    assert policy.summary() == "Имя: Иван Петров. Вопрос: по поводу счёта. Перезвонить: 8 916 123 45 67."


def test_russian_one_slot_at_a_time_with_persona_goodbye() -> None:
    policy = TakeMessagePolicy("ru", goodbye="Всего доброго!")
    policy.next_question()
    assert say(policy, "Мария") == "Очень приятно, Мария. " + RU_REASON
    assert say(policy, "Хочу записаться на приём") == "Спасибо. " + RU_NUMBER
    assert say(policy, "+7 916 123-45-67") == (
        "Спасибо. Давайте проверим. Вас зовут Мария. Ваш вопрос: Хочу записаться на приём. "
        f"Номер телефона: плюс семь, {RU_NUMBER_WORDS.partition(', ')[2]}. Всё верно?"
    )
    assert policy.hear("Ага") == PolicyTurn(
        "Спасибо, я обязательно передам ваше сообщение. Всего доброго!", done=True, outcome=MESSAGE_TAKEN
    )


RU_CALLER = "+79161112233"
RU_CALLER_WORDS = "плюс семь, девятьсот шестнадцать, сто одиннадцать, двадцать два, тридцать три"
RU_ASK_CALLER_ID = "Номер, с которого вы звоните, заканчивается на двадцать два, тридцать три. Перезвонить вам на него?"


def test_russian_caller_id_and_correction() -> None:
    policy = TakeMessagePolicy("ru", caller_number=RU_CALLER)
    policy.next_question()
    say(policy, "Иван")
    assert say(policy, "Доставка") == "Спасибо. " + RU_ASK_CALLER_ID
    assert say(policy, "Да, конечно") == (
        "Спасибо. Давайте проверим. Вас зовут Иван. Ваш вопрос: Доставка. "
        f"Номер телефона: {RU_CALLER_WORDS}. Всё верно?"
    )
    assert say(policy, "Нет") == "Что нужно исправить: имя, вопрос или номер?"
    assert say(policy, "Имя") == RU_NAME
    assert say(policy, "Пётр") == (
        "Спасибо, Пётр. Давайте проверим. Вас зовут Пётр. Ваш вопрос: Доставка. "
        f"Номер телефона: {RU_CALLER_WORDS}. Всё верно?"
    )
    assert policy.hear("верно").outcome == MESSAGE_TAKEN


def test_russian_caller_id_refused_then_number_dictated() -> None:
    policy = TakeMessagePolicy("ru", caller_number=RU_CALLER)
    policy.next_question()
    say(policy, "Иван")
    say(policy, "Доставка")
    assert say(policy, "Нет, не надо") == RU_NUMBER
    assert say(policy, "восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь") == (
        "Спасибо. Давайте проверим. Вас зовут Иван. Ваш вопрос: Доставка. "
        f"Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )


def test_russian_new_number_in_the_no() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Нет, номер восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят восемь") == (
        "Спасибо. Давайте проверим. Вас зовут Иван Петров. Вы звоните по поводу счёта. "
        "Номер телефона: восемь, девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят восемь. "
        "Всё верно?"
    )
    assert policy.slots.callback_number == "89161234568"


def test_russian_correction_question_then_number() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Нет, неправильно") == "Что нужно исправить: имя, вопрос или номер?"
    assert say(policy, "Номер") == RU_NUMBER
    assert say(policy, "восемь девятьсот шестнадцать ноль ноль ноль ноль ноль ноль ноль") == (
        "Спасибо. Давайте проверим. Вас зовут Иван Петров. Вы звоните по поводу счёта. "
        "Номер телефона: восемь, девятьсот шестнадцать, ноль ноль ноль, ноль ноль, ноль ноль. Всё верно?"
    )


def test_russian_re_ask_and_give_up() -> None:
    policy = TakeMessagePolicy("ru", asks=("name", "callback_number"))
    policy.next_question()
    assert say(policy, "эээ") == "Извините, плохо слышно. Повторите, пожалуйста, как вас зовут?"
    assert say(policy, "Иван") == "Очень приятно, Иван. " + RU_NUMBER
    assert say(policy, "не помню") == (
        "Извините, номер плохо слышно. Продиктуйте его, пожалуйста, ещё раз, не торопясь."
    )
    assert say(policy, "ну это") == "Ничего страшного. Давайте проверим. Вас зовут Иван. Всё верно?"
    assert policy.hear("да").outcome == MESSAGE_TAKEN
    assert policy.summary() == "Имя: Иван. Вопрос: не указан. Перезвонить: не указан."


def test_russian_unclear_confirmation() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Ну-у") == "Извините, всё верно? Скажите, пожалуйста, да или нет."
    assert policy.hear("ну").outcome == MESSAGE_TAKEN


def test_russian_silence() -> None:
    policy = TakeMessagePolicy("ru")
    assert policy.on_silence().say == "Алло, вы меня слышите? " + RU_NAME


@pytest.mark.parametrize(
    "text", ["Не надо", "Нет, ничего не нужно", "Ничего", "нет", "Нет, спасибо, до свидания", "Я перезвоню"]
)
def test_russian_caller_declines_at_the_first_question(text: str) -> None:
    policy = TakeMessagePolicy("ru")
    policy.next_question()
    assert policy.hear(text) == PolicyTurn("Хорошо, спасибо за звонок. До свидания!", done=True, outcome=DECLINED)
    assert policy.summary() == (
        "Имя: не указано. Вопрос: не указан. Перезвонить: не указан. Сообщение оставлять не стали."
    )


# -- what callers say on the phone: "что?", "не надо", "на этот номер", "не X, а Y" ----------


@pytest.mark.parametrize("text", ["Что?", "Что-что?", "Повторите, пожалуйста.", "Извините, не расслышал.", "А? Что?"])
def test_russian_what_repeats_the_question_without_counting_an_attempt(text: str) -> None:
    policy = TakeMessagePolicy("ru", max_attempts=1)
    policy.next_question()
    assert say(policy, text) == "Конечно, повторю. " + RU_NAME
    assert say(policy, "Иван") == "Очень приятно, Иван. " + RU_REASON


def test_russian_what_at_the_read_back_reads_it_again() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Что?") == (
        "Конечно, повторю. Давайте проверим. Вас зовут Иван Петров. Вы звоните по поводу счёта. "
        f"Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )
    assert policy.hear("Да").outcome == MESSAGE_TAKEN


def test_english_what_repeats_the_question_twice_then_counts() -> None:
    policy = TakeMessagePolicy("en", max_attempts=1)
    policy.next_question()
    assert say(policy, "Sorry, what?") == "Of course. " + EN_NAME
    assert say(policy, "Could you say that again?") == "Of course. " + EN_NAME
    assert say(policy, "what?") == "No problem. " + EN_REASON  # a third "what?" is an unclear answer
    assert policy.slots.name is None


def test_russian_call_me_back_on_this_number_takes_the_caller_id() -> None:
    policy = TakeMessagePolicy("ru", caller_number=RU_CALLER, asks=("name", "callback_number"))
    policy.next_question()
    assert say(policy, "Это Ольга, перезвоните мне на этот номер.") == (
        "Очень приятно, Ольга. Давайте проверим. Вас зовут Ольга. "
        f"Номер телефона: {RU_CALLER_WORDS}. Всё верно?"
    )
    assert policy.slots.callback_number == RU_CALLER
    assert policy.hear("Да, всё так.").outcome == MESSAGE_TAKEN


@pytest.mark.parametrize("text", ["На этот же номер.", "Перезвоните на этот номер", "Да, на этот", "на тот же"])
def test_russian_this_number_as_the_answer_about_the_number(text: str) -> None:
    policy = TakeMessagePolicy("ru", caller_number=RU_CALLER, asks=("callback_number",))
    assert policy.next_question().say == RU_ASK_CALLER_ID
    assert say(policy, text) == f"Спасибо. Давайте проверим. Номер телефона: {RU_CALLER_WORDS}. Всё верно?"
    assert policy.slots.callback_number == RU_CALLER


def test_russian_this_number_after_refusing_the_offer_still_means_the_caller_id() -> None:
    policy = TakeMessagePolicy("ru", caller_number=RU_CALLER, asks=("callback_number",))
    policy.next_question()
    assert say(policy, "Нет") == RU_NUMBER
    assert say(policy, "Ой, нет, перезвоните на этот же номер") == (
        f"Спасибо. Давайте проверим. Номер телефона: {RU_CALLER_WORDS}. Всё верно?"
    )


def test_this_number_without_a_caller_id_asks_for_the_number() -> None:
    policy = TakeMessagePolicy("ru", caller_number=None, asks=("callback_number",))
    assert policy.next_question().say == RU_NUMBER
    assert say(policy, "Перезвоните на этот номер") == (
        "Извините, ваш номер не определился. Продиктуйте его, пожалуйста."
    )
    assert say(policy, "8 916 123-45-67") == (
        f"Спасибо. Давайте проверим. Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )


def test_english_call_me_back_on_this_number() -> None:
    policy = TakeMessagePolicy("en", caller_number="+15559874567", asks=("name", "callback_number"))
    policy.next_question()
    assert say(policy, "It's Mary, call me back on this number, please.") == (
        "Thank you, Mary. Let me read that back. Name: Mary. "
        "Number: plus one, five five five, nine eight seven, four five six seven. Is that right?"
    )
    assert policy.slots.callback_number == "+15559874567"


def test_russian_no_need_skips_the_number() -> None:
    policy = TakeMessagePolicy("ru", asks=("name", "callback_number"))
    policy.next_question()
    say(policy, "Иван")
    assert say(policy, "Не надо, я сам перезвоню") == "Хорошо. Давайте проверим. Вас зовут Иван. Всё верно?"
    assert policy.slots.callback_number is None


def test_russian_correction_of_one_group() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Нет, не 45, а 46") == (
        "Спасибо. Давайте проверим. Вас зовут Иван Петров. Вы звоните по поводу счёта. "
        "Номер телефона: восемь, девятьсот шестнадцать, сто двадцать три, сорок шесть, шестьдесят семь. "
        "Всё верно?"
    )
    assert policy.slots.callback_number == "89161234667"
    assert policy.hear("Да").outcome == MESSAGE_TAKEN


def test_russian_correction_of_one_group_in_words_after_the_correction_question() -> None:
    policy = _at_read_back("ru")
    say(policy, "Нет")
    assert say(policy, "Не сорок пять, а сорок шесть.").startswith("Спасибо. Давайте проверим.")
    assert policy.slots.callback_number == "89161234667"


def test_russian_correction_of_the_last_group_alone() -> None:
    policy = _at_read_back("ru")
    say(policy, "Нет, в конце шестьдесят восемь")
    assert policy.slots.callback_number == "89161234568"


def test_russian_name_correction() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Нет, не Иван, а Илья.") == (
        "Спасибо. Давайте проверим. Вас зовут Илья Петров. Вы звоните по поводу счёта. "
        f"Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )
    assert policy.slots.name == "Илья Петров"


def test_russian_reason_correction() -> None:
    policy = _at_read_back("ru")
    say(policy, "Нет, не счёта, а договора")
    assert policy.slots.reason == "по поводу договора"


def test_english_correction_of_one_group() -> None:
    policy = _at_read_back()
    assert say(policy, "No, it's 5 5 6") == (
        "Thank you. Let me read that back. Name: John Peters. About: the invoice. "
        "Number: five five six, zero one three four. Is that right?"
    )
    assert policy.slots.callback_number == "5560134"


def test_english_name_correction() -> None:
    policy = _at_read_back()
    say(policy, "No, not John, Jon.")
    assert policy.slots.name == "Jon Peters"


def test_a_correction_that_fits_nothing_asks_what_to_correct() -> None:
    policy = _at_read_back("ru")
    assert say(policy, "Нет, не 99, а 98") == "Что нужно исправить: имя, вопрос или номер?"
    assert policy.slots.callback_number == "89161234567"


def test_russian_whisper_style_dialogue_end_to_end() -> None:
    """What whisper-base writes for a Russian caller: digits, hyphens, a name cut by hesitation."""
    policy = TakeMessagePolicy("ru", caller_number=RU_CALLER)
    policy.next_question()
    assert say(policy, "Это, э-э, Сергей.") == "Очень приятно, Сергей. " + RU_REASON
    assert say(policy, "Я по поводу ремонта.") == "Спасибо. " + RU_ASK_CALLER_ID
    assert say(policy, "Нет, запишите другой. 8-916-123-45-67.") == (
        "Спасибо. Давайте проверим. Вас зовут Сергей. Вы звоните по поводу ремонта. "
        f"Номер телефона: {RU_NUMBER_WORDS}. Всё верно?"
    )
    assert say(policy, "Нет, не 67, а 76.").endswith("сорок пять, семьдесят шесть. Всё верно?")
    assert policy.hear("Да, правильно.").outcome == MESSAGE_TAKEN
    assert policy.slots.as_dict() == {"name": "Сергей", "reason": "по поводу ремонта", "callback_number": "89161234576"}


# ---------------------------------------------------------------------------------------------
# Reading numbers out
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "language", "spoken", "written"),
    [
        ("5550134", "en", "five five five, zero one three four", "555 0134"),
        (
            "+79161234567", "en", "plus seven, nine one six, one two three, four five, six seven",
            "+7 916 123 45 67",
        ),
        ("89161234567", "ru", "восемь, девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь",
         "8 916 123 45 67"),
        ("+79161234567", "ru", "плюс семь, девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь",
         "+7 916 123 45 67"),
        ("15551234567", "en", "one, five five five, one two three, four five six seven", "1 555 123 4567"),
        ("5551234567", "en", "five five five, one two three, four five six seven", "555 123 4567"),
        ("12345", "en", "one two three, four five", "123 45"),
        ("123456", "en", "one two three, four five six", "123 456"),
        ("9161234567", "ru", "девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь", "916 123 45 67"),
        ("1234567", "ru", "сто двадцать три, сорок пять, шестьдесят семь", "123 45 67"),
        ("89160050700", "ru", "восемь, девятьсот шестнадцать, ноль ноль пять, ноль семь, ноль ноль", "8 916 005 07 00"),
        ("5550134", "ru", "пятьсот пятьдесят пять, ноль один, тридцать четыре", "555 01 34"),
    ],
)
def test_numbers_are_read_in_groups(number: str, language: str, spoken: str, written: str) -> None:
    assert spoken_number(number, language) == spoken
    assert written_number(number, language) == written


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_read_back_is_what_the_tts_says_unchanged(language: str) -> None:
    """The read-back is already words: the TTS normaliser has nothing left to rewrite in it."""
    for number in ("89161234567", "+79161234567", "5550134", "+15559874567", "89160050700"):
        spoken = spoken_number(number, language)
        assert not any(c.isdigit() for c in spoken)
        assert normalize(spoken, language) == spoken


# ---------------------------------------------------------------------------------------------
# Any conversation
# ---------------------------------------------------------------------------------------------

_EN_UTTERANCES = (
    "", "yes", "no", "hmm", "John Peters", "It's about the invoice", "five five five, oh one three four",
    "five five", "the number", "the name", "No, my name is Jon", "No thanks, bye", "I don't know",
    "Hi, this is Mary, I'm calling about my order, my number is 555 0134", "nothing", "what?",
    "call me back on this number", "no, it's 5 5 6", "no, not John, Jon",
)
_RU_UTTERANCES = (
    "", "да", "нет", "эээ", "Иван Петров", "По поводу счёта", "восемь девятьсот шестнадцать",
    "сто двадцать три сорок пять шестьдесят семь", "номер", "имя", "Не надо", "не знаю", "ничего",
    "Меня зовут Иван, звоню насчёт доставки, мой номер 8 916 123 45 67", "Что?", "Повторите, пожалуйста",
    "перезвоните на этот номер", "нет, не 45, а 46", "не Иван, а Илья",
)


@settings(max_examples=300, deadline=None)
@given(
    language=st.sampled_from(["en", "ru"]),
    caller=st.sampled_from([None, "+79161112233"]),
    max_attempts=st.integers(min_value=1, max_value=3),
    picks=st.lists(st.integers(min_value=0, max_value=len(_RU_UTTERANCES)), max_size=25),
)
def test_any_conversation_keeps_the_policy_consistent(
    language: str, caller: str | None, max_attempts: int, picks: list[int]
) -> None:
    utterances = _EN_UTTERANCES if language == "en" else _RU_UTTERANCES
    policy = TakeMessagePolicy(language, caller_number=caller, max_attempts=max_attempts)
    turn = policy.next_question()
    assert turn.say
    for pick in picks:
        was_done = turn.done
        turn = policy.on_silence() if pick >= len(utterances) else policy.hear(utterances[pick])
        assert isinstance(turn.say, str)
        if was_done:
            assert turn == PolicyTurn("", done=True, outcome=policy.outcome)
        elif turn.done:
            assert turn.outcome in (MESSAGE_TAKEN, DECLINED) and turn.say.endswith(policy.goodbye)
        else:
            assert turn.outcome == IN_PROGRESS and turn.say
    assert policy.summary().count("\n") == 0


@pytest.mark.parametrize(
    ("language", "text", "question"),
    [("ru", "Нет, не номер, а имя", RU_NAME), ("en", "No, not the number, the name", EN_NAME)],
)
def test_not_this_but_that_slot_corrects_that_slot(language: str, text: str, question: str) -> None:
    policy = _at_read_back(language)
    assert say(policy, text) == question


def test_russian_this_number_at_the_read_back_replaces_the_dictated_one() -> None:
    policy = _at_read_back("ru", caller_number=RU_CALLER)
    assert policy.slots.callback_number == "89161234567"
    assert say(policy, "Нет, перезвоните лучше на этот номер.") == (
        "Спасибо. Давайте проверим. Вас зовут Иван Петров. Вы звоните по поводу счёта. "
        f"Номер телефона: {RU_CALLER_WORDS}. Всё верно?"
    )
    assert policy.hear("Да").outcome == MESSAGE_TAKEN
    assert policy.slots.callback_number == RU_CALLER


def test_russian_hello_checks_the_line_and_hears_the_question_again() -> None:
    policy = TakeMessagePolicy("ru", max_attempts=1)
    assert say(policy, "Алло?") == RU_NAME  # nothing asked yet: the first question, with no "повторю"
    assert say(policy, "Алло, вы меня слышите?") == "Да, я вас слушаю. " + RU_NAME
    assert say(policy, "Иван") == "Очень приятно, Иван. " + RU_REASON


def test_english_hello_checks_the_line() -> None:
    policy = TakeMessagePolicy("en")
    policy.next_question()
    assert say(policy, "Hello? Are you there?") == "Yes, I'm here. " + EN_NAME
