"""Speech start and end from per-frame speech probabilities: endpointing and barge-in.

``SpeechDetector`` takes the line audio (float32 mono, the engines' audio
format) in chunks of any size, cuts it into the frames its ``VadSession``
wants (keeping the remainder for the next chunk), and runs a small state
machine over the probabilities:

- silence -> onset when a frame reaches ``start_threshold``;
- onset -> speech once ``min_speech_ms`` of frames at or above
  ``end_threshold`` have been heard (dips shorter than ``max_onset_gap_ms``
  are bridged); a click or noise burst shorter than that never becomes
  speech. ``SpeechStarted`` is reported then, dated back to the onset minus
  ``speech_pad_ms``. So the report comes ``min_speech_ms`` (+ one frame, 32 ms
  for Silero) after the onset: barge-in within 200 ms wants min_speech_ms
  around 100-150; endpointing can afford the default 250;
- speech -> silence after ``min_silence_ms`` below ``end_threshold`` (the
  hangover that keeps pauses between words inside one utterance);
  ``SpeechEnded`` is dated at the last speech frame plus ``speech_pad_ms``.

Times are seconds of audio since the detector started (or was reset),
counted in samples, so they do not drift. ``in_speech`` says whether an
utterance is in progress. Everything is synchronous and cheap (one model
call per frame): it runs on the event loop with the audio.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

import numpy as np

from engines.audio_format import DTYPE, Samples, checked
from engines.vad.interface import VadSession


@dataclass(frozen=True)
class DetectorSettings:
    start_threshold: float = 0.5
    end_threshold: float = 0.35
    min_speech_ms: int = 250
    min_silence_ms: int = 400
    speech_pad_ms: int = 100
    max_onset_gap_ms: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.start_threshold <= 1.0:
            raise ValueError(f"start_threshold must be in (0, 1], not {self.start_threshold}")
        if not 0.0 < self.end_threshold <= self.start_threshold:
            raise ValueError(f"end_threshold must be in (0, start_threshold={self.start_threshold}], not {self.end_threshold}")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms", "max_onset_gap_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")


@dataclass(frozen=True)
class SpeechStarted:
    at_s: float


@dataclass(frozen=True)
class SpeechEnded:
    at_s: float
    speech_s: float


SpeechEvent = SpeechStarted | SpeechEnded


class _State(enum.Enum):
    SILENCE = "silence"
    ONSET = "onset"
    SPEECH = "speech"


class SpeechDetector:
    def __init__(self, session: VadSession, settings: DetectorSettings | None = None) -> None:
        self.session = session
        self.settings = settings or DetectorSettings()
        rate = session.sample_rate
        self._rate = rate
        self._frame = session.frame_samples
        self._min_speech = _samples(self.settings.min_speech_ms, rate)
        self._min_silence = _samples(self.settings.min_silence_ms, rate)
        self._pad = _samples(self.settings.speech_pad_ms, rate)
        self._max_gap = _samples(self.settings.max_onset_gap_ms, rate)
        self._remainder: Samples = np.zeros(0, dtype=DTYPE)
        self._reset_state()

    def _reset_state(self) -> None:
        self._position = 0  # samples consumed by the model
        self._state = _State.SILENCE
        self._onset = 0
        self._voiced = 0
        self._quiet = 0
        self._started = 0
        self._last_voiced_end = 0
        self._last_end = 0
        self.last_probability = 0.0

    @property
    def in_speech(self) -> bool:
        """True between ``SpeechStarted`` and ``SpeechEnded``."""
        return self._state is _State.SPEECH

    @property
    def quiet_s(self) -> float:
        """In speech: how long the caller has been below ``end_threshold`` (0 while they talk)."""
        return self._quiet / self._rate if self._state is _State.SPEECH else 0.0

    @property
    def last_voiced_end_s(self) -> float:
        """The end of the last frame judged as speech (s); it moves on whenever the caller speaks."""
        return self._last_voiced_end / self._rate

    @property
    def position_s(self) -> float:
        """Seconds of audio the detector has judged (fed audio minus a partial frame)."""
        return self._position / self._rate

    def reset(self) -> None:
        """Start over: a new stream, times from zero, model state cleared."""
        self.session.reset()
        self._remainder = np.zeros(0, dtype=DTYPE)
        self._reset_state()

    def feed(self, chunk: Samples) -> list[SpeechEvent]:
        """Judge ``chunk`` (float32 mono, any length); return the events it caused, in order."""
        fresh = checked(chunk, "SpeechDetector")
        audio = np.concatenate((self._remainder, fresh)) if len(self._remainder) else fresh
        events: list[SpeechEvent] = []
        whole = len(audio) - len(audio) % self._frame
        for start in range(0, whole, self._frame):
            event = self._judge(audio[start : start + self._frame])
            if event is not None:
                events.append(event)
        self._remainder = audio[whole:].copy()
        return events

    def set_min_silence_ms(self, ms: int) -> None:
        """Change the silence that ends an utterance (the hangover), from the next frame on."""
        if ms < 0:
            raise ValueError(f"min_silence_ms must be >= 0, not {ms}")
        self.settings = replace(self.settings, min_silence_ms=ms)
        self._min_silence = _samples(ms, self._rate)

    def end_now(self) -> list[SpeechEvent]:
        """End the utterance in progress now, as its silence window would (a turn-end model judged it complete).

        The next voiced frames start a new utterance. Nothing when no utterance is in progress.
        """
        if self._state is not _State.SPEECH:
            return []
        return [self._end(min(self._last_voiced_end + self._pad, self._position))]

    def finish(self) -> list[SpeechEvent]:
        """The stream ended: close an utterance in progress (a partial last frame is dropped)."""
        events: list[SpeechEvent] = []
        if self._state is _State.SPEECH:
            events.append(self._end(min(self._last_voiced_end + self._pad, self._position)))
        self._state = _State.SILENCE
        self._remainder = np.zeros(0, dtype=DTYPE)
        return events

    def _judge(self, frame: Samples) -> SpeechEvent | None:
        p = self.session.probability(frame)
        self.last_probability = p
        frame_start = self._position
        self._position += self._frame
        s = self.settings
        if self._state is _State.SILENCE:
            if p >= s.start_threshold:
                self._state, self._onset, self._voiced, self._quiet = _State.ONSET, frame_start, 0, 0
            else:
                return None
        if self._state is _State.ONSET:
            if p >= s.end_threshold:
                self._voiced += self._frame
                self._quiet = 0
                self._last_voiced_end = self._position
            else:
                self._quiet += self._frame
                if self._quiet >= self._max_gap:
                    self._state = _State.SILENCE
                return None
            if self._voiced >= self._min_speech:
                self._state = _State.SPEECH
                self._started = max(self._last_end, self._onset - self._pad, 0)
                return SpeechStarted(self._started / self._rate)
            return None
        # speech
        if p >= s.end_threshold:
            self._quiet = 0
            self._last_voiced_end = self._position
            return None
        self._quiet += self._frame
        if self._quiet >= self._min_silence:
            return self._end(min(self._last_voiced_end + self._pad, self._position))
        return None

    def _end(self, end: int) -> SpeechEnded:
        self._state = _State.SILENCE
        self._last_end = end
        return SpeechEnded(end / self._rate, (end - self._started) / self._rate)


def _samples(ms: int, rate: int) -> int:
    return ms * rate // 1000
