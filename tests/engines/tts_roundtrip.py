"""Intelligibility of a TTS voice over the phone: speech -> 8 kHz A-law line -> 16 kHz -> whisper-base -> WER.

The path is the box's own: to ``LINE_RATE``, A-law there and back (what the
SIM7600 line carries), up to ``ENGINE_RATE`` for faster-whisper (the packaged
whisper-base, int8, greedy).
The line is ``tests/support/phone_band.phone_call`` and the WER
``tests/support/word_error.word_errors`` (one home each). Used by
``tests/engines/test_tts_rhvoice_roundtrip.py`` and ``bench/tts_voices.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

RUSSIAN_SENTENCES = (
    "Здравствуйте, вы позвонили в офис Алекса Моргана.",
    "Алекс сейчас занят, но я могу передать ему сообщение.",
    "Как вас зовут и по какому вопросу вы звоните?",
    "Спасибо, я обязательно передам ваше сообщение.",
    "Он перезвонит вам завтра утром.",
)


def load_whisper_base(models_dir: Path) -> Any:
    """The packaged whisper-base as a faster-whisper model (CPU, int8)."""
    from faster_whisper import WhisperModel

    from engines.stt.packaged_whisper import ensure_whisper_base

    return WhisperModel(str(ensure_whisper_base(models_dir)), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(model: Any, audio: np.ndarray, language: str) -> str:
    segments, _ = model.transcribe(audio, language=language, temperature=0.0, beam_size=1, vad_filter=False)
    return " ".join(s.text.strip() for s in segments)
