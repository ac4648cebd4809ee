"""What every voice activity detector does: tell how likely a short frame is speech.

A ``VadBackend`` loads its model once (``load`` runs in a worker thread);
``open(sample_rate)`` then gives a ``VadSession`` for one audio stream (one
call), holding that stream's recurrent state. A session takes frames of
exactly ``frame_samples`` samples in the engines' audio format (float32 in
[-1, 1), see ``engines.audio_format``) and returns a speech probability in
0..1. That takes microseconds, so sessions are synchronous and run on the
event loop next to the 20 ms audio clock; ``SpeechDetector`` re-frames
arbitrary chunks and turns probabilities into speech start/end events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from engines.audio_format import Samples, checked
from engines.backend import EngineBackend


class UnsupportedSampleRate(ValueError):
    """The backend cannot run at the requested sample rate."""


class VadSession(ABC):
    """One audio stream's detector state."""

    sample_rate: int
    frame_samples: int

    @abstractmethod
    def probability(self, frame: Samples) -> float:
        """Speech probability (0..1) of one float32 frame of ``frame_samples`` samples."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the stream so far (a new stream starts)."""

    @property
    def frame_s(self) -> float:
        return self.frame_samples / self.sample_rate


class VadBackend(EngineBackend):
    """One way to detect speech; ``open`` starts a session per stream."""

    sample_rates: tuple[int, ...] = ()

    @abstractmethod
    def open(self, sample_rate: int) -> VadSession:
        """A new session at ``sample_rate``; ``UnsupportedSampleRate`` if the backend cannot."""

    def _check_rate(self, sample_rate: int) -> None:
        if sample_rate not in self.sample_rates:
            rates = ", ".join(str(r) for r in self.sample_rates)
            raise UnsupportedSampleRate(f"{self.name} VAD runs at {rates} Hz, not {sample_rate} Hz")


def checked_frame(frame: object, frame_samples: int, backend: str) -> Samples:
    """``frame`` if it is a 1-D float32 frame of the right length, else a clear ``ValueError``."""
    samples = checked(frame, f"{backend} VAD")
    if len(samples) != frame_samples:
        raise ValueError(f"{backend} VAD takes frames of {frame_samples} samples, got {len(samples)} (use SpeechDetector to re-frame)")
    return samples
