"""The bundled caller recordings: manifest, files, WAV format, levels and durations."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config.engines_schema import RhvoiceConfig
from daemon.tools.demo_caller import LANGUAGES, RECORDINGS_DIR, CallerLine, caller_script, caller_voice

LINE_RATE = 8_000
MAX_TOTAL_BYTES = 640 * 1024  # about 40 s of 8 kHz PCM16: RHVoice's Russian caller speaks at a human pace


def samples_of(path: Path) -> tuple[np.ndarray, Any]:
    """(int16 samples, ``wave`` params) of a WAV."""
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), params


@pytest.mark.parametrize("language", LANGUAGES)
def test_script_lists_four_lines_in_order(language: str) -> None:
    lines = caller_script(language)
    assert len(lines) == 4
    assert all(isinstance(line, CallerLine) for line in lines)
    assert [line.wav.name for line in lines] == sorted(line.wav.name for line in lines)
    manifest = json.loads((RECORDINGS_DIR / language / "script.json").read_text(encoding="utf-8"))
    assert manifest["language"] == language
    assert manifest["sample_rate"] == LINE_RATE


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_are_non_empty_sentences(language: str) -> None:
    for line in caller_script(language):
        assert line.text.strip() == line.text and len(line.text.split()) >= 3
        assert line.text[-1] in ".?!"


@pytest.mark.parametrize("language", LANGUAGES)
def test_recordings_are_8khz_mono_pcm16_of_the_stated_length(language: str) -> None:
    for line in caller_script(language):
        assert line.wav.is_file(), line.wav
        samples, params = samples_of(line.wav)
        assert (params.nchannels, params.sampwidth, params.framerate, params.comptype) == (1, 2, LINE_RATE, "NONE")
        assert params.nframes / LINE_RATE == pytest.approx(line.seconds, abs=0.001)
        assert 1.0 < line.seconds < 8.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_recordings_peak_near_minus_3_dbfs_with_silence_around(language: str) -> None:
    pad = round(0.2 * LINE_RATE)
    for line in caller_script(language):
        samples, _ = samples_of(line.wav)
        peak_dbfs = 20 * np.log10(np.max(np.abs(samples.astype(np.int32))) / 32768)
        assert peak_dbfs == pytest.approx(-3.0, abs=0.5)
        assert not samples[:pad].any() and not samples[-pad:].any()
        assert np.abs(samples[pad : pad + LINE_RATE // 2]).max() > 0  # speech starts right after the pad


def test_long_line_is_long_enough_to_barge_in_on() -> None:
    for language in LANGUAGES:
        assert max(line.seconds for line in caller_script(language)) >= 4.0


def test_english_phone_number_is_spoken_in_words() -> None:
    number_line = caller_script("en")[1].text
    assert "five five five" in number_line and not any(ch.isdigit() for ch in number_line)


def test_russian_phone_number_is_dictated_in_words_with_pauses() -> None:
    number_line = caller_script("ru")[1].text
    assert "восемь, девятьсот шестнадцать," in number_line and not any(ch.isdigit() for ch in number_line)


def test_russian_caller_is_rhvoice_aleksandr_not_the_secretarys_voice() -> None:
    voice = caller_voice("ru")
    assert voice.startswith("RHVoice aleksandr ")
    assert RhvoiceConfig().voices["ru"] == "irina"  # the secretary's Russian voice: a woman's, not the caller's


def test_bundle_stays_small() -> None:
    total = sum(path.stat().st_size for path in RECORDINGS_DIR.glob("*/*") if path.is_file())
    assert total < MAX_TOTAL_BYTES


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="de"):
        caller_script("de")
    with pytest.raises(ValueError, match="de"):
        caller_voice("de")
