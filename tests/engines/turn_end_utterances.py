"""Caller utterances for the turn-end tests and ``bench/turn_end.py``: complete ones, and ones with a mid-sentence pause.

A ``TurnSample`` is 16 kHz float32 audio as the ears get it: quiet line noise,
the words, quiet noise after them. ``speech_end_s`` is where the last word
ends; ``pauses`` are the mid-sentence pauses made in it: a turn that ends
inside one (or anywhere before ``speech_end_s``) cuts the caller off.

The pause is made where the speaker already paused: the sentence is spoken
whole (so the words before the pause keep the prosody of an unfinished
sentence, as a person's do), the quiet gap nearest the split point is found
and widened to 400-900 ms of line noise. Speech comes from Piper (English,
the packaged voice, its random terms off), RHVoice (Russian, through
``engines.tts.rhvoice_backend``), the bundled caller recordings
(``daemon/tools/demo_caller``, 8 kHz) and real human speech from Debian's
packages (``tests/support/real_speech.py``, when installed).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivers.audio.wav_io import read_wav
from engines.audio_format import Pcm16, Samples, from_int16
from tests.engines.speech_samples import PIPER_RATE, padded, piper_speech, resample

RATE = 16_000
LEAD_S = 0.5
TAIL_S = 1.8  # longer than the longest wait for an unfinished turn (call.turn_end.max_silence_ms)
PAUSES_S = (0.4, 0.55, 0.7, 0.9)  # the mid-sentence pauses made, in turn
_FRAME = RATE // 100  # 10 ms
_LOUD_BELOW_PEAK_DB = 35.0
_MIN_GAP_S = 0.04
DEMO_DIR = Path(__file__).resolve().parents[2] / "daemon" / "tools" / "demo_caller"


@dataclass(frozen=True)
class TurnSample:
    name: str
    language: str
    source: str  # piper | rhvoice | demo-caller | real:<clip id>
    text: str  # "|" marks the mid-sentence pause
    audio: Samples
    speech_end_s: float
    pauses: tuple[tuple[float, float], ...] = ()  # (start, end) s of each pause made in the sentence

    @property
    def paused(self) -> bool:
        return bool(self.pauses)

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


# (words before the pause, words after it); "" after: a complete utterance with no pause made
ENGLISH: tuple[tuple[str, str], ...] = (
    ("My number is eight nine one six,", "one two three."),
    ("I'm calling about, um,", "the invoice from last month."),
    ("My name is, uh,", "John Peters."),
    ("Could you tell Alex that I,", "will be late tomorrow?"),
    ("The address is twelve,", "Baker Street."),
    ("I'm calling because,", "my order has not arrived yet."),
    ("Hi, this is John Peters.", ""),
    ("Please ask Alex to call me back.", ""),
    ("That's all, thank you.", ""),
    ("Yes, that's right.", ""),
    ("My number is eight nine one six one two three.", ""),
    ("I'm calling about the invoice.", ""),
)
RUSSIAN: tuple[tuple[str, str], ...] = (
    ("Мой номер восемь девять один шесть,", "один два три."),
    ("Я звоню по поводу, э-э,", "счёта за доставку."),
    ("Меня зовут,", "Иван Петров."),
    ("Передайте, пожалуйста, что я,", "задержусь завтра."),
    ("Адрес такой: улица,", "Ленина, дом пять."),
    ("Я хотел узнать,", "когда привезут заказ."),
    ("Здравствуйте, это Иван Петров.", ""),
    ("Перезвоните мне, пожалуйста.", ""),
    ("Да, всё верно.", ""),
    ("Спасибо, до свидания.", ""),
    ("Мой номер восемь девять один шесть один два три.", ""),
    ("Я звоню по поводу счёта.", ""),
)
# the bundled caller lines: (language, wav, the words before a pause made there; None: kept whole)
DEMO_PAUSES: tuple[tuple[str, str, str | None], ...] = (
    ("en", "02_phone_number.wav", "My number is five five five,"),
    ("en", "04_long_request.wav", "Sorry, one more thing:"),
    ("ru", "02_phone_number.wav", "Мой номер восемь девятьсот шестнадцать,"),
    ("ru", "04_long_request.wav", "Извините, ещё одно:"),
)


def loud_frames(audio: Samples) -> np.ndarray:
    """Per 10 ms frame: louder than ``_LOUD_BELOW_PEAK_DB`` under the loudest frame."""
    n = len(audio) // _FRAME
    rms = np.sqrt(np.mean(audio[: n * _FRAME].astype(np.float64).reshape(n, _FRAME) ** 2, axis=1))
    return rms > rms.max() * 10 ** (-_LOUD_BELOW_PEAK_DB / 20)


def trimmed(audio: Samples) -> Samples:
    """``audio`` from its first to its last loud frame."""
    loud = np.flatnonzero(loud_frames(audio))
    return audio[loud[0] * _FRAME : (loud[-1] + 1) * _FRAME]


def gaps(audio: Samples) -> list[tuple[int, int]]:
    """The quiet runs (sample start, end) of at least ``_MIN_GAP_S`` between loud frames."""
    loud = loud_frames(audio)
    found: list[tuple[int, int]] = []
    start: int | None = None
    for index, is_loud in enumerate(loud):
        if not is_loud and start is None:
            start = index
        elif is_loud and start is not None:
            if start > 0 and (index - start) * _FRAME >= _MIN_GAP_S * RATE:
                found.append((start * _FRAME, index * _FRAME))
            start = None
    return found


def with_pause(speech: Samples, near_s: float, pause_s: float) -> tuple[Samples, tuple[float, float]] | None:
    """``speech`` (trimmed) with the quiet gap nearest ``near_s`` made ``pause_s`` of silence; None: no gap there."""
    candidates = [g for g in gaps(speech) if 0.15 * len(speech) < g[0] < 0.85 * len(speech)]
    if not candidates:
        return None
    start, end = min(candidates, key=lambda g: abs((g[0] + g[1]) / 2 / RATE - near_s))
    silence = np.zeros(round(pause_s * RATE), dtype=np.float32)
    return np.concatenate((speech[:start], silence, speech[end:])), (start / RATE, start / RATE + pause_s)


def sample(name: str, language: str, source: str, text: str, speech: Samples, split: str | None,
           pause_s: float, seed: int) -> TurnSample | None:
    """A ``TurnSample`` of ``speech`` (16 kHz), paused after the words ``split`` (None: whole)."""
    words = trimmed(speech)
    pauses: tuple[tuple[float, float], ...] = ()
    label = text
    if split:
        fraction = len(split) / max(1, len(text))
        made = with_pause(words, fraction * len(words) / RATE, pause_s)
        if made is None:
            return None
        words, pause = made
        pauses = ((LEAD_S + pause[0], LEAD_S + pause[1]),)
        label = f"{split} | {text[len(split):].strip()}" if text.startswith(split) else f"{text} (paused)"
    audio = padded(words, RATE, LEAD_S, TAIL_S, seed=seed)
    return TurnSample(name, language, source, label, audio, LEAD_S + len(words) / RATE, pauses)


@functools.cache
def piper_16k(text: str) -> Samples:
    return from_int16(resample(piper_speech(text), PIPER_RATE, RATE))


def english_samples() -> list[TurnSample]:
    """Piper's English: the paused sentences of ``ENGLISH`` and the complete ones."""
    found: list[TurnSample] = []
    for index, (before, after) in enumerate(ENGLISH):
        text = f"{before} {after}".strip()
        made = sample(f"piper-en-{index + 1:02}", "en", "piper", text, piper_16k(text), before if after else None,
                      PAUSES_S[index % len(PAUSES_S)], seed=index + 1)
        if made is not None:
            found.append(made)
    return found


async def russian_samples() -> list[TurnSample]:
    """RHVoice's Russian (the box's Russian voice): the paused sentences of ``RUSSIAN`` and the complete ones."""
    from engines.tts.interface import SynthesisRequest
    from engines.tts.rhvoice_backend import RhvoiceBackend
    from engines.tts.settings import RhvoiceSettings

    backend = RhvoiceBackend(RhvoiceSettings())
    await backend.load()
    found: list[TurnSample] = []
    try:
        for index, (before, after) in enumerate(RUSSIAN):
            text = f"{before} {after}".strip()
            parts: list[Pcm16] = []
            rate = RATE
            async for chunk in backend.synthesize(SynthesisRequest(text=text, language="ru")):
                parts.append(np.asarray(chunk.samples))
                rate = chunk.sample_rate
            pcm = np.concatenate(parts)
            speech = from_int16(resample(pcm.astype(np.int16), rate, RATE)) if pcm.dtype == np.int16 else pcm
            made = sample(f"rhvoice-ru-{index + 1:02}", "ru", "rhvoice", text, speech.astype(np.float32),
                          before if after else None, PAUSES_S[index % len(PAUSES_S)], seed=100 + index)
            if made is not None:
                found.append(made)
    finally:
        await backend.close()
    return found


def demo_samples() -> list[TurnSample]:
    """The bundled caller lines (8 kHz, as on the line) whole, and paused where ``DEMO_PAUSES`` says."""
    found: list[TurnSample] = []
    paused = {(language, wav): split for language, wav, split in DEMO_PAUSES}
    for language in ("en", "ru"):
        script = json.loads((DEMO_DIR / language / "script.json").read_text())
        for index, line in enumerate(script["lines"]):
            pcm, rate = read_wav(DEMO_DIR / language / line["wav"])
            speech = from_int16(resample(pcm, rate, RATE))
            name = f"demo-{language}-{line['wav'].removesuffix('.wav')}"
            whole = sample(name, language, "demo-caller", line["text"], speech, None, 0.0, seed=200 + index)
            found += [whole] if whole is not None else []
            split = paused.get((language, line["wav"]))
            if split:
                made = sample(f"{name}-paused", language, "demo-caller", line["text"], speech, split,
                              PAUSES_S[(index + len(found)) % len(PAUSES_S)], seed=300 + index)
                found += [made] if made is not None else []
    return found


def real_samples(per_source: int = 4) -> tuple[list[TurnSample], str]:
    """Real human speech (Debian's recordings), each clip whole and paused mid-way; ("", why) when not installed."""
    from tests.support import real_speech

    missing = real_speech.missing_sources()
    found: list[TurnSample] = []
    for source in real_speech.SOURCES:
        if source.name in missing:
            continue
        clips = [c for c in real_speech.utterances(source) if c.words >= 6]
        step = max(1, len(clips) // per_source)
        for index, clip in enumerate(clips[::step][:per_source]):
            pcm, rate = real_speech.load_audio(clip)
            speech = from_int16(resample(pcm, rate, RATE))
            name = f"real-{clip.clip_id}"
            whole = sample(name, clip.language, f"real:{clip.clip_id}", clip.reference, speech, None, 0.0, seed=400 + index)
            found += [whole] if whole is not None else []
            words = clip.reference.split()
            split = " ".join(words[: len(words) // 2])
            made = sample(f"{name}-paused", clip.language, f"real:{clip.clip_id}", clip.reference, speech, split,
                          PAUSES_S[index % len(PAUSES_S)], seed=500 + index)
            found += [made] if made is not None else []
    why = "; ".join(f"{name}: {reason}" for name, reason in missing.items())
    return found, why
