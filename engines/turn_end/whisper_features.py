"""The Whisper log-mel features Smart Turn v3 reads, from faster-whisper's own feature extractor.

Smart Turn v3 is a Whisper-encoder classifier: it reads the 80-bin log-mel
spectrogram of exactly 8 s at 16 kHz (800 frames of 10 ms), the audio
zero-mean unit-variance normalised first (``do_normalize`` of the reference
``WhisperFeatureExtractor``), shorter audio zero-padded at the START so the
words sit at the end of the window where the model expects the pause.
faster-whisper's ``FeatureExtractor`` computes the same spectrogram (same
Slaney mel bank, periodic Hann window, centred reflect-padded STFT, last frame
dropped, log10 clamped to max-8, (x+4)/4); compared on the bundled caller
lines with the reference implementation shipped beside the model, the
features differ by < 1e-5 and the model's outputs agree to 3 decimals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.audio_format import DTYPE, SAMPLE_RATE, Samples

N_MELS = 80
WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE
FRAMES = WINDOW_SAMPLES // 160  # 10 ms hops
_NORM_EPS = 1e-7


def last_window(audio: Samples) -> Samples:
    """The last ``WINDOW_S`` seconds of ``audio``, zero-padded at the start to exactly that length."""
    if audio.size >= WINDOW_SAMPLES:
        return audio[-WINDOW_SAMPLES:]
    return np.concatenate((np.zeros(WINDOW_SAMPLES - audio.size, dtype=DTYPE), audio))


class LogMel:
    """Whisper log-mel features of an 8 s window: ``(N_MELS, FRAMES)`` float32."""

    def __init__(self) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor  # heavy import: at load, in a thread

        self._extractor: Any = FeatureExtractor(feature_size=N_MELS, sampling_rate=SAMPLE_RATE, chunk_length=WINDOW_S)

    def __call__(self, audio: Samples) -> np.ndarray:
        window = last_window(audio).astype(np.float32)
        normalised = (window - window.mean()) / np.sqrt(window.var() + _NORM_EPS)
        features = self._extractor(normalised, padding=0)
        if features.shape != (N_MELS, FRAMES):
            raise ValueError(f"log-mel features came out {features.shape}, the model reads {(N_MELS, FRAMES)}")
        return np.asarray(features, dtype=np.float32)
