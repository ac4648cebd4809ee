"""The scripted "take a message" dialogue, for when no capable LLM is available.

Deterministic and free of I/O: the call flow feeds it STT finals (`hear`), silences (`on_silence`)
and asks what to say (`next_question`); it answers with a `PolicyTurn`. It asks the caller's
name, the reason for the call and a callback number (the slots of `asks`, in that order), reads
the message back for confirmation, lets the caller correct it, and says goodbye. What it says is
in `policy_speech.py`.

Along the way it understands what callers say on the phone: "что?" / "повторите" (the question
again, not a failed attempt), "не надо" (that part is skipped; at the first question, no message),
"перезвоните на этот номер" / "call me back on this number" (the number called from, read back
for confirmation) and corrections of one part of what was read back ("нет, не 45, а 46", "не
Иван, а Илья", "no, it's 5 5 6").

Silences never count as failed attempts: ending a silent call is the call flow's silence limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from daemon.dialogue.message_slots import SLOT_NAMES, MessageSlots, check_slot_names
from daemon.dialogue.policy_speech import phrases, readback_reason, spoken_ending, spoken_number, written_number
from daemon.dialogue.spoken_fields.corrections import corrected_name, corrected_number, corrected_text, replacement
from daemon.dialogue.spoken_fields.names import extract_name
from daemon.dialogue.spoken_fields.numbers import (
    MIN_PHONE_DIGITS,
    extract_digits,
    extract_phone_number,
    normalize_phone_number,
)
from daemon.dialogue.spoken_fields.reasons import extract_reason
from daemon.dialogue.spoken_fields.requests import (
    asks_to_repeat,
    checks_the_line,
    declines_message,
    declines_slot,
    means_this_number,
    says_nothing_to_correct,
)
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
# "What?" is answered with the question again this many times in a row; then it is an unclear answer.
MAX_REPEATS = 2

Phase = Literal["collect", "caller_id", "confirm", "correction", "done"]


@dataclass(frozen=True)
class PolicyTurn:
    say: str  # what the secretary says next ("" = nothing)
    done: bool = False  # True: the conversation is complete; hang up after `say`
    outcome: str = IN_PROGRESS  # MESSAGE_TAKEN, DECLINED or IN_PROGRESS


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


def _fold_words(text: str) -> list[str]:
    folded = text.lower().replace("ё", "е").replace("’", "'")
    return "".join(c if c.isalnum() or c == "'" else " " for c in folded).split()


def _correction_target(text: str, language: str) -> str | None:
    """Which slot the caller names ("the number", "имя"), first mentioned first.

    In "not X but Y" the slot named in Y wins: "не номер, а имя" is the name.
    """
    change = replacement(text, language)
    named = _named_slot(change.new, language) if change is not None else None
    return named if named is not None else _named_slot(text, language)


def _named_slot(text: str, language: str) -> str | None:
    for word in _fold_words(text):
        for slot, keywords in _CORRECTION_KEYWORDS[language].items():
            if word in keywords:
                return slot
    return None


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
        self._texts = phrases(self.language)
        self.goodbye = goodbye.strip() if goodbye and goodbye.strip() else self._texts["goodbye"]
        self.caller_number = normalize_phone_number(caller_number) if caller_number else None
        self.slots = slots if slots is not None else MessageSlots()
        self.max_attempts = max_attempts
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
        self._repeats = 0  # "what?" in a row
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
        asked = bool(self._prompt)
        if not asked:
            turn = self._advance()  # spoken to before anything was asked: an answer to the first question
            if turn.done:
                return turn
        if self._repeats < MAX_REPEATS:
            if checks_the_line(text, self.language):  # "Алло?": yes, still here
                self._repeats += 1
                return PolicyTurn(self._join(self._texts["still_here"] if asked else "", self._prompt))
            if asks_to_repeat(text, self.language):
                self._repeats += 1
                return PolicyTurn(self._join(self._texts["repeat"] if asked else "", self._prompt))
        self._repeats = 0
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
                value = written_number(value, self.language)
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
            self._prompt = self._texts["ask_caller_id"].format(digits=spoken_ending(self._caller(), self.language))
        else:
            if slot != self._asking:
                self._partial_number = ""
            self._phase, self._asking = "collect", slot
            self._prompt = self._texts[f"ask_{slot}"]
        return PolicyTurn(self._join(prefix, self._prompt))

    def _offer_caller_id(self) -> bool:
        return self.caller_number is not None and not self._caller_id_declined and self._correcting is None

    def _caller(self) -> str:
        assert self.caller_number is not None
        return self.caller_number

    def _start_confirm(self, prefix: str = "") -> PolicyTurn:
        parts = [self._readback(slot) for slot in SLOT_NAMES if getattr(self.slots, slot) is not None]
        if not parts:
            return self._finish(DECLINED, self._join(prefix, self._texts["nothing_taken"]))
        self._phase, self._asking, self._unclear = "confirm", None, 0
        self._prompt = self._join(self._texts["readback"], *parts, self._texts["confirm"])
        return PolicyTurn(self._join(prefix, self._prompt))

    def _readback(self, slot: str) -> str:
        value = getattr(self.slots, slot)
        if slot == "reason":
            return readback_reason(value, self.language)
        if slot == "callback_number":
            value = spoken_number(value, self.language)
        return self._texts[f"readback_{slot}"].format(value=value)

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
        elif self.caller_number is not None and means_this_number(
            text, self.language, asked_for_number=asking == "callback_number"
        ):
            found["callback_number"] = self.caller_number  # "перезвоните на этот номер"
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
            if declines_message(text, self.language):  # at the first question: no message at all
                return self._finish(DECLINED, self._texts["declined"])
        self._store(found, overwrite=asking)
        if self._partial_number and asking not in found:
            return PolicyTurn(self._texts["go_on"])  # not a failed attempt: the number is coming
        if asking in found:
            self._attempts[asking] = 0
            corrected = self._correcting == asking
            if corrected:
                self._correcting = None
            if asking == "name":
                thanks = self._texts["thanks_name_corrected" if corrected else "thanks_name"]
                return self._advance(thanks.format(name=found["name"]))
            return self._advance(self._texts["thanks"])
        if asking == "callback_number" and self.caller_number is None and means_this_number(
            text, self.language, asked_for_number=True
        ):
            return PolicyTurn(self._texts["caller_id_unknown"])  # the number they call from is unknown to us
        if declines_slot(text, self.language):
            return self._skip(asking)
        return self._failed_attempt(asking, got_something=bool(found))

    def _skip(self, slot: str) -> PolicyTurn:
        """"Не надо": the caller will not give this part; what was there before stays."""
        self._partial_number = ""
        if self._correcting == slot:
            self._correcting = None
        else:
            self._given_up.add(slot)
        return self._advance(self._texts["no_need"])

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
            return PolicyTurn(self._texts["hint_caller_id"].format(digits=spoken_ending(self._caller(), self.language)))
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
        """A correction given as a value: the slots changed.

        A part of a value ("не 45, а 46", "не Иван, а Илья", "no, it's 5 5 6") or a whole one ("no,
        my number is ...", "the name is Jon", "перезвоните на этот номер").
        """
        partly = self._corrected_part(text)
        if partly is not None:
            slot, value = partly
            setattr(self.slots, slot, value)
            return [slot]
        found = self._extract(text, None, any_number=True)
        changed = [slot for slot, value in found.items() if getattr(self.slots, slot) != value]
        for slot in changed:
            setattr(self.slots, slot, found[slot])
        return changed

    def _corrected_part(self, text: str) -> tuple[str, str] | None:
        """The slot and its new value when `text` corrects a part of what was read back."""
        slots, language = self.slots, self.language
        candidates = (
            ("callback_number", slots.callback_number, corrected_number),
            ("name", slots.name, corrected_name),
            ("reason", slots.reason, corrected_text),
        )
        for slot, value, correct in candidates:
            if value is not None:
                new = correct(value, text, language)
                if new is not None and new != value:
                    return slot, new
        return None

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
        if says_nothing_to_correct(text) or detect_yes_no(text, self.language) is True:
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
