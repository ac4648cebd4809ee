"""ReplyChunker: exact pieces for English and Russian replies, and properties over any stream split.

Properties checked with hypothesis:

- Split independence: for any text and any way of cutting it into deltas, the
  pieces (everything ``feed`` returned, then ``flush``) are exactly the pieces
  of feeding the whole text at once and flushing. Checked on text built from a
  wide alphabet and tricky tokens (abbreviations, numbers, markdown, emoji,
  long words), with a small ``max_chars`` so forced cuts happen too.
- Well-formed pieces: every piece is stripped, non-empty, has a letter or
  digit, holds no line break, markdown mark (``*`` ``_`` backtick ``#``) or
  emoji, and is at most ``max_chars`` long.
- Nothing lost or added: for reply-like text (words, with punctuation only
  attached to words), the pieces concatenated and with all whitespace removed
  equal the input with all whitespace, markdown marks and emoji removed.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.dialogue.reply_chunker import ReplyChunker, is_emoji

MARKUP = "*_`#"
EMOJI = ("😊", "👍", "📞", "☎️", "✅", "👋🏻")


def chunk_stream(language: str, deltas: list[str], **options: int) -> list[str]:
    chunker = ReplyChunker(language, **options)
    pieces: list[str] = []
    for delta in deltas:
        pieces += chunker.feed(delta)
    return pieces + chunker.flush()


def chunk_text(language: str, text: str, **options: int) -> list[str]:
    """Pieces of ``text`` fed char by char, after checking feeding it whole gives the same."""
    by_char = chunk_stream(language, list(text), **options)
    assert chunk_stream(language, [text], **options) == by_char
    return by_char


# -- exact pieces ---------------------------------------------------------------------------

ENGLISH_CASES: list[tuple[str, list[str]]] = [
    (
        "Of course, Doctor Smith is in tomorrow, and he can see you at 10:30 a.m. on the third floor. Is that OK?",
        [
            "Of course, Doctor Smith is in tomorrow,",
            "and he can see you at 10:30 a.m. on the third floor.",
            "Is that OK?",
        ],
    ),
    (
        "Sure, I'll let him know. Mr. J. K. Peters called at 3 p.m. Then he left.",
        ["Sure, I'll let him know.", "Mr. J. K. Peters called at 3 p.m.", "Then he left."],
    ),
    (
        "The fee is 3.50 dollars, i.e. about 1,000 yen, e.g. for a visit. Call +1 555 013 4444, please!",
        ["The fee is 3.50 dollars,", "i.e. about 1,000 yen, e.g. for a visit.", "Call +1 555 013 4444, please!"],
    ),
    (
        "No. He is out. See No. 5 on the list. It was approx. 3. OK",
        ["No.", "He is out.", "See No. 5 on the list.", "It was approx. 3.", "OK"],
    ),
    (
        "Dr. Smith, Prof. Brown, Mrs. and Ms. Lee vs. St. John etc. are all here. Bring pens, paper, etc. Thanks!",
        [
            "Dr. Smith, Prof. Brown,",
            "Mrs. and Ms. Lee vs. St. John etc. are all here.",
            "Bring pens, paper, etc.",
            "Thanks!",
        ],
    ),
    (
        "Hmm... let me check. Really?! \"Yes.\" (He said so.) 'Fine.' Okay…",
        ["Hmm...", "let me check.", "Really?!", '"Yes."', "(He said so.)", "'Fine.'", "Okay…"],
    ),
    (
        "My number is 555, 0134 and the office is at 10 - 12 Baker Street. Call me.",
        ["My number is 555, 0134 and the office is at 10 - 12 Baker Street.", "Call me."],
    ),
    (
        "**Sure!** 😊 Here's the plan:\n1. Call John.\n2. Bring the `contract`, the invoice, etc. and the keys.\n"
        "- Done... Really?! Yes.",
        [
            "Sure!",
            "Here's the plan:",
            "1. Call John.",
            "2. Bring the contract, the invoice, etc. and the keys.",
            "Done...",
            "Really?!",
            "Yes.",
        ],
    ),
    (
        "### Summary\nJohn's well-known check-in is at 9:15 — the snake_case note 👍 is fine.",
        ["Summary", "John's well-known check-in is at 9:15 — the snake case note is fine."],
    ),
]

RUSSIAN_CASES: list[tuple[str, list[str]]] = [
    (
        "Здравствуйте, Алекс сейчас на встрече. Он будет в 10.30, т.е. через час. "
        "Адрес: г. Москва, ул. Ленина, д. 5, кв. 12.",
        [
            "Здравствуйте, Алекс сейчас на встрече.",
            "Он будет в 10.30, т.е. через час.",
            "Адрес: г. Москва, ул. Ленина, д. 5, кв. 12.",
        ],
    ),
    (
        "Конечно. А. С. Пушкин родился в 1799 г. в Москве. Стоимость 500 руб. Оплата на месте, и т. д. Спасибо!",
        [
            "Конечно.",
            "А. С. Пушкин родился в 1799 г. в Москве.",
            "Стоимость 500 руб.",
            "Оплата на месте, и т. д.",
            "Спасибо!",
        ],
    ),
    (
        "Мой номер +7 916 123-45-67, перезвоните. Сумма 1 000 руб. в месяц, и т.д. и т.п. Всё.",
        ["Мой номер +7 916 123-45-67,", "перезвоните.", "Сумма 1 000 руб. в месяц, и т.д. и т.п.", "Всё."],
    ),
    (
        "Да, конечно, я передам Алексу. См. стр. 3, напр. пункт 2. "
        "Всего 2,5 тыс. рублей, т. к. скидка. «Хорошо.» До свидания!",
        [
            "Да, конечно, я передам Алексу.",
            "См. стр. 3, напр. пункт 2.",
            "Всего 2,5 тыс. рублей, т. к. скидка.",
            "«Хорошо.»",
            "До свидания!",
        ],
    ),
    (
        "Алекс будет в четверг — он просил передать, что подпишет договор. Им. Ленина, пр. Мира, Dr. Smith и др. Пока!",
        [
            "Алекс будет в четверг —",
            "он просил передать, что подпишет договор.",
            "Им. Ленина, пр. Мира, Dr. Smith и др.",
            "Пока!",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH_CASES)
def test_english_pieces(text: str, expected: list[str]) -> None:
    assert chunk_text("en", text) == expected


@pytest.mark.parametrize(("text", "expected"), RUSSIAN_CASES)
def test_russian_pieces(text: str, expected: list[str]) -> None:
    assert chunk_text("ru", text) == expected


def test_first_piece_ends_early_at_a_clause_once_long_enough() -> None:
    assert chunk_text("en", "Sure, of course, Doctor Smith is in tomorrow, call him then.") == [
        "Sure, of course,",
        "Doctor Smith is in tomorrow, call him then.",
    ]
    assert chunk_text("en", "Sure, I can.") == ["Sure, I can."]
    assert chunk_text("en", "Sure, I can help, yes.", first_min_words=5) == ["Sure, I can help, yes."]


def test_later_pieces_end_at_a_clause_only_when_long() -> None:
    long_clause = "and I will make sure that your message about the signed contract reaches Alex today,"
    text = f"Thank you. I see, yes, {long_clause} because he is away."
    assert chunk_text("en", text) == ["Thank you.", f"I see, yes, {long_clause}", "because he is away."]


def test_over_long_text_is_cut_at_the_last_space_outside_a_number() -> None:
    text = "word " * 6 + "call +7 916 123 45 67 now"
    pieces = chunk_text("en", text, max_chars=40)
    assert pieces == ["word word word word word word call", "+7 916 123 45 67 now"]
    assert all(len(piece) <= 40 for piece in pieces)


def test_a_word_longer_than_max_chars_is_cut_hard() -> None:
    assert chunk_text("en", "x" * 45 + " end", max_chars=20) == ["x" * 20, "x" * 20, "xxxxx end"]


def test_a_sentence_end_waits_for_the_next_character() -> None:
    chunker = ReplyChunker("en")
    assert chunker.feed("It costs 3.") == []
    assert chunker.feed("5 dollars. Th") == ["It costs 3.5 dollars."]
    assert chunker.feed("anks.") == []
    assert chunker.feed(" ") == ["Thanks."]
    assert chunker.flush() == []


def test_an_abbreviation_that_may_end_a_sentence_waits_for_the_next_word() -> None:
    chunker = ReplyChunker("en")
    assert chunker.feed("Come at 9 a.m. ") == []
    assert chunker.feed("and") == []
    assert chunker.feed(" bring it. ") == ["Come at 9 a.m. and bring it."]
    assert chunker.feed("Or at 5 p.m. ") == []
    assert chunker.feed("T") == ["Or at 5 p.m."]
    assert chunker.flush() == ["T"]


def test_line_breaks_end_pieces_and_blank_lines_vanish() -> None:
    assert chunk_text("en", "First line\n\n\nsecond line\r\nthird") == ["First line", "second line", "third"]


def test_markup_only_and_emoji_only_pieces_are_dropped() -> None:
    assert chunk_text("en", "Hello! 😊\n---\n**\nBye.") == ["Hello!", "Bye."]
    assert chunk_text("en", "👍") == []
    assert chunk_text("en", "") == []


def test_flush_starts_a_new_reply() -> None:
    chunker = ReplyChunker("en")
    pieces = chunker.feed("Yes, of course, I will tell him, right away. ")
    assert pieces == ["Yes, of course,", "I will tell him, right away."]
    assert chunker.flush() == []
    assert chunker.feed("Sure, I can tell him, right away") == ["Sure, I can tell him,"]
    assert chunker.flush() == ["right away"]


def test_other_languages_use_the_english_rules() -> None:
    assert chunk_text("de", "Dr. Schmidt ist da. Ulica ul. 5.") == ["Dr. Schmidt ist da.", "Ulica ul.", "5."]
    assert chunk_text("ru", "Улица ул. 5.") == ["Улица ул. 5."]


@pytest.mark.parametrize("options", [{"first_min_words": 0}, {"min_words": 0}, {"max_chars": 10}])
def test_invalid_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ReplyChunker("en", **options)


# -- properties -----------------------------------------------------------------------------

TRICKY_TOKENS = [
    " ", " ", " ", "\n", "\n\n", ". ", ", ", "! ", "? ", "?!", "...", "…", ": ", "; ", " — ", " – ", " - ", "-",
    "Dr.", "Mr. ", "e.g.", "i.e. ", "etc.", "a.m.", "No. ", "3.5", "3.", "10.30", "10:30", "1,000", "1 000",
    "+7 916 123-45-67", "555, 0134", "J. K. ", "А. С. ", "т.д.", "и т. д. ", "г. ", "руб.", "ул. ",
    "1. ", "- ", "**", "_", "`", "#", "### ", '"', "«", "»", "(", ")", "'", "😊", "👋🏻", "☎️",
    "Hello", "world", "Call", "Alex", "Иван", "звоните", "x" * 30, "Supercalifragilistic",
]
ALPHABET = "abcXYZабвЭЮЯ0123456789 \n.,!?…:;—-*_`#\"'»”)]([«😊"

texts = st.lists(
    st.one_of(st.sampled_from(TRICKY_TOKENS), st.text(alphabet=ALPHABET, max_size=4)), max_size=50
).map("".join)


@st.composite
def reply_like_texts(draw: st.DrawFn) -> str:
    """Words (maybe in markdown, maybe with punctuation after) separated by spaces, line breaks, dashes or emoji.

    Punctuation only follows a word, so no piece can be made of punctuation alone (such a piece is
    dropped as unspeakable, which this property would count as a loss).
    """
    words = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["", "", "", "**", "_", "`", '"', "«", "("]),
                st.sampled_from(
                    ["Hello", "Alex", "Dr", "Mr", "e.g", "etc", "No", "3", "3.5", "1,000", "+7", "916", "123-45-67",
                     "J", "А", "т.д", "г", "руб", "Иван", "звонил", "well-known", "x" * 25, "10:30"]
                ),
                st.sampled_from(["", "", "", "**", "_", "`", '"', "»", ")"]),
                st.sampled_from(["", "", "", ".", ",", "!", "?", "?!", "...", "…", ":", ";", ".)", '."']),
                st.sampled_from([" ", " ", " ", "  ", "\n", " — ", " - ", " 👍 "]),
            ),
            min_size=1,
            max_size=40,
        )
    )
    text = "".join("".join(parts) for parts in words)
    return text.removesuffix(words[-1][-1])  # separators only between words


def split_points(text: str) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(text)), max_size=12).map(sorted)


def split(text: str, points: list[int]) -> list[str]:
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def squash(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


def without_markup(text: str) -> str:
    return squash("".join(ch for ch in text if ch not in MARKUP and not is_emoji(ch)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["en", "ru"]), texts, st.integers(20, 120), st.data())
def test_pieces_do_not_depend_on_how_the_stream_was_split(
    language: str, text: str, max_chars: int, data: st.DataObject
) -> None:
    whole = chunk_stream(language, [text], max_chars=max_chars)
    points = data.draw(split_points(text))
    assert chunk_stream(language, split(text, points), max_chars=max_chars) == whole
    assert chunk_stream(language, list(text), max_chars=max_chars) == whole


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["en", "ru"]), texts, st.integers(20, 120))
def test_pieces_are_clean_and_short(language: str, text: str, max_chars: int) -> None:
    for piece in chunk_stream(language, list(text), max_chars=max_chars):
        assert piece == piece.strip() and piece
        assert any(ch.isalnum() for ch in piece)
        assert "\n" not in piece and "\r" not in piece
        assert not any(ch in MARKUP or is_emoji(ch) for ch in piece)
        assert len(piece) <= max_chars


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["en", "ru"]), reply_like_texts(), st.data())
def test_nothing_is_lost_or_added(language: str, text: str, data: st.DataObject) -> None:
    points = data.draw(split_points(text))
    pieces = chunk_stream(language, split(text, points))
    assert squash("".join(pieces)) == without_markup(text)


def test_emoji_in_the_tests_are_recognised() -> None:
    for emoji in EMOJI:
        assert all(is_emoji(ch) for ch in emoji)
