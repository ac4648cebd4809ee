"""Voice samples: upload checks and the on-disk library."""

from __future__ import annotations

import io
import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from daemon.voices.samples import (
    MAX_UPLOAD_BYTES,
    SampleCheck,
    SampleRejected,
    VoiceLibrary,
    check_sample,
    display_name,
)


def voiced(rate: int = 22050, seconds: float = 5.0, dbfs: float = -20.0) -> np.ndarray:
    """A vowel-ish signal: harmonics of 150 Hz under a 4 Hz syllable envelope, scaled to ``dbfs`` RMS."""
    t = np.arange(round(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 9))
    x = x * (0.2 + 0.8 * np.sin(np.pi * 4 * t) ** 2)
    return x * (10 ** (dbfs / 20) / np.sqrt(np.mean(x**2)))


def riff(fmt_body: bytes, payload: bytes) -> bytes:
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt_chunk(tag: int, channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def wav16(x: np.ndarray, rate: int = 22050) -> bytes:
    """PCM16 via the stdlib writer; ``x`` is (n,) or (n, channels) floats in [-1, 1]."""
    frames = x.reshape(len(x), -1)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.rint(frames * 32768), -32768, 32767).astype("<i2").tobytes())
    return out.getvalue()


def wav24(x: np.ndarray, rate: int = 22050) -> bytes:
    ints = np.clip(np.rint(x * 8388608), -8388608, 8388607).astype("<i4")
    payload = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return riff(fmt_chunk(1, 1, rate, 24), payload)


def wav_float(x: np.ndarray, rate: int = 22050, extensible: bool = False) -> bytes:
    payload = x.astype("<f4").tobytes()
    if not extensible:
        return riff(fmt_chunk(3, 1, rate, 32), payload)
    guid = struct.pack("<H", 3) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    body = fmt_chunk(0xFFFE, 1, rate, 32) + struct.pack("<HHI", 22, 32, 4) + guid
    return riff(body, payload)


def only_problem(check: SampleCheck) -> str:
    assert not check.ok
    assert len(check.problems) == 1, check.problems
    return check.problems[0]


# -- check_sample ----------------------------------------------------------------------


def test_clean_voiced_sample_is_ok() -> None:
    check = check_sample(wav16(voiced()))
    assert check.ok, check.problems
    assert check.problems == ()
    assert check.duration_s == pytest.approx(5.0)
    assert (check.sample_rate, check.channels) == (22050, 1)
    assert check.rms_dbfs == pytest.approx(-20.0, abs=0.1)
    assert -20.0 < check.peak_dbfs < 0.0
    assert check.clipped_ratio == 0.0


def test_stereo_48k_is_ok() -> None:
    x = voiced(48000)
    check = check_sample(wav16(np.stack([x, 0.5 * x], axis=1), 48000))
    assert check.ok, check.problems
    assert (check.sample_rate, check.channels) == (48000, 2)


@pytest.mark.parametrize("make", [wav24, wav_float, lambda x: wav_float(x, extensible=True)],
                         ids=["pcm24", "float32", "float32-extensible"])
def test_24_bit_and_float_are_accepted(make) -> None:
    check = check_sample(make(voiced()))
    assert check.ok, check.problems
    assert check.duration_s == pytest.approx(5.0)
    assert check.rms_dbfs == pytest.approx(-20.0, abs=0.1)


def test_too_short() -> None:
    assert only_problem(check_sample(wav16(voiced(seconds=1.2)))) == (
        "the file is 1.2 s long; record 3 to 30 seconds of speech"
    )


def test_too_long() -> None:
    problem = only_problem(check_sample(wav16(voiced(16000, seconds=31.0), 16000)))
    assert problem == "the file is 31.0 s long; trim it to 3 to 30 seconds of speech"


def test_8_khz_is_refused() -> None:
    problem = only_problem(check_sample(wav16(voiced(8000), 8000)))
    assert problem.startswith("the sample rate is 8000 Hz; record at 16000 Hz or more")


def test_clipping_is_refused() -> None:
    x = np.clip(voiced(dbfs=-8.0) * 3.0, -1.0, 1.0)  # heavily overdriven, rms stays under -6 dBFS
    check = check_sample(wav16(x))
    assert check.clipped_ratio > 0.001
    assert any("% of the samples are clipped" in p for p in check.problems), check.problems


def test_a_few_clipped_samples_are_tolerated() -> None:
    x = voiced()
    x[:50] = 1.0  # 50 of 110250 samples: under 0.1 %
    check = check_sample(wav16(x))
    assert check.ok, check.problems
    assert 0 < check.clipped_ratio < 0.001


def test_too_quiet() -> None:
    problem = only_problem(check_sample(wav16(voiced(dbfs=-43.0))))
    assert problem.startswith("the recording is too quiet (-43.0 dBFS on average)")


def test_too_loud() -> None:
    x = np.sin(2 * np.pi * 150 * np.arange(5 * 22050) / 22050) * 0.9  # -3.9 dBFS, no clipping
    problem = only_problem(check_sample(wav16(x)))
    assert problem.startswith("the recording is too loud (-3.9 dBFS on average)")


def test_silence_is_refused_as_quiet_and_mostly_silent() -> None:
    check = check_sample(wav16(np.zeros(5 * 22050)))
    assert not check.ok
    assert check.rms_dbfs == -120.0 and check.peak_dbfs == -120.0
    assert len(check.problems) == 2
    assert check.problems[0].startswith("the recording is too quiet")
    assert check.problems[1].startswith("the recording is mostly silence (only 0.0 s is louder than -45 dBFS)")


def test_a_short_burst_in_silence_is_mostly_silence() -> None:
    x = np.zeros(10 * 22050)
    x[22050:22050 + 11025] = voiced(seconds=0.5, dbfs=-10.0)  # loud enough overall, but 0.5 s of sound
    check = check_sample(wav16(x))
    assert any(p.startswith("the recording is mostly silence (only 0.5 s") for p in check.problems), check.problems


@pytest.mark.parametrize(("data", "expected"), [
    (b"ID3\x04\x00\x00\x00\x00\x00\x21" + bytes(500), "not a WAV file: it looks like MP3 audio"),
    (b"\xff\xfb\x90\x64" + bytes(500), "not a WAV file: it looks like MP3 audio"),
    (bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), "not a WAV file: it does not start"),
    (b"", "not a WAV file: the file is empty"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "not a WAV file: it is a RIFF file of type 'AVI'"),
], ids=["id3", "mp3-frame", "random", "empty", "avi"])
def test_not_a_wav(data: bytes, expected: str) -> None:
    check = check_sample(data)
    assert only_problem(check).startswith(expected)
    assert (check.duration_s, check.sample_rate, check.channels) == (0.0, 0, 0)


@pytest.mark.parametrize("cut", [6, 20, 30, 40], ids=["in-riff", "fmt-id-only", "in-fmt", "in-data-header"])
def test_truncated_header(cut: int) -> None:
    problem = only_problem(check_sample(wav16(voiced())[:cut]))
    assert problem.startswith("the WAV file is damaged or cut short")


def test_truncated_audio_is_measured_as_what_is_there() -> None:
    data = wav16(voiced())[: 44 + 2 * 22050]  # header says 5 s, one second arrived
    assert only_problem(check_sample(data)) == "the file is 1.0 s long; record 3 to 30 seconds of speech"


def test_compressed_wav_is_refused() -> None:
    data = riff(struct.pack("<HHIIHH", 0x55, 1, 22050, 4000, 1, 0), bytes(20000))
    assert only_problem(check_sample(data)) == (
        "the WAV file holds compressed audio (MP3); save it as uncompressed 16-bit PCM WAV"
    )


@pytest.mark.parametrize(("tag", "bits", "expected"), [
    (1, 8, "the WAV file uses 8-bit PCM samples"),
    (1, 32, "the WAV file uses 32-bit PCM samples"),
    (3, 64, "the WAV file uses 64-bit float samples"),
])
def test_unsupported_sample_width(tag: int, bits: int, expected: str) -> None:
    data = riff(fmt_chunk(tag, 1, 22050, bits), bytes(22050 * bits // 8 * 5))
    assert only_problem(check_sample(data)).startswith(expected)


def test_oversized_is_a_problem_not_an_exception() -> None:
    data = wav16(voiced()) + bytes(MAX_UPLOAD_BYTES)
    assert only_problem(check_sample(data)).startswith("the file is 10.2 MB; the limit is 10 MB")


def test_every_problem_is_listed() -> None:
    check = check_sample(wav16(voiced(8000, seconds=1.5, dbfs=-50.0), 8000))
    assert not check.ok
    assert [p.split(" (")[0].split(";")[0] for p in check.problems] == [
        "the sample rate is 8000 Hz",
        "the file is 1.5 s long",
        "the recording is too quiet",
        "the recording is mostly silence",
    ]


def test_more_than_two_channels() -> None:
    x = voiced()
    check = check_sample(wav16(np.stack([x, x, x], axis=1)))
    assert only_problem(check) == "the file has 3 channels; save it as mono (or stereo)"


# -- VoiceLibrary ----------------------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> VoiceLibrary:
    return VoiceLibrary(tmp_path / "voices")


def test_add_stores_mono_pcm16_at_the_original_rate(library: VoiceLibrary) -> None:
    x = voiced(48000)
    name, check = library.add("anna", wav16(np.stack([x, x], axis=1), 48000), "take one.wav")
    assert name == "01.wav" and check.ok
    with wave.open(str(library.sample_path("anna", name)), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 48000, len(x))
        stored = np.frombuffer(w.readframes(len(x)), "<i2") / 32768
    assert np.max(np.abs(stored - x)) < 2 / 32768


def test_add_converts_float_to_pcm16(library: VoiceLibrary) -> None:
    name, _ = library.add("anna", wav_float(voiced()))
    assert check_sample(library.sample_path("anna", name).read_bytes()).ok


def test_add_samples_delete_numbering(library: VoiceLibrary) -> None:
    data = wav16(voiced())
    assert [library.add("anna", data, f"t{i}.wav")[0] for i in range(3)] == ["01.wav", "02.wav", "03.wav"]
    infos = library.samples("anna")
    assert [i.name for i in infos] == ["01.wav", "02.wav", "03.wav"]
    assert [i.original_name for i in infos] == ["t0.wav", "t1.wav", "t2.wav"]
    assert all(i.duration_s == pytest.approx(5.0) and i.rms_dbfs == pytest.approx(-20.0, abs=0.1) for i in infos)
    assert all(i.added_at > 0 for i in infos)
    assert len(infos) >= VoiceLibrary.MIN_SAMPLES

    library.delete("anna", "02.wav")
    assert [i.name for i in library.samples("anna")] == ["01.wav", "03.wav"]
    assert library.add("anna", data)[0] == "04.wav"
    with pytest.raises(FileNotFoundError):
        library.delete("anna", "02.wav")
    assert library.voices() == ["anna"]
    assert library.samples("bob") == []


def test_rejected_add_raises_and_stores_nothing(library: VoiceLibrary) -> None:
    with pytest.raises(SampleRejected) as info:
        library.add("anna", wav16(voiced(seconds=1.0)))
    assert isinstance(info.value, ValueError)
    assert info.value.check.problems == ("the file is 1.0 s long; record 3 to 30 seconds of speech",)
    assert str(info.value) == info.value.check.problems[0]
    assert library.samples("anna") == [] and library.voices() == []


def test_voices_lists_only_voices_with_samples(library: VoiceLibrary) -> None:
    data = wav16(voiced())
    library.add("bob", data)
    library.add("anna", data)
    (library.root / "empty").mkdir()
    (library.root / "Not-A-Voice").mkdir()
    assert library.voices() == ["anna", "bob"]
    library.delete("bob", "01.wav")
    assert library.voices() == ["anna"]


def test_samples_survive_a_lost_sidecar(library: VoiceLibrary) -> None:
    library.add("anna", wav16(voiced()), "x.wav")
    (library.voice_dir("anna") / "samples.json").write_text("{not json")
    [info] = library.samples("anna")
    assert info.name == "01.wav" and info.original_name == ""
    assert info.duration_s == pytest.approx(5.0) and info.rms_dbfs == pytest.approx(-20.0, abs=0.1)


@pytest.mark.parametrize("name", [
    "../x.wav", "01.wav/../../etc", "/etc/passwd", "/tmp/01.wav", "1.wav", "0001.wav", "01.WAV", "01.wav\n",
    "ab.wav", "01.mp3", "", "..", "\u0661\u0662.wav",
])
def test_sample_path_refuses_bad_names(library: VoiceLibrary, name: str) -> None:
    library.add("anna", wav16(voiced()))
    with pytest.raises(ValueError):
        library.sample_path("anna", name)
    with pytest.raises(ValueError):
        library.delete("anna", name)


@pytest.mark.parametrize("voice", ["", "Anna", "1anna", "../anna", "anna/..", "a" * 33, "an na", "anna\n", "."])
def test_bad_voice_names(library: VoiceLibrary, voice: str) -> None:
    with pytest.raises(ValueError):
        library.voice_dir(voice)
    with pytest.raises(ValueError):
        library.sample_path(voice, "01.wav")
    with pytest.raises(ValueError):
        library.add(voice, wav16(voiced()))


def test_sample_path_of_a_missing_sample(library: VoiceLibrary) -> None:
    with pytest.raises(FileNotFoundError):
        library.sample_path("anna", "01.wav")


def test_sample_path_refuses_a_symlink_out_of_the_library(library: VoiceLibrary, tmp_path: Path) -> None:
    library.add("anna", wav16(voiced()))
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"secret")
    (library.voice_dir("anna") / "02.wav").symlink_to(outside)
    with pytest.raises(ValueError):
        library.sample_path("anna", "02.wav")
    assert [i.name for i in library.samples("anna")] == ["01.wav"]


def test_original_name_is_sanitised_and_never_a_path(library: VoiceLibrary) -> None:
    name, _ = library.add("anna", wav16(voiced()), "../../etc/pa\x00ss<b>wd\u202e .wav ")
    assert name == "01.wav"
    assert sorted(p.name for p in library.voice_dir("anna").iterdir()) == ["01.wav", "samples.json"]
    [info] = library.samples("anna")
    assert info.original_name == "passbwd .wav"
    index = json.loads((library.voice_dir("anna") / "samples.json").read_text())
    assert index["01.wav"]["original_name"] == "passbwd .wav"


def test_display_name() -> None:
    assert display_name("C:\\Users\\me\\My  Voice.wav") == "My Voice.wav"
    assert display_name("..") == ""
    assert display_name("x" * 300) == "x" * 100
