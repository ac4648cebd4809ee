"""The line hands VAD and STT their one format: float32 at the engine rate, never converted back to int16 on the way.

``drivers`` and ``engines`` may not import each other, so each names the
engine rate and the int16 scale for itself; this is where the daemon checks
that the two agree and that the line's caller audio passes the engines' own check.
"""

from __future__ import annotations

import numpy as np

from channels.bus_contract.verbs import CHAT_AUDIO_RATE
from drivers.audio import ENGINE_RATE, LINE_RATE, LineCapture, LineCodec
from drivers.audio.pcm import PCM16_SCALE
from engines import audio_format


def test_the_line_and_the_engines_name_the_same_rate_and_scale() -> None:
    assert ENGINE_RATE == audio_format.SAMPLE_RATE
    assert PCM16_SCALE == audio_format.PCM16_SCALE
    assert CHAT_AUDIO_RATE == ENGINE_RATE  # cmd/chat's audio_file goes to the STT as it is


def test_caller_audio_reaches_the_engines_as_float32_at_their_rate() -> None:
    capture = LineCapture(LineCodec.PCM16)
    tone = (np.sin(2 * np.pi * 440 * np.arange(LINE_RATE) / LINE_RATE) * 8000).astype(np.int16)
    out = [capture.feed(LineCodec.PCM16.encode(tone[i:i + 160])) for i in range(0, tone.size, 160)]
    out.append(capture.flush())
    audio = np.concatenate(out)
    assert audio_format.checked(audio, "STT") is audio  # the engines' own test of the format, passed as it stands
    assert abs(audio.size - ENGINE_RATE) <= 2  # one second of line audio is one second at the engine rate
    assert 0.2 < float(np.abs(audio).max()) < 0.3  # 8000 / 32768: the same scale, no int16 round trip
