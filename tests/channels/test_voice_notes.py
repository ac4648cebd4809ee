"""Voice notes: call-record WAVs become OGG/Opus that Telegram plays; voice notes decode back to PCM."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from channels.telegram.voice_notes import (
    VOICE_NOTE_RATE,
    VoiceNoteError,
    pcm_to_voice_note,
    voice_note_to_pcm,
    wav_to_voice_note,
)


def speech_like(rate: int, seconds: float, tone_hz: float = 440.0) -> np.ndarray:
    """A tone with a 4 Hz syllable-like envelope and a little noise, int16."""
    t = np.arange(int(rate * seconds)) / rate
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    noise = np.random.default_rng(3).standard_normal(t.size) * 0.01
    return ((0.5 * envelope * np.sin(2 * np.pi * tone_hz * t) + noise) * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


def test_call_record_wav_becomes_an_ogg_opus_voice_note(tmp_path: Path) -> None:
    original = speech_like(8000, 2.0)
    data, duration = wav_to_voice_note(write_wav(tmp_path / "caller.wav", original, 8000))

    assert data.startswith(b"OggS") and b"OpusHead" in data
    assert duration == pytest.approx(2.0)
    assert len(data) < 16_000  # ~24 kbit/s, not raw PCM (32 kB)
    with av.open(io.BytesIO(data)) as container:
        [stream] = container.streams.audio
        assert stream.codec_context.name == "opus"
        assert stream.rate == VOICE_NOTE_RATE and stream.codec_context.layout.nb_channels == 1

    decoded = voice_note_to_pcm(data, rate=16000)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size - 32000) <= 160  # 10 ms
    assert dominant_hz(decoded, 16000) == pytest.approx(440.0, abs=2.0)

    # the waveform survives: correlate with the original upsampled to 16 kHz (codec delay allowed for)
    reference = np.interp(np.arange(32000) / 16000, np.arange(original.size) / 8000, original / 32768.0)
    n = min(reference.size, decoded.size)
    best = max(
        float(np.corrcoef(reference[lag : n], decoded[: n - lag])[0, 1]) for lag in range(0, 200)
    )
    assert best > 0.9


def test_pcm_float_and_int16_inputs(tmp_path: Path) -> None:
    as_int16 = speech_like(16000, 1.0, tone_hz=300.0)
    as_float = as_int16.astype(np.float32) / 32768.0
    for samples in (as_int16, as_float, as_float.astype(np.float64)):
        data, duration = pcm_to_voice_note(samples, 16000)
        assert data.startswith(b"OggS") and duration == pytest.approx(1.0)
        decoded = voice_note_to_pcm(data, rate=8000)
        assert abs(decoded.size - 8000) <= 80
        assert dominant_hz(decoded, 8000) == pytest.approx(300.0, abs=3.0)
    loud = np.full(4800, 3.0, dtype=np.float32)  # out of range and non-finite values are clipped, not rejected
    loud[10] = np.nan
    data, _ = pcm_to_voice_note(loud, 48000)
    assert np.abs(voice_note_to_pcm(data, 48000)).max() <= 1.5


def test_decodes_other_containers(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "x.wav", speech_like(8000, 0.5), 8000)
    decoded = voice_note_to_pcm(wav.read_bytes(), rate=16000)
    assert decoded.size == 8000
    assert dominant_hz(decoded, 16000) == pytest.approx(440.0, abs=4.0)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"not an audio file at all " * 100, bytes(range(256)) * 20, b"OggS" + b"\0" * 100],
)
def test_garbage_is_not_audio(data: bytes) -> None:
    with pytest.raises(VoiceNoteError, match="not an audio file"):
        voice_note_to_pcm(data)


def test_bad_inputs_raise_voice_note_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(VoiceNoteError, match="not an audio file"):
        wav_to_voice_note(junk)
    stereo = write_wav(tmp_path / "stereo.wav", np.zeros(1600, dtype=np.int16), 8000, channels=2)
    with pytest.raises(VoiceNoteError):
        wav_to_voice_note(stereo)
    eight_bit = write_wav(tmp_path / "u8.wav", np.full(800, 128, dtype=np.uint8), 8000, width=1)
    with pytest.raises(VoiceNoteError):
        wav_to_voice_note(eight_bit)
    with pytest.raises(VoiceNoteError, match="no samples"):
        pcm_to_voice_note(np.zeros(0, dtype=np.int16), 8000)
    with pytest.raises(VoiceNoteError):
        pcm_to_voice_note(np.zeros((2, 100), dtype=np.int16), 8000)
    with pytest.raises(VoiceNoteError):
        pcm_to_voice_note(np.zeros(100, dtype=np.int32), 8000)
    assert issubclass(VoiceNoteError, ValueError)
    with pytest.raises(FileNotFoundError):
        wav_to_voice_note(tmp_path / "missing.wav")
