"""Intelligibility of a TTS voice over the phone: speech -> 8 kHz A-law line -> 16 kHz -> whisper-base -> WER.

The path is the box's own: ``StreamResampler`` to ``LINE_RATE``, the A-law
``LineCodec`` there and back (what the SIM7600 line carries), ``StreamResampler``
up to ``ENGINE_RATE`` for faster-whisper (the packaged whisper-base, int8, greedy).
``wer`` counts words of any script (Cyrillic too: ``speech_samples.words`` is
Latin only), with "ё" read as "е" and punctuation dropped. Used by
``tests/engines/test_tts_rhvoice_roundtrip.py`` and ``bench/tts_voices.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from drivers.audio import ENGINE_RATE, LINE_RATE, LineCodec, StreamResampler

RUSSIAN_SENTENCES = (
    "Здравствуйте, вы позвонили в офис Алекса Моргана.",
    "Алекс сейчас занят, но я могу передать ему сообщение.",
    "Как вас зовут и по какому вопросу вы звоните?",
    "Спасибо, я обязательно передам ваше сообщение.",
    "Он перезвонит вам завтра утром.",
)


def words(text: str) -> list[str]:
    """Lower-case words of any script, "ё" as "е", without punctuation."""
    return re.findall(r"\w+", text.lower().replace("ё", "е"))


def wer(reference: str, hypothesis: str) -> float:
    """Word-level edit distance divided by the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def over_the_phone(samples: np.ndarray, rate: int) -> np.ndarray:
    """int16 speech at ``rate`` as whisper hears it after an A-law 8 kHz line: float32 at ``ENGINE_RATE``."""
    down = StreamResampler(rate, LINE_RATE)
    line = np.concatenate([down.process(samples), down.flush()])
    pcm = np.clip(np.rint(line * 32768.0), -32768, 32767).astype(np.int16)
    heard = LineCodec.ALAW.decode(LineCodec.ALAW.encode(pcm))
    up = StreamResampler(LINE_RATE, ENGINE_RATE)
    return np.concatenate([up.process(heard), up.flush()]).astype(np.float32)


def load_whisper_base(models_dir: Path) -> Any:
    """The packaged whisper-base as a faster-whisper model (CPU, int8)."""
    from faster_whisper import WhisperModel

    from engines.stt.packaged_whisper import ensure_whisper_base

    return WhisperModel(str(ensure_whisper_base(models_dir)), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(model: Any, audio: np.ndarray, language: str) -> str:
    segments, _ = model.transcribe(audio, language=language, temperature=0.0, beam_size=1, vad_filter=False)
    return " ".join(s.text.strip() for s in segments)
