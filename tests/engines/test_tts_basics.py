"""TTS building blocks: request/chunk types, sentence splitting, intonation presets, settings, WAV parsing, factory."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from engines.tts.backend_factory import build_tts_backend
from engines.tts.espeak_backend import EspeakBackend
from engines.tts.interface import AudioChunk, SynthesisRequest
from engines.tts.intonation_presets import BUILTIN_PRESETS, IntonationPreset, PresetBook, PresetError, UnknownPreset
from engines.tts.piper_backend import PiperBackend
from engines.tts.sentences import split_sentences
from engines.tts.settings import EspeakSettings, PiperSettings, SettingsError, WorkerSettings, XttsSettings
from engines.tts.wav_bytes import WavError, parse_wav_pcm16
from engines.tts.worker_client import WorkerTtsBackend
from engines.tts.xtts_backend import XttsBackend


def test_request_and_chunk_validate_and_round_trip() -> None:
    request = SynthesisRequest("Hello.", "ru", voice="anna", preset="calm")
    assert SynthesisRequest.from_json(request.as_json()) == request
    with pytest.raises(ValueError, match="language"):
        SynthesisRequest("x", "")
    with pytest.raises(ValueError, match="unknown synthesis request fields"):
        SynthesisRequest.from_json({"text": "x", "language": "en", "speed": 2})
    chunk = AudioChunk(np.zeros(11025, dtype=np.int16), 22050, "Hi.")
    assert chunk.duration_s == pytest.approx(0.5)
    with pytest.raises(ValueError, match="int16"):
        AudioChunk(np.zeros(10, dtype=np.float32), 22050)
    with pytest.raises(ValueError, match="sample_rate"):
        AudioChunk(np.zeros(10, dtype=np.int16), 0)
    clipped = AudioChunk.from_float(np.array([0.0, 0.5, 2.0, -2.0]), 16000)
    assert clipped.samples.tolist() == [0, 16384, 32767, -32767]


def test_sentence_splitting() -> None:
    assert split_sentences("Hello there. How are you? Fine!") == ["Hello there.", "How are you?", "Fine!"]
    assert split_sentences("Он сказал: «Да.» Потом ушёл…  И всё") == ["Он сказал: «Да.»", "Потом ушёл…", "И всё"]
    assert split_sentences("Line one\nline two") == ["Line one", "line two"]
    assert split_sentences("Pi is 3.14 today.") == ["Pi is 3.14 today."]
    assert split_sentences(" ... ! ") == []
    long = "Это очень длинное предложение, в котором много слов, запятых и частей; его нужно разрезать на куски."
    pieces = split_sentences(long, max_chars=40)
    assert all(len(p) <= 40 for p in pieces) and " ".join(pieces) == long
    assert pieces[0].endswith(",")  # cut at a comma, not mid-phrase


def test_builtin_presets_and_lookup() -> None:
    assert set(BUILTIN_PRESETS) == {"warm", "calm", "energetic", "natural", "neutral"}
    book = PresetBook()
    assert book.get(None).name == "natural"
    calm, energetic = book.get("calm"), book.get("energetic")
    assert calm.speed < 1.0 < energetic.speed and calm.temperature < energetic.temperature
    assert calm.xtts_kwargs() == {
        "temperature": 0.55, "speed": 0.9, "repetition_penalty": 8.0, "top_k": 30, "top_p": 0.7, "length_penalty": 1.0,
    }
    with pytest.raises(UnknownPreset, match="unknown intonation preset 'cheerful'.*calm, energetic, natural, neutral, warm"):
        book.get("cheerful")


def test_presets_are_validated() -> None:
    with pytest.raises(PresetError, match="temperature=3.0 is outside"):
        IntonationPreset("hot", temperature=3.0, speed=1.0, repetition_penalty=5.0, top_k=50, top_p=0.8)
    with pytest.raises(PresetError, match="top_k must be an integer"):
        IntonationPreset("odd", temperature=0.7, speed=1.0, repetition_penalty=5.0, top_k=2.5, top_p=0.8)  # type: ignore[arg-type]
    with pytest.raises(PresetError, match="unknown settings \\['pitch'\\]"):
        PresetBook({"mine": {"pitch": 2}})
    with pytest.raises(PresetError, match="missing settings"):
        PresetBook({"mine": {"temperature": 0.6}})
    with pytest.raises(UnknownPreset, match="default preset 'loud'"):
        PresetBook(default="loud")
    book = PresetBook({"calm": {"speed": 0.8}, "sleepy": {**BUILTIN_PRESETS["calm"].xtts_kwargs(), "speed": 0.7}})
    assert book.get("calm").speed == 0.8 and book.get("calm").temperature == 0.55  # override keeps the rest
    assert book.get("sleepy").speed == 0.7 and "sleepy" in book


def test_settings_validate_with_field_names(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="piper.voices is empty"):
        PiperSettings(voices={})
    with pytest.raises(SettingsError, match="piper.length_scale"):
        PiperSettings(length_scale=0)
    with pytest.raises(SettingsError, match="espeak.rate_wpm"):
        EspeakSettings(rate_wpm=5)
    with pytest.raises(SettingsError, match="xtts.gpu_memory_fraction"):
        XttsSettings(gpu_memory_fraction=1.5)
    with pytest.raises(SettingsError, match="xtts.default_voice 'bob' is not one of"):
        XttsSettings(voices={"anna": ("a.wav",)}, default_voice="bob")
    with pytest.raises(SettingsError, match="worker.chunk_timeout_s"):
        WorkerSettings(chunk_timeout_s=-1)
    xtts = XttsSettings(voices={"anna": ("voices/anna", "/abs/b.wav")}).resolved(tmp_path)
    assert xtts.voices["anna"] == (str(tmp_path / "voices/anna"), "/abs/b.wav")
    assert xtts.model_dir == str(tmp_path / "xtts_v2") and xtts.voice == "anna"
    assert XttsSettings.from_json(xtts.as_json()) == XttsSettings(**{**xtts.__dict__, "worker": WorkerSettings()})
    piper = PiperSettings(voices={"en": "packaged:joe-us", "ru": "voices/ru.onnx"}).resolved(tmp_path)
    assert piper.voices == {"en": "packaged:joe-us", "ru": str(tmp_path / "voices/ru.onnx")}


def _wav(samples: np.ndarray, rate: int, channels: int = 1, data_size: int | None = None) -> bytes:
    pcm = samples.astype("<i2").tobytes()
    size = len(pcm) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + pcm


def test_wav_parsing_including_streaming_sizes() -> None:
    tone = (np.sin(np.arange(2205) / 5) * 8000).astype(np.int16)
    samples, rate = parse_wav_pcm16(_wav(tone, 22050, data_size=0x7FFFF000))  # espeak-ng --stdout placeholder
    assert rate == 22050 and np.array_equal(samples, tone)
    stereo = np.repeat(tone, 2)
    samples, _ = parse_wav_pcm16(_wav(stereo, 16000, channels=2))
    assert np.array_equal(samples, tone)
    with pytest.raises(WavError, match="not a RIFF"):
        parse_wav_pcm16(b"hello world, not audio")
    with pytest.raises(WavError, match="no data chunk"):
        parse_wav_pcm16(_wav(tone, 22050)[:36])


def test_factory_builds_each_kind_and_rejects_mismatches(tmp_path: Path) -> None:
    assert isinstance(build_tts_backend("piper", PiperSettings(), tmp_path), PiperBackend)
    worker = build_tts_backend("piper-worker", PiperSettings(), tmp_path)
    assert isinstance(worker, WorkerTtsBackend) and worker.name == "piper-worker" and worker.languages == {"en"}
    assert isinstance(build_tts_backend("espeak", EspeakSettings(), tmp_path), EspeakBackend)
    xtts = build_tts_backend("xtts", XttsSettings(), tmp_path)
    assert isinstance(xtts, XttsBackend) and xtts.languages == {"en", "ru"} and xtts.device == "cuda"
    with pytest.raises(ValueError, match="unknown TTS backend kind 'festival'"):
        build_tts_backend("festival", PiperSettings(), tmp_path)
    with pytest.raises(ValueError, match="'xtts' needs XttsSettings, got PiperSettings"):
        build_tts_backend("xtts", PiperSettings(), tmp_path)
