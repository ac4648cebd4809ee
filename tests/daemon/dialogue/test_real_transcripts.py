"""The spoken-field parsers on what whisper-base really wrote for real human speech on an 8 kHz line.

The transcripts are ``tests/support/real_transcripts.json``: whisper-base's text for recordings
that ship in Debian packages (Asterisk's phone prompts, festvox-ru's read speech; regenerate with
``bench/stt_real_speech.py --write-fixture``). Each case's expectation is what the package's own
reference transcript says (quoted next to it), not what whisper wrote; only clips where whisper
did hear the number or name are used, so a failure here is the parser's. Cases the parsers do
not handle yet are strict xfails with the exact string: they start passing when the parser learns
them, and then the mark must go.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from daemon.dialogue.spoken_fields.names import extract_name
from daemon.dialogue.spoken_fields.numbers import extract_phone_number, spoken_numbers

FIXTURE = Path(__file__).resolve().parents[2] / "support" / "real_transcripts.json"


@cache
def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def clip(clip_id: str) -> dict[str, Any]:
    rows = {row["id"]: row for row in _fixture()["clips"]}
    assert clip_id in rows, f"{clip_id} is not in {FIXTURE.name}: regenerate it with bench/stt_real_speech.py"
    return rows[clip_id]


def dictation(dictation_id: str) -> dict[str, Any]:
    rows = {row["id"]: row for row in _fixture()["dictations"]}
    return rows[dictation_id]


def not_yet(case: tuple[Any, ...], why: str) -> Any:
    return pytest.param(*case, marks=pytest.mark.xfail(strict=True, reason=why))


NUMBER_CASES = [
    # (clip, the numbers its reference says)
    ("asterisk-ru:vm-tempgreeting2", ["1", "2"]),  # "нажмите один ... или 2 чтобы его удалить"
    ("asterisk-ru:vm-leavemsg", ["5"]),  # "нажмите пять, чтобы оставить голосовое сообщение"
    ("asterisk-ru:vm-opts", ["2", "3", "0"]),  # "Нажмите 2 ... Нажмите 3 ... Нажмите 0 ..."
    ("asterisk-ru:vm-review", ["1", "2", "3"]),  # "Нажмите один ..., два - чтобы ... или три, ..."
    ("asterisk-ru:dictate/record_help", ["1", "8"]),  # "Нажмите 1 ... Нажмите 8 для перезаписи."
    ("asterisk-en:followme/options", ["1", "2"]),  # "press 1 to accept this call, or 2 to reject it"
    ("asterisk-en:vm-review", ["1", "2", "3"]),  # "press 1 ... press 2 ... press 3 to rerecord"
    ("asterisk-en:vm-forwardoptions", ["1", "2"]),  # "press 1 to prepend a message or 2 to forward ..."
    ("festvox-ru:ru_0049", ["80"]),  # "... вёрст уж, за восемьдесят."
    ("festvox-ru:ru_0041", ["1000"]),  # "Через тысячу лет, ..."
    ("festvox-ru:ru_0612", ["4000"]),  # "... из четырёх, тысяч, жителей." (whisper: "из 4 тысяч жителей")
]


@pytest.mark.parametrize(("clip_id", "expected"), NUMBER_CASES)
def test_numbers_in_real_transcripts(clip_id: str, expected: list[str]) -> None:
    row = clip(clip_id)
    assert spoken_numbers(row["transcript"]) == expected, row["transcript"]


PHONE_CASES = [
    # (dictation: the packages' recorded digit words spliced into a number, the number they say)
    ("ru-mobile", "89161234567"),  # "восемь, девять один шесть, один два три, сорок пять, шестьдесят семь"
    ("en-local", "5550134"),  # "five five five, oh one three four"
    ("en-long", "12025550198"),  # "one, two zero two, five five five, zero one nine eight"
    # "четыре девять пять, семь ноль три, двадцать один, восемнадцать"; whisper: "4, 9, 5, 7, 0, 3, 20, 1, 18."
    ("ru-city", "4957032118"),
]


@pytest.mark.parametrize(("dictation_id", "expected"), PHONE_CASES)
def test_phone_numbers_dictated_in_real_speech(dictation_id: str, expected: str) -> None:
    row = dictation(dictation_id)
    assert row["digits"] == expected
    assert extract_phone_number(row["transcript"], row["language"]) == expected, row["transcript"]


@pytest.mark.parametrize(
    ("clip_id", "said"),
    [
        ("festvox-ru:ru_0696", "Тьяден"),  # "... Ведь это Тьяден, не так ли?"
        ("festvox-ru:ru_0699", None),  # "... - Ваша фамилия? - Йозеф Хамахер, ...": an answer, no lead-in
    ],
)
def test_a_name_whisper_mangled_gives_no_name_rather_than_a_wrong_one(clip_id: str, said: str | None) -> None:
    """whisper-base mishears both names of the set ("Ведь это те один", "Её Зеф-Хаммэхер"): no guess."""
    row = clip(clip_id)
    assert extract_name(row["reference"], "ru") == said
    assert extract_name(row["transcript"], "ru") in (None, said), row["transcript"]


def test_the_fixture_is_whisper_base_on_an_8_khz_line() -> None:
    fixture = _fixture()
    assert fixture["model"] == "packaged:whisper-base" and fixture["codec"] in ("alaw", "ulaw")
    assert {row["language"] for row in fixture["clips"]} == {"en", "ru"}
    assert all(row["transcript"].strip() for row in fixture["clips"] if row["reference_words"] >= 3)
