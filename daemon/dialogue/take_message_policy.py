"""The scripted "take a message" dialogue, for when no capable LLM is available.

Deterministic and free of I/O: the call flow feeds it STT finals (`hear`), silences (`on_silence`)
and asks what to say (`next_question`); it answers with a `PolicyTurn`. It asks the caller's
name, the reason for the call and a callback number (the slots of `asks`, in that order), reads
the message back for confirmation, lets the caller correct it, and says goodbye.

Silences never count as failed attempts: ending a silent call is the call flow's silence limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from daemon.dialogue.message_slots import SLOT_NAMES, MessageSlots, check_slot_names
from daemon.dialogue.spoken_fields.names import extract_name
from daemon.dialogue.spoken_fields.numbers import (
    MIN_PHONE_DIGITS,
    extract_digits,
    extract_phone_number,
    normalize_phone_number,
)
from daemon.dialogue.spoken_fields.reasons import extract_reason
from daemon.dialogue.spoken_fields.words import check_language
from daemon.dialogue.spoken_fields.yes_no import detect_yes_no

IN_PROGRESS = "in_progress"
MESSAGE_TAKEN = "message_taken"
DECLINED = "declined"

# A number heard while asking something else counts only if it is this long (an invoice number
# "45210" said with the reason must not become the callback number).
INCIDENTAL_NUMBER_MIN_DIGITS = 7
# Fewer digits than a number has are kept for the next answer once there are this many.
MIN_PARTIAL_DIGITS = 2
# After this many rounds of corrections a further "no" takes the message as it stands.
MAX_CORRECTION_ROUNDS = 3

Phase = Literal["collect", "caller_id", "confirm", "correction", "done"]


@dataclass(frozen=True)
class PolicyTurn:
    say: str  # what the secretary says next ("" = nothing)
    done: bool = False  # True: the conversation is complete; hang up after `say`
    outcome: str = IN_PROGRESS  # MESSAGE_TAKEN, DECLINED or IN_PROGRESS


_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "ask_name": "May I have your name, please?",
        "ask_reason": "What is it about?",
        "ask_callback_number": "What number should we call you back on?",
        "ask_caller_id": "Should we call you back on the number you're calling from, ending in {digits}?",
        "hint_name": "Sorry, I didn't catch your name. Could you say it again, please?",
        "hint_reason": "Sorry, I didn't catch that. Briefly, what is your call about?",
        "hint_callback_number": "Sorry, I didn't catch the number. Please say the number digit by digit.",
        "hint_caller_id": "Sorry, should we call you back on the number ending in {digits}? Please say yes or no.",
        "thanks": "Thank you.",
        "thanks_name": "Thank you, {name}.",
        "give_up": "No problem.",
        "go_on": "Yes, go on, please.",
        "readback": "Let me read that back.",
        "readback_name": "Name: {value}.",
        "readback_reason": "About: {value}.",
        "readback_callback_number": "Number: {value}.",
        "confirm": "Is that right?",
        "confirm_again": "Sorry, is that right? Please say yes or no.",
        "correction": "What should I correct: {options}?",
        "correction_again": "Sorry, I didn't get that. What should I correct: {options}?",
        "option_name": "your name",
        "option_reason": "the reason",
        "option_callback_number": "the number",
        "or": "or",
        "plus": "plus",
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
        "ask_name": "Как вас зовут?",
        "ask_reason": "По какому вы вопросу?",
        "ask_callback_number": "По какому номеру вам перезвонить?",
        "ask_caller_id": "Перезвонить вам на номер, с которого вы звоните, который оканчивается на {digits}?",
        "hint_name": "Извините, не удалось разобрать имя. Повторите, пожалуйста, как вас зовут?",
        "hint_reason": "Извините, не удалось разобрать. Коротко: по какому вы вопросу?",
        "hint_callback_number": "Извините, не удалось разобрать номер. Продиктуйте, пожалуйста, номер по одной цифре.",
        "hint_caller_id": (
            "Извините, перезвонить вам на номер, который оканчивается на {digits}? Скажите, пожалуйста, да или нет."
        ),
        "thanks": "Спасибо.",
        "thanks_name": "Спасибо, {name}.",
        "give_up": "Ничего страшного.",
        "go_on": "Да, продолжайте, пожалуйста.",
        "readback": "Давайте проверим.",
        "readback_name": "Имя: {value}.",
        "readback_reason": "Вопрос: {value}.",
        "readback_callback_number": "Номер: {value}.",
        "confirm": "Всё верно?",
        "confirm_again": "Извините, всё верно? Скажите, пожалуйста, да или нет.",
        "correction": "Что исправить: {options}?",
        "correction_again": "Извините, не удалось разобрать. Что исправить: {options}?",
        "option_name": "имя",
        "option_reason": "вопрос",
        "option_callback_number": "номер",
        "or": "или",
        "plus": "плюс",
        "taken": "Спасибо, я передам ваше сообщение.",
        "taken_as_is": "Хорошо, я передам сообщение как есть.",
        "declined": "Хорошо, спасибо за звонок.",
        "nothing_taken": "К сожалению, не удалось записать сообщение.",
        "silence": "Вы меня слышите?",
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

# What the caller may say to name the slot to correct.
_CORRECTION_KEYWORDS: dict[str, dict[str, frozenset[str]]] = {
    "en": {
        "name": frozenset({"name", "spelling", "spelled", "spelt", "surname"}),
        "reason": frozenset({"reason", "about", "message", "topic", "subject", "purpose", "matter"}),
        "callback_number": frozenset({"number", "phone", "digits", "digit", "callback"}),
    },
    "ru": {
        "name": frozenset({"имя", "имени", "зовут", "фамилия", "фамилию", "фамилии"}),
        "reason": frozenset({"вопрос", "вопроса", "причина", "причину", "повод", "тема", "тему", "цель", "сообщение"}),
        "callback_number": frozenset({"номер", "номера", "телефон", "телефона", "цифры", "цифру", "цифра"}),
    },
}

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
_NOTHING_WORDS = frozenset({"nothing", "ничего"})
_SHORT_ANSWER_MAX_WORDS = 3


def _fold_words(text: str) -> list[str]:
    folded = text.lower().replace("ё", "е").replace("’", "'")
    return "".join(c if c.isalnum() or c == "'" else " " for c in folded).split()


def _contains_phrase(words: list[str], phrase: str) -> bool:
    return f" {phrase} " in f" {' '.join(words)} "


def _is_decline(text: str, language: str) -> bool:
    words = _fold_words(text)
    if any(_contains_phrase(words, phrase) for phrase in _DECLINE_PHRASES[language]):
        return True
    if len(words) > _SHORT_ANSWER_MAX_WORDS:
        return False
    return detect_yes_no(text, language) is False or not _NOTHING_WORDS.isdisjoint(words)


def _correction_target(text: str, language: str) -> str | None:
    """Which slot the caller names ("the number", "имя"), first mentioned first."""
    for word in _fold_words(text):
        for slot, keywords in _CORRECTION_KEYWORDS[language].items():
            if word in keywords:
                return slot
    return None


def _digit_groups(digits: str) -> list[str]:
    """How a number is read out: "89161234567" -> 8 916 123 45 67, "5550134" -> 555 0134."""
    if len(digits) == 11 and digits[0] in "78":
        return [digits[0], digits[1:4], digits[4:7], digits[7:9], digits[9:]]
    if len(digits) == 11 and digits[0] == "1":
        return [digits[0], digits[1:4], digits[4:7], digits[7:]]
    groups: list[str] = []
    rest = digits
    while len(rest) > 4:
        groups.append(rest[:3])
        rest = rest[3:]
    return [*groups, rest]


def spoken_number(number: str, language: str) -> str:
    """A phone number to be read digit by digit in groups: "+79161234567" -> "plus 7, 9 1 6, 1 2 3, 4 5, 6 7"."""
    texts = _TEXTS[check_language(language)]
    groups = [" ".join(group) for group in _digit_groups(number.lstrip("+"))]
    if number.startswith("+"):
        groups[0] = f"{texts['plus']} {groups[0]}"
    return ", ".join(groups)


def written_number(number: str) -> str:
    """A phone number for a one-line summary: "+79161234567" -> "+7 916 123 45 67"."""
    prefix = "+" if number.startswith("+") else ""
    return prefix + " ".join(_digit_groups(number.lstrip("+")))


class TakeMessagePolicy:
    """Drives a take-a-message conversation from STT results. See the module docstring."""

    def __init__(
        self,
        language: str,
        *,
        asks: Sequence[str] = SLOT_NAMES,
        goodbye: str | None = None,
        caller_number: str | None = None,
        slots: MessageSlots | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.language = check_language(language)
        check_slot_names(asks)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.asks: tuple[str, ...] = tuple(dict.fromkeys(asks))
        self.goodbye = goodbye.strip() if goodbye and goodbye.strip() else _TEXTS[self.language]["goodbye"]
        self.caller_number = normalize_phone_number(caller_number) if caller_number else None
        self.slots = slots if slots is not None else MessageSlots()
        self.max_attempts = max_attempts
        self._texts = _TEXTS[self.language]
        self._phase: Phase = "collect"
        self._asking: str | None = None  # the slot asked in the "collect" phase
        self._prompt = ""  # the question now waiting for an answer, as first asked
        self._attempts: dict[str, int] = dict.fromkeys(SLOT_NAMES, 0)
        self._given_up: set[str] = set()
        self._caller_id_declined = False
        self._correcting: str | None = None
        self._corrections = 0
        self._unclear = 0  # unclear answers to the confirmation or the correction question
        self._partial_number = ""  # digits of a number whose dictation an STT final cut short
        self._outcome = IN_PROGRESS

    # -- public API --------------------------------------------------------------------------

    @property
    def outcome(self) -> str:
        return self._outcome

    @property
    def done(self) -> bool:
        return self._phase == "done"

    def next_question(self) -> PolicyTurn:
        """What to ask now, given the slots (which the LLM path may have filled meanwhile)."""
        if self._phase == "done":
            return self._final()
        if self._phase in ("confirm", "correction"):
            return PolicyTurn(self._prompt)
        return self._advance()

    def hear(self, text: str) -> PolicyTurn:
        """The caller's utterance (an STT final)."""
        if self._phase == "done":
            return self._final()
        if not any(c.isalnum() for c in text):
            return self.on_silence()
        if not self._prompt:
            turn = self._advance()  # spoken to before anything was asked: an answer to the first question
            if turn.done:
                return turn
        handlers = {
            "collect": self._hear_collect,
            "caller_id": self._hear_caller_id,
            "confirm": self._hear_confirm,
            "correction": self._hear_correction,
        }
        return handlers[self._phase](text)

    def on_silence(self) -> PolicyTurn:
        """The caller said nothing for a while: re-ask the current question, gently."""
        if self._phase == "done":
            return self._final()
        if not self._prompt:
            turn = self.next_question()
            if turn.done:
                return turn
        return PolicyTurn(self._join(self._texts["silence"], self._prompt))

    def summary(self) -> str:
        """One line: who called, why, the callback number (in the policy's language)."""
        parts = []
        for slot in SLOT_NAMES:
            value = getattr(self.slots, slot)
            if value is None:
                value = self._texts[f"summary_missing_{slot}"]
            elif slot == "callback_number":
                value = written_number(value)
            parts.append(self._texts[f"summary_{slot}"].format(value=value))
        if self._outcome == DECLINED:
            parts.append(self._texts["summary_declined"])
        return " ".join(parts)

    # -- planning ----------------------------------------------------------------------------

    def _next_slot(self) -> str | None:
        if self._correcting is not None:
            return self._correcting
        for slot in self.slots.missing(self.asks):
            if slot not in self._given_up:
                return slot
        return None

    def _advance(self, prefix: str = "") -> PolicyTurn:
        """Ask whatever comes next: a missing slot, the caller-ID question, or the read-back."""
        slot = self._next_slot()
        if slot is None:
            return self._start_confirm(prefix)
        if slot == "callback_number" and self._offer_caller_id():
            self._phase, self._asking = "caller_id", None
            self._prompt = self._texts["ask_caller_id"].format(digits=self._caller_digits())
        else:
            if slot != self._asking:
                self._partial_number = ""
            self._phase, self._asking = "collect", slot
            self._prompt = self._texts[f"ask_{slot}"]
        return PolicyTurn(self._join(prefix, self._prompt))

    def _offer_caller_id(self) -> bool:
        return self.caller_number is not None and not self._caller_id_declined and self._correcting is None

    def _caller_digits(self) -> str:
        assert self.caller_number is not None
        return ", ".join(self.caller_number[-4:])

    def _start_confirm(self, prefix: str = "") -> PolicyTurn:
        parts = [
            self._texts[f"readback_{slot}"].format(value=self._readback_value(slot))
            for slot in SLOT_NAMES
            if getattr(self.slots, slot) is not None
        ]
        if not parts:
            return self._finish(DECLINED, self._join(prefix, self._texts["nothing_taken"]))
        self._phase, self._asking, self._unclear = "confirm", None, 0
        self._prompt = self._join(self._texts["readback"], *parts, self._texts["confirm"])
        return PolicyTurn(self._join(prefix, self._prompt))

    def _readback_value(self, slot: str) -> str:
        value = getattr(self.slots, slot)
        return spoken_number(value, self.language) if slot == "callback_number" else value

    def _start_correcting(self, slot: str) -> PolicyTurn:
        self._correcting = slot
        self._attempts[slot] = 0
        self._given_up.discard(slot)
        return self._advance()

    def _finish(self, outcome: str, say: str) -> PolicyTurn:
        self._phase, self._asking, self._outcome = "done", None, outcome
        self._prompt = ""
        return PolicyTurn(self._join(say, self.goodbye), done=True, outcome=outcome)

    def _final(self) -> PolicyTurn:
        return PolicyTurn("", done=True, outcome=self._outcome)

    # -- hearing -----------------------------------------------------------------------------

    def _extract(self, text: str, asking: str | None, *, any_number: bool = False) -> dict[str, str]:
        """Every slot value the utterance holds. The slot being asked is read more generously.

        A number counts when we asked for one (or `any_number`), otherwise only when it is long.
        """
        found: dict[str, str] = {}
        name = extract_name(text, self.language, expecting_name=asking == "name")
        if name is not None:
            found["name"] = name
        reason = extract_reason(text, self.language, require_lead_in=asking != "reason")
        if reason is not None:
            found["reason"] = reason
        number = extract_phone_number(text, self.language)
        if number is not None and (
            any_number or asking == "callback_number" or len(number.lstrip("+")) >= INCIDENTAL_NUMBER_MIN_DIGITS
        ):
            found["callback_number"] = number
        return found

    def _store(self, found: dict[str, str], overwrite: str | None) -> None:
        """Fill empty slots from `found`; the slot `overwrite` (being asked/corrected) is replaced."""
        for slot, value in found.items():
            if slot == overwrite or getattr(self.slots, slot) is None:
                setattr(self.slots, slot, value)

    def _hear_collect(self, text: str) -> PolicyTurn:
        asking = self._asking
        assert asking is not None
        found = self._extract(text, asking)
        if asking == "callback_number":
            found = self._join_partial_number(text, found)
        if self._nothing_collected() and "name" not in found and "callback_number" not in found:
            if _is_decline(text, self.language):  # at the first question: no message at all
                return self._finish(DECLINED, self._texts["declined"])
        self._store(found, overwrite=asking)
        if self._partial_number and asking not in found:
            return PolicyTurn(self._texts["go_on"])  # not a failed attempt: the number is coming
        if asking in found:
            self._attempts[asking] = 0
            if self._correcting == asking:
                self._correcting = None
            if asking == "name":
                return self._advance(self._texts["thanks_name"].format(name=found["name"]))
            return self._advance(self._texts["thanks"])
        return self._failed_attempt(asking, got_something=bool(found))

    def _join_partial_number(self, text: str, found: dict[str, str]) -> dict[str, str]:
        """Join a number dictated across STT finals: "8 916" then "123 45 67" is 89161234567.

        Too few digits for a number are kept; the next answer continues them unless it starts over
        (repeats those digits) or the two together are too long.
        """
        partial, self._partial_number = self._partial_number, ""
        digits = extract_digits(text, self.language)
        if not digits:
            return found
        if partial and not digits.startswith(partial):
            digits = partial + digits.lstrip("+")
            if normalize_phone_number(digits) is not None:
                return {**found, "callback_number": digits}
        started = len(digits.lstrip("+")) >= MIN_PARTIAL_DIGITS or bool(partial)  # a lone "one" is no start
        if "callback_number" not in found and started and len(digits.lstrip("+")) < MIN_PHONE_DIGITS:
            self._partial_number = digits
        return found

    def _nothing_collected(self) -> bool:
        return all(value is None for value in self.slots.as_dict().values())

    def _failed_attempt(self, slot: str, *, got_something: bool) -> PolicyTurn:
        self._attempts[slot] += 1
        if self._attempts[slot] >= self.max_attempts:
            if self._correcting == slot:
                self._correcting = None  # keep what we had
            else:
                self._given_up.add(slot)
            return self._advance(self._texts["give_up"])
        if self._phase == "caller_id":
            return PolicyTurn(self._texts["hint_caller_id"].format(digits=self._caller_digits()))
        if got_something:
            return PolicyTurn(self._join(self._texts["thanks"], self._prompt))
        return PolicyTurn(self._texts[f"hint_{slot}"])

    def _hear_caller_id(self, text: str) -> PolicyTurn:
        found = self._extract(text, "callback_number")
        self._store(found, overwrite="callback_number")
        if "callback_number" in found:
            self._attempts["callback_number"] = 0
            return self._advance(self._texts["thanks"])
        answer = detect_yes_no(text, self.language)
        if answer is True:
            self.slots.callback_number = self.caller_number
            return self._advance(self._texts["thanks"])
        if answer is False:
            self._caller_id_declined = True
            return self._advance()
        return self._failed_attempt("callback_number", got_something=False)

    def _apply_new_values(self, text: str) -> list[str]:
        """A correction given as a value ("no, my number is ...", "the name is Jon"): the slots changed."""
        found = self._extract(text, None, any_number=True)
        changed = [slot for slot, value in found.items() if getattr(self.slots, slot) != value]
        for slot in changed:
            setattr(self.slots, slot, found[slot])
        return changed

    def _hear_confirm(self, text: str) -> PolicyTurn:
        if self._apply_new_values(text):
            self._corrections += 1
            return self._start_confirm(self._texts["thanks"])
        answer = detect_yes_no(text, self.language)
        if answer is True:
            return self._finish(MESSAGE_TAKEN, self._texts["taken"])
        target = _correction_target(text, self.language)
        if answer is False or target is not None:
            if self._corrections >= MAX_CORRECTION_ROUNDS:
                return self._finish(MESSAGE_TAKEN, self._texts["taken_as_is"])
            self._corrections += 1
            if target is not None:
                return self._start_correcting(target)
            self._phase, self._unclear = "correction", 0
            self._prompt = self._texts["correction"].format(options=self._correction_options())
            return PolicyTurn(self._prompt)
        self._unclear += 1
        if self._unclear >= self.max_attempts:
            return self._finish(MESSAGE_TAKEN, self._texts["taken"])
        return PolicyTurn(self._texts["confirm_again"])

    def _hear_correction(self, text: str) -> PolicyTurn:
        if self._apply_new_values(text):
            return self._start_confirm(self._texts["thanks"])
        target = _correction_target(text, self.language)
        if target is not None:
            return self._start_correcting(target)
        words = _fold_words(text)
        nothing = len(words) <= _SHORT_ANSWER_MAX_WORDS and not _NOTHING_WORDS.isdisjoint(words)
        if nothing or detect_yes_no(text, self.language) is True:
            return self._finish(MESSAGE_TAKEN, self._texts["taken"])
        self._unclear += 1
        if self._unclear >= self.max_attempts:
            return self._start_confirm()
        return PolicyTurn(self._texts["correction_again"].format(options=self._correction_options()))

    def _correction_options(self) -> str:
        slots = [slot for slot in SLOT_NAMES if slot in self.asks or getattr(self.slots, slot) is not None]
        options = [self._texts[f"option_{slot}"] for slot in slots]
        if len(options) <= 1:
            return "".join(options)
        return f"{', '.join(options[:-1])} {self._texts['or']} {options[-1]}"

    @staticmethod
    def _join(*parts: str) -> str:
        return " ".join(part for part in parts if part)
