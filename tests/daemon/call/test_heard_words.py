"""The cut-to-words mapping: which words of a reply the caller heard when the line was cut after so many seconds."""

from __future__ import annotations

import pytest

from daemon.call.speaker import DEFAULT_CHARS_PER_S, FRAME_S, SpokenSegment, heard_text_of, words_heard

TEXT = "I will make sure that Alex gets your message today"  # 10 words, 41 letters -> weights sum 51


def test_no_time_means_no_words_and_all_the_time_means_all_of_them() -> None:
    assert words_heard(TEXT, 0.0) == ""
    assert words_heard(TEXT, 1.0) == TEXT
    assert words_heard(TEXT, 1.7) == TEXT  # clamped
    assert words_heard(TEXT, -0.3) == ""


def test_a_word_counts_only_once_all_of_it_was_said() -> None:
    # "I"=2, "will"=5, "make"=5 -> 12 of 51: "make" ends at 12/51 = 0.235
    assert words_heard(TEXT, 12 / 51) == "I will make"
    assert words_heard(TEXT, 11.9 / 51) == "I will"
    assert words_heard(TEXT, 12.1 / 51) == "I will make"


def test_long_words_take_longer_than_short_ones() -> None:
    text = "a b c extraordinarily"  # weights 2, 2, 2, 15: the long word is most of the audio
    assert words_heard(text, 0.5) == "a b c"
    assert words_heard(text, 0.99) == "a b c"


def test_the_last_word_of_an_unfinished_synthesis_is_never_counted() -> None:
    assert words_heard(TEXT, 1.0, last_word=False) == "I will make sure that Alex gets your message"
    assert words_heard("Hello", 1.0, last_word=False) == ""


def test_whole_chunks_then_the_played_share_of_the_cut_one() -> None:
    segments = [SpokenSegment("Thank you.", 1.0), SpokenSegment(TEXT, 4.0)]
    assert heard_text_of(segments, 0.5) == ""  # "Thank" is half the first chunk: not all said
    assert heard_text_of(segments, 1.0) == "Thank you."
    assert heard_text_of(segments, 1.0 + 4.0 * 12 / 51) == "Thank you. I will make…"
    assert heard_text_of(segments, 5.0) == f"Thank you. {TEXT}"
    assert heard_text_of(segments, 5.0 - FRAME_S / 2) == f"Thank you. {TEXT}"  # within a frame of the end


def test_a_chunk_with_no_audio_is_skipped() -> None:
    segments = [SpokenSegment("unspoken", 0.0, complete=False), SpokenSegment("One moment, please.", 1.2)]
    assert heard_text_of(segments, 1.2) == "One moment, please."


def test_a_chunk_still_being_synthesized_is_measured_against_its_estimated_length() -> None:
    # 2 s of audio fed so far, no sentence finished: the length is estimated at the default speech rate
    segment = SpokenSegment(TEXT, 2.0, complete=False)
    estimated = len(TEXT) / DEFAULT_CHARS_PER_S
    assert segment.length_s() == pytest.approx(estimated)
    assert heard_text_of([segment], estimated * 12 / 51) == "I will make…"
    # all the audio fed so far was played: still not the last word
    assert heard_text_of([segment], 2.0) == words_heard(TEXT, 2.0 / estimated) + "…"


def test_a_measured_speech_rate_beats_the_default() -> None:
    # the TTS finished a sentence of 25 characters in 1.0 s: 25 chars/s, so the 50-char text lasts about 2 s
    segment = SpokenSegment(TEXT, 1.6, complete=False, marked_chars=25, marked_s=1.0)
    assert segment.length_s() == pytest.approx(len(TEXT) / 25)
    # never shorter than what was already fed
    assert SpokenSegment(TEXT, 9.0, complete=False, marked_chars=25, marked_s=1.0).length_s() == 9.0


def test_nothing_played_is_nothing_heard() -> None:
    assert heard_text_of([SpokenSegment(TEXT, 4.0)], 0.0) == ""
    assert heard_text_of([], 3.0) == ""
