"""Message text: splitting to Telegram's limit at the best boundary, HTML escaping, packing HTML lines."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.telegram.message_text import (
    TELEGRAM_TEXT_LIMIT,
    html_escape,
    split_html_lines,
    split_text,
    text_units,
)


def assert_reconstructs(text: str, parts: list[str]) -> None:
    """``text`` is the parts in order with only whitespace (or nothing, at a hard cut) between and around them."""
    position = 0
    for part in parts:
        gap_end = position
        while gap_end < len(text) and text[gap_end].isspace():
            gap_end += 1
        assert text.startswith(part, gap_end), (part[:40], text[gap_end : gap_end + 40])
        position = gap_end + len(part)
    assert text[position:].strip() == ""


def assert_valid(text: str, parts: list[str], limit: int) -> None:
    assert all(part and part.strip() for part in parts)
    assert all(text_units(part) <= limit for part in parts)
    assert all(len(part) <= limit for part in parts)
    assert_reconstructs(text, parts)


def test_short_text_is_one_part() -> None:
    assert split_text("Hello, owner!") == ["Hello, owner!"]
    assert split_text("  padded\n") == ["padded"]
    assert split_text("") == [] and split_text(" \n\t ") == []
    assert TELEGRAM_TEXT_LIMIT == 4096


def test_prefers_paragraphs_then_lines_then_sentences_then_words() -> None:
    para1 = "First paragraph line one.\nFirst paragraph line two."
    para2 = "Second paragraph."
    assert split_text(f"{para1}\n\n{para2}", 60) == [para1, para2]
    assert split_text("line one is here\nline two is here. More words", 40) == [
        "line one is here\nline two is here.",
        "More words",
    ]
    assert split_text("One sentence is here, quite long. Another sentence follows", 40) == [
        "One sentence is here, quite long.",
        "Another sentence follows",
    ]
    assert split_text("«Перезвоните мне завтра.» Спасибо, до свидания", 40) == [
        "«Перезвоните мне завтра.»",
        "Спасибо, до свидания",
    ]
    assert split_text("words words words words words", 12) == ["words words", "words words", "words"]


def test_a_boundary_leaving_a_tiny_part_loses_to_a_later_lesser_one() -> None:
    text = "Hi.\n\n" + " ".join(["word"] * 30)
    parts = split_text(text, 50)
    assert len(parts[0]) > 25  # not just "Hi."
    assert_valid(text, parts, 50)


def test_russian_text() -> None:
    sentence = "Звонил Иван Петрович из управляющей компании, просил перезвонить завтра до обеда. "
    text = ("Сводка звонка.\n\n" + sentence * 80).strip()
    parts = split_text(text)
    assert len(parts) == 2
    assert_valid(text, parts, TELEGRAM_TEXT_LIMIT)
    assert all(part.endswith(".") for part in parts)  # cut after a sentence, not mid-word


def test_an_over_long_word_is_the_only_hard_cut() -> None:
    word = "а" * 10_000
    parts = split_text(f"начало {word} конец")
    assert parts == ["начало", "а" * 4096, "а" * 4096, "а" * (10_000 - 2 * 4096) + " конец"]
    assert split_text(word) == ["а" * 4096, "а" * 4096, "а" * 1808]


def test_emoji_count_as_two_units() -> None:
    text = "😀" * 10
    parts = split_text(text, 5)
    assert parts == ["😀😀", "😀😀", "😀😀", "😀😀", "😀😀"]
    with pytest.raises(ValueError):
        split_text("x", 1)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab cд. !?\n\n\t😀Яz…»")), max_size=400),
    limit=st.integers(min_value=2, max_value=60),
)
def test_parts_fit_are_non_empty_and_reconstruct(text: str, limit: int) -> None:
    assert_valid(text, split_text(text, limit), limit)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=1500), st.integers(min_value=2, max_value=300))
def test_any_unicode_text(text: str, limit: int) -> None:
    assert_valid(text, split_text(text, limit), limit)


def test_html_escape() -> None:
    assert html_escape('a < b && c > "d"') == 'a &lt; b &amp;&amp; c &gt; "d"'
    assert html_escape("Привет 'там'") == "Привет 'там'"


def test_html_lines_stay_whole_and_pack() -> None:
    lines = [f"<b>Caller:</b> {html_escape(f'line {n} <ok> & more')}" for n in range(200)]
    messages = split_html_lines(lines, 500)
    assert all(text_units(m) <= 500 for m in messages)
    assert "\n".join(messages).split("\n") == lines
    for current, following in zip(messages, messages[1:]):  # greedy: the next line would not have fitted
        assert text_units(current) + 1 + text_units(following.split("\n")[0]) > 500


def test_html_blank_lines_are_not_at_message_edges() -> None:
    messages = split_html_lines(["", "a" * 8, "", "b" * 8, "", ""], 10)
    assert messages == ["a" * 8, "b" * 8]
    assert split_html_lines(["", " "], 10) == []


def test_an_over_long_html_line_is_split_into_valid_pieces() -> None:
    body = "Tom &amp; Jerry &lt;3 " * 200
    wrapped = split_html_lines(["short", f"<i>{body}</i>", "after"], 300)
    assert wrapped[0] == "short" and wrapped[-1] == "after"
    middle = wrapped[1:-1]
    assert all(m.startswith("<i>") and m.endswith("</i>") and text_units(m) <= 300 for m in middle)
    assert all(not re.search(r"&(?!amp;|lt;|gt;)", m) for m in middle)  # no entity cut in half
    plain = " ".join(html.unescape(m[3:-4]) for m in middle)
    assert plain.split() == html.unescape(body).split()

    mixed = split_html_lines(["<b>Name:</b> " + "&amp;" * 400], 100)
    assert all(text_units(m) <= 100 and "<" not in m for m in mixed)  # markup other than a whole-line wrap is dropped
    assert mixed[0] == "Name:" and "".join(mixed[1:]) == "&amp;" * 400


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(st.text(alphabet=st.sampled_from(list("ab &<>😀 ")), max_size=80), max_size=30),
    limit=st.integers(min_value=5, max_value=120),
)
def test_html_packing_property(lines: list[str], limit: int) -> None:
    escaped = [html_escape(line) for line in lines]
    messages = split_html_lines(escaped, limit)
    assert all(m.strip() and text_units(m) <= limit for m in messages)
    assert all(html_escape(html.unescape(m)) == m for m in messages)  # only whole entities
    words = [w for line in lines for w in line.split()]
    joined = "".join(w for m in messages for w in html.unescape(m).split())
    assert joined == "".join(words)
