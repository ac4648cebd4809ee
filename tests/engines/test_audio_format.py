"""The engines' one audio format: every int16 sample maps to float32 s / 32768 and back, exactly."""

from __future__ import annotations

import numpy as np

from engines.audio_format import from_int16, to_int16


def test_every_int16_sample_maps_exactly_and_back() -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    samples = from_int16(pcm)
    # bit-identical to what Silero and whisper computed from int16 themselves before the boundary moved
    assert np.array_equal(samples, pcm.astype(np.float32) / 32768.0)
    assert np.array_equal(to_int16(samples), pcm)  # WebRTC VAD and Vosk get the bytes they got before
