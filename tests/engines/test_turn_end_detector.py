"""What the turn end needs of the speech detector: end an utterance now, and a longer silence window.

Real Silero on Piper speech with line noise, fed in 20 ms pieces.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.vad.interface import VadBackend
from engines.vad.speech_detector import DetectorSettings, SpeechDetector, SpeechEnded, SpeechStarted
from tests.engines import speech_samples as samples

RATE = 16_000
CHUNK = 320



def audio() -> tuple[np.ndarray, float]:
    clean = samples.speech("Please call me back tomorrow.", RATE)
    _, offset = samples.speech_bounds(clean, RATE)
    return samples.padded(clean, RATE, 0.5, 1.5), 0.5 + offset


def test_end_now_closes_the_utterance_at_its_last_voiced_frame(silero: VadBackend) -> None:
    line, speech_end = audio()
    detector = SpeechDetector(silero.open(RATE), DetectorSettings(min_silence_ms=550, speech_pad_ms=100))
    events = []
    at = 0
    while not (detector.in_speech and detector.quiet_s >= 0.2):  # a 200 ms pause after the words
        events += detector.feed(line[at:at + CHUNK])
        at += CHUNK
    assert [type(e) for e in events] == [SpeechStarted]
    [ended] = detector.end_now()
    assert isinstance(ended, SpeechEnded) and not detector.in_speech
    assert abs(ended.at_s - 0.1 - speech_end) < 0.1  # the last voiced frame plus the padding, not "now"
    assert detector.end_now() == []  # nothing in progress any more
    rest = [e for i in range(at, len(line), CHUNK) for e in detector.feed(line[i:i + CHUNK])]
    assert rest == []  # the silence after it is not a second end


def test_a_longer_window_keeps_a_pause_inside_the_utterance(silero: VadBackend) -> None:
    line, speech_end = audio()
    detector = SpeechDetector(silero.open(RATE), DetectorSettings(min_silence_ms=550))
    detector.set_min_silence_ms(1200)
    assert detector.settings.min_silence_ms == 1200
    ends = []
    for at in range(0, len(line), CHUNK):
        for event in detector.feed(line[at:at + CHUNK]):
            if isinstance(event, SpeechEnded):
                ends.append(detector.position_s)
    assert len(ends) == 1 and 1.2 <= ends[0] - speech_end < 1.4  # 1.2 s of quiet after the words, not 0.55
    with pytest.raises(ValueError, match="min_silence_ms must be >= 0"):
        detector.set_min_silence_ms(-1)
