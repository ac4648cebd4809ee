"""What a turn-end model does: tell how likely it is that the speaker has finished their turn.

``completion`` takes the utterance so far (the engines' audio format at
``sample_rate``, the pause after the last word included) and returns the
probability (0..1) that the turn is complete: the speaker is waiting for an
answer, not thinking of the next word. The model reads at most the last
``window_s`` seconds. A judgment takes tens of milliseconds of CPU, so it runs
in a worker thread, never on the event loop.
"""

from __future__ import annotations

from abc import abstractmethod

from engines.audio_format import SAMPLE_RATE, Samples
from engines.backend import EngineBackend


class TurnEndModel(EngineBackend):
    """One way to judge turn ends; ``load`` (a thread) before ``completion``."""

    sample_rate: int = SAMPLE_RATE
    window_s: float = 8.0

    @abstractmethod
    async def completion(self, audio: Samples) -> float:
        """P(the turn is complete) for ``audio``: 1-D float32 at ``sample_rate``, the utterance up to now."""
