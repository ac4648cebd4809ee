"""The real-speech set (Debian packages' recordings and transcripts) and whisper-base on it at 8 kHz.

The set is read from the packages ``scripts/bootstrap --test`` installs; a source whose package
is absent is skipped with the apt command that brings it. The WER bounds were measured with
``bench/stt_real_speech.py`` (see each bound) and hold a margin for another CPU's int8 kernels.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.audio.framing import ENGINE_RATE, LINE_RATE
from engines.stt.stt_engine import SttEngine
from tests.support import real_speech
from tests.support.phone_band import phone_call
from tests.support.stt_run import hear, whisper_base_engine
from tests.support.word_error import WordErrors, normalized_words, set_error_rate, word_errors

FIXTURE = Path(__file__).resolve().parents[1] / "support" / "real_transcripts.json"
SOURCE_RATES = {"asterisk-en": 8_000, "asterisk-ru": 8_000, "festvox-ru": 16_000}
# fewest caller-sized clips each package has held (bookworm: 247, 232, 496)
MIN_UTTERANCES = {"asterisk-en": 200, "asterisk-ru": 200, "festvox-ru": 450}


def installed(source: real_speech.SpeechSource) -> real_speech.SpeechSource:
    why = real_speech.missing_sources((source,)).get(source.name)
    if why is not None:
        pytest.skip(f"real speech source {source.name} is not installed here: {why}")
    return source


@pytest.mark.parametrize("source", real_speech.SOURCES, ids=lambda s: s.name)
def test_the_set_assembles_from_the_installed_packages(source: real_speech.SpeechSource) -> None:
    installed(source)
    clips = real_speech.utterances(source)
    assert len(clips) >= MIN_UTTERANCES[source.name]
    assert len({c.clip_id for c in clips}) == len(clips)
    for clip in clips:
        assert clip.language == source.language and clip.package == source.audio_package
        assert real_speech.MIN_WORDS <= clip.words <= real_speech.MAX_WORDS
        assert not any(mark in clip.reference for mark in "+[]<>"), clip
    for clip in real_speech.utterances(source, 12):
        pcm, rate = real_speech.load_audio(clip)
        assert rate == SOURCE_RATES[source.name] and pcm.dtype == np.int16
        assert 0.5 < len(pcm) / rate < 30 and np.abs(pcm.astype(np.int32)).max() > 3000, clip


def test_festvox_references_are_the_voice_prompts_without_stress_marks() -> None:
    installed(real_speech.FESTVOX_RU)
    clip = real_speech.clip_by_id("festvox-ru:ru_0002")
    assert clip.reference == (
        "Она завела, прядь волнистых волос за ухо, подняла с тротуара корзинку с зеленью, и пошла через улицу."
    )


def test_asterisk_references_come_from_the_packages_transcript_files() -> None:
    installed(real_speech.ASTERISK_RU)
    installed(real_speech.ASTERISK_EN)
    assert real_speech.clip_by_id("asterisk-ru:dictate/record_help").reference == (
        "Нажмите 1 для перехода в режим воспроизведения. Нажмите 8 для перезаписи."
    )
    assert real_speech.clip_by_id("asterisk-en:vm-leavemsg").reference == "Press 5 to leave a message"
    with pytest.raises(KeyError):
        real_speech.clip_by_id("asterisk-en:silence/1")  # silence is not speech


def test_dictations_are_the_packages_digit_words_with_their_numbers() -> None:
    installed(real_speech.ASTERISK_RU)
    installed(real_speech.ASTERISK_EN)
    by_id = {d.dictation_id: d for d in real_speech.DICTATIONS}
    assert by_id["ru-mobile"].digits == "89161234567"
    assert by_id["ru-mobile"].reference == "восемь, девять один шесть, один два три, сорок пять, шестьдесят семь"
    assert by_id["ru-city"].digits == "4957032118"
    assert by_id["en-local"].reference == "five five five, oh one three four"
    assert by_id["en-local"].digits == "5550134"
    for dictation in real_speech.DICTATIONS:
        pcm, rate = real_speech.dictation_audio(dictation)
        words = sum(len(group) for group in dictation.groups)
        assert rate == LINE_RATE and 0.3 * words < len(pcm) / rate < 1.0 * words, dictation.dictation_id


@pytest.mark.parametrize("codec", ["alaw", "ulaw"])
def test_a_phone_call_keeps_the_length_and_cuts_the_band_at_4_khz(codec: str) -> None:
    clip = real_speech.utterances(installed(real_speech.FESTVOX_RU), 1)[0]
    pcm, rate = real_speech.load_audio(clip)
    heard = phone_call(pcm, rate, codec)
    assert heard.dtype == np.float32 and abs(len(heard) - len(pcm) * ENGINE_RATE / rate) <= 2
    spectrum = np.abs(np.fft.rfft(heard)) ** 2
    freqs = np.fft.rfftfreq(len(heard), 1 / ENGINE_RATE)
    above, speech_band = spectrum[freqs > 4_100].sum(), spectrum[(freqs > 300) & (freqs < 3_400)].sum()
    assert above < speech_band * 1e-3
    original = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    original_freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    assert original[original_freqs > 4_100].sum() > original[(original_freqs > 300) & (original_freqs < 3_400)].sum() * 1e-3


def test_word_error_rate_normalises_case_punctuation_yo_and_digits() -> None:
    assert normalized_words("Нажмите 1, затем «решётку»!", "ru") == ["нажмите", "один", "затем", "решетку"]
    assert word_errors("Нажмите 1 для перехода.", "нажмите один для перехода", "ru").errors == 0
    assert word_errors("Press 0 for help.", "press zero for help", "en").errors == 0
    assert word_errors("с двенадцати лет", "с 12 лет", "ru") == WordErrors(1, 3)  # the case differs: one word
    assert word_errors("one two three", "one three", "en") == WordErrors(1, 3)
    assert word_errors("one two", "one two three four", "en").rate == 1.0
    assert set_error_rate([WordErrors(1, 4), WordErrors(0, 6)]) == 0.1
    with pytest.raises(ValueError, match="en, ru"):
        normalized_words("hola", "es")


def test_the_fixture_holds_the_packages_current_references() -> None:
    """tests/support/real_transcripts.json (written by the bench) still matches what the packages say."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    rows = fixture["clips"]
    assert {r["language"] for r in rows} == {"en", "ru"} and len(rows) >= 100
    for row in rows:
        source = next(s for s in real_speech.SOURCES if s.name == row["source"])
        if real_speech.missing_sources((source,)):
            continue
        assert real_speech.clip_by_id(row["id"]).reference == row["reference"], row["id"]
    assert {d["id"] for d in fixture["dictations"]} == {d.dictation_id for d in real_speech.DICTATIONS}


# --- whisper-base on real speech over the phone band -------------------------------------------

# Measured on these clips (the first ``count`` of ``utterances`` spread evenly; A-law, the product's
# decoding) on a 2-core AMD EPYC: English 0.0% of 60 words, Asterisk Russian 27.8% of 54, festvox
# Russian 21.7% of 69. Each bound is that plus about 10-13 points, for another CPU's int8 kernels.
WER_BOUNDS = {
    ("asterisk-en", 8): 0.10,
    ("asterisk-ru", 8): 0.40,
    ("festvox-ru", 5): 0.35,
}


@pytest.fixture(scope="module")
def whisper(models_dir: Path) -> Iterator[SttEngine]:
    stt = whisper_base_engine(models_dir)
    asyncio.run(stt.start())
    yield stt
    asyncio.run(stt.close())


@pytest.mark.slow
@pytest.mark.parametrize(("source_name", "count"), list(WER_BOUNDS), ids=lambda v: str(v))
async def test_whisper_base_on_real_speech_at_8_khz_stays_under_the_measured_wer(
    whisper: SttEngine, source_name: str, count: int
) -> None:
    source = installed(next(s for s in real_speech.SOURCES if s.name == source_name))
    counts: list[WordErrors] = []
    heard: list[str] = []
    for clip in real_speech.utterances(source, count):
        pcm, rate = real_speech.load_audio(clip)
        final, _ = await hear(whisper, phone_call(pcm, rate, "alaw"), clip.language)
        assert final.language == clip.language
        counts.append(word_errors(clip.reference, final.text, clip.language))
        heard.append(f"{clip.clip_id}: {final.text!r} ({counts[-1].rate:.0%})")
    wer = set_error_rate(counts)
    assert wer <= WER_BOUNDS[(source_name, count)], "\n".join([f"WER {wer:.1%}", *heard])
