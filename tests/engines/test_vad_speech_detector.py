"""SpeechDetector's state machine, driven by a session whose probability is written into the audio.

Each 20 ms frame at 8 kHz carries its speech probability as its sample value
(the int16 sample p * 1000, as float32: / 32768), so a test writes the probability track it wants and the
detector's re-framing, hangover, minimum speech, onset-gap bridging,
hysteresis and padding are checked to the frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.audio_format import PCM16_SCALE, from_int16
from engines.vad.interface import VadSession
from engines.vad.speech_detector import DetectorSettings, SpeechDetector, SpeechEnded, SpeechEvent, SpeechStarted

RATE = 8_000
FRAME = 160  # 20 ms


class ProbabilityInAudio(VadSession):
    sample_rate = RATE
    frame_samples = FRAME

    def __init__(self) -> None:
        self.frames = 0
        self.resets = 0

    def probability(self, frame: np.ndarray) -> float:
        assert len(frame) == FRAME and frame.dtype == np.float32
        assert (frame == frame[0]).all(), "a frame straddles two probabilities: re-framing is off"
        self.frames += 1
        return round(float(frame[0]) * PCM16_SCALE) / 1000.0

    def reset(self) -> None:
        self.resets += 1


def track(*parts: tuple[float, float]) -> np.ndarray:
    """Audio holding probability ``p`` for ``seconds``, for each (p, seconds) part."""
    return from_int16(np.concatenate([np.full(round(s * RATE / FRAME) * FRAME, round(p * 1000), dtype=np.int16) for p, s in parts]))


def run(audio: np.ndarray, settings: DetectorSettings | None = None, chunk: int = FRAME) -> list[tuple[float, SpeechEvent]]:
    """Events with the position (seconds judged) at which each was reported."""
    detector = SpeechDetector(ProbabilityInAudio(), settings)
    out: list[tuple[float, SpeechEvent]] = []
    for at in range(0, len(audio), chunk):
        out.extend((detector.position_s, e) for e in detector.feed(audio[at : at + chunk]))
    out.extend((detector.position_s, e) for e in detector.finish())
    return out


def test_one_utterance_with_defaults() -> None:
    events = run(track((0.0, 1.0), (0.9, 1.0), (0.0, 1.0)))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    (started_pos, started), (ended_pos, ended) = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert started.at_s == pytest.approx(0.9)  # onset 1.0 minus 100 ms pad
    assert started_pos == pytest.approx(1.26)  # reported once 250 ms (13 frames) of speech were heard
    assert ended.at_s == pytest.approx(2.1)  # last speech frame 2.0 plus 100 ms pad
    assert ended_pos == pytest.approx(2.4)  # reported after the 400 ms hangover
    assert ended.speech_s == pytest.approx(1.2)


def test_hangover_keeps_short_pauses_inside_one_utterance() -> None:
    short_pause = run(track((0, 0.5), (0.9, 0.5), (0.1, 0.38), (0.9, 0.5), (0, 1)))
    assert [type(e) for _, e in short_pause] == [SpeechStarted, SpeechEnded]
    assert short_pause[1][1] == SpeechEnded(at_s=pytest.approx(1.98), speech_s=pytest.approx(1.58))

    long_pause = run(track((0, 0.5), (0.9, 0.5), (0.1, 0.42), (0.9, 0.5), (0, 1)))
    assert [type(e) for _, e in long_pause] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]


def test_bursts_shorter_than_min_speech_never_start_speech() -> None:
    bursts = [part for _ in range(6) for part in ((1.0, 0.24), (0.0, 0.3))]
    assert run(track((0, 0.5), *bursts)) == []
    assert [type(e) for _, e in run(track((0, 0.5), (1.0, 0.26), (0, 1)))] == [SpeechStarted, SpeechEnded]
    # a barge-in setting reports sooner, and then takes shorter bursts for speech
    fast = DetectorSettings(min_speech_ms=100)
    events = run(track((0, 0.5), (1.0, 0.24), (0, 1)), fast)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    assert events[0][0] == pytest.approx(0.6)


def test_short_dips_during_onset_are_bridged_longer_ones_are_not() -> None:
    bridged = run(track((0, 0.5), (0.9, 0.1), (0.0, 0.06), (0.9, 0.2), (0, 1)))
    assert [type(e) for _, e in bridged] == [SpeechStarted, SpeechEnded]
    assert bridged[0][1] == SpeechStarted(pytest.approx(0.4))

    broken = run(track((0, 0.5), (0.9, 0.1), (0.0, 0.12), (0.9, 0.2), (0, 1)))
    assert broken == []


def test_thresholds_have_hysteresis() -> None:
    # 0.4 sits between end (0.35) and start (0.5): it cannot start speech but keeps it going
    assert run(track((0, 0.5), (0.4, 2.0), (0, 1))) == []
    events = run(track((0, 0.5), (0.9, 0.3), (0.4, 1.5), (0, 1)))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    assert events[1][1].at_s == pytest.approx(2.4)


def test_padding_is_clamped_to_the_stream_and_to_the_previous_utterance() -> None:
    settings = DetectorSettings(speech_pad_ms=300, min_silence_ms=200)
    events = run(track((0.9, 0.5), (0, 0.24), (0.9, 0.5), (0, 1)), settings)
    starts = [e.at_s for _, e in events if isinstance(e, SpeechStarted)]
    ends = [e.at_s for _, e in events if isinstance(e, SpeechEnded)]
    assert starts[0] == 0.0
    assert ends[0] == pytest.approx(0.7)  # 0.5 + 0.2 hangover: the pad cannot reach past what was judged
    assert starts[1] == pytest.approx(0.7)  # 0.74 - 0.3 would overlap the first utterance


def test_any_chunk_size_gives_the_same_events() -> None:
    audio = track((0, 0.5), (0.9, 0.7), (0.2, 0.3), (0.8, 0.4), (0, 0.6), (0.9, 1.0), (0, 0.6))
    expected = [e for _, e in run(audio)]
    assert len(expected) == 4
    rng = np.random.default_rng(7)
    detector = SpeechDetector(ProbabilityInAudio())
    got: list[SpeechEvent] = []
    at = 0
    while at < len(audio):
        size = int(rng.choice([1, 3, 159, 161, 320, 999, 2048]))
        got.extend(detector.feed(audio[at : at + size]))
        at += size
    got.extend(detector.finish())
    assert got == expected


def test_in_speech_finish_and_reset() -> None:
    session = ProbabilityInAudio()
    detector = SpeechDetector(session)
    assert not detector.in_speech
    detector.feed(track((0, 0.2), (0.9, 0.5)))
    assert detector.in_speech
    assert detector.position_s == pytest.approx(0.7)
    detector.feed(np.zeros(100, dtype=np.float32))  # a partial frame waits for more audio
    assert detector.position_s == pytest.approx(0.7)
    assert detector.finish() == [SpeechEnded(at_s=pytest.approx(0.7), speech_s=pytest.approx(0.6))]
    assert not detector.in_speech

    detector.feed(track((0.9, 0.5)))
    detector.reset()
    assert session.resets == 1 and not detector.in_speech and detector.position_s == 0.0
    events = detector.feed(track((0, 0.1), (0.9, 0.3)))
    assert events == [SpeechStarted(at_s=0.0)]


def test_bad_audio_and_settings_are_refused() -> None:
    detector = SpeechDetector(ProbabilityInAudio())
    with pytest.raises(ValueError, match=r"SpeechDetector takes 1-D float32 audio .*got int16 \(160,\)"):
        detector.feed(np.zeros(160, dtype=np.int16))
    with pytest.raises(ValueError, match=r"1-D float32 .*got float32 \(160, 2\)"):
        detector.feed(np.zeros((160, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="end_threshold"):
        DetectorSettings(start_threshold=0.3, end_threshold=0.5)
    with pytest.raises(ValueError, match="min_silence_ms"):
        DetectorSettings(min_silence_ms=-1)
