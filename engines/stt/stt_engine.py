"""The STT engine as the call flow sees it: one utterance in, events out, backends behind.

``SttEngine`` serves each utterance from the first healthy backend of its
``FallbackChain``. The utterance is recorded on an ``UtteranceTape`` while
the backend hears it, so when a backend fails in the middle (its model
crashes, its worker dies, it ends without a final) the chain moves on and the
next backend hears the whole utterance from its first sample, then the rest
live. Partials the failed backend already produced have been delivered; the
next backend's partials start over, and exactly one ``SttFinal`` ends the
stream. Bad audio or a failing caller stream is a ``RequestError``: no
failover. Closing the event stream stops the backend and the tape.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import numpy as np

from engines.backend import BackendError
from engines.chained_engine import ChainedEngine
from engines.fallback_chain import Progress
from engines.stt.interface import SttBackend, SttEvent, SttFinal
from engines.stt.utterance_tape import UtteranceTape


class SttEngine(ChainedEngine[SttBackend]):
    @property
    def streams(self) -> bool:
        """The backend that would serve now recognises while the audio arrives (no backend: False)."""
        backend = self._chain.first_eligible()
        return backend is not None and backend.streaming

    async def transcribe(self, audio_chunks: AsyncIterator[np.ndarray], language: str | None) -> AsyncIterator[SttEvent]:
        """Partials, then one ``SttFinal``, for the utterance in ``audio_chunks`` (16 kHz float32 mono)."""
        tape = UtteranceTape(audio_chunks)

        def hear(backend: SttBackend, progress: Progress[SttEvent]) -> AsyncIterator[SttEvent]:
            return _until_final(backend, tape, language)

        try:
            async with contextlib.aclosing(self._chain.stream(hear)) as events:
                async for event in events:
                    yield event
        finally:
            await tape.close()


async def _until_final(backend: SttBackend, tape: UtteranceTape, language: str | None) -> AsyncIterator[SttEvent]:
    """The backend's events for the whole taped utterance, up to its final (which must come)."""
    async with contextlib.aclosing(tape.playback()) as audio:
        async with contextlib.aclosing(backend.transcribe(audio, language)) as events:
            async for event in events:
                yield event
                if isinstance(event, SttFinal):
                    return
    raise BackendError(f"STT backend {backend.name} ended the utterance without a final transcript")
