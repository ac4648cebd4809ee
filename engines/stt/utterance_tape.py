"""A recording of the utterance being transcribed, so another backend can hear it all again.

The caller's audio stream can be read only once, but when an STT backend fails
in the middle of an utterance the next backend must hear the utterance from
its first sample. The tape reads the caller's stream in its own task (so a
backend that is cancelled or closed while waiting for audio never cancels the
caller's stream), keeps a checked float32 copy of every chunk, and hands
out ``playback()`` streams: each one yields the recorded chunks from the
start, then follows the live audio until the caller's stream ends. Bad
chunks raise ``RequestError`` in the playback that reaches them, and so does
a failing caller stream (wrapped in ``RequestError``): neither is the
backend's fault, so neither fails over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from engines.audio_format import Samples
from engines.fallback_chain import RequestError
from engines.stt.interface import checked_chunk


class UtteranceTape:
    def __init__(self, source: AsyncIterator[np.ndarray]) -> None:
        self._source = source
        self._chunks: list[Samples] = []
        self._ended = False
        self._error: BaseException | None = None
        self._grew = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def playback(self) -> AsyncIterator[Samples]:
        """The utterance from its start, then live until the caller's stream ends."""
        self._start_reading()
        position = 0
        while True:
            if position < len(self._chunks):
                position += 1
                yield self._chunks[position - 1]
                continue
            if self._error is not None:
                raise self._error
            if self._ended:
                return
            async with self._grew:
                await self._grew.wait_for(lambda: position < len(self._chunks) or self._ended or self._error is not None)

    def _start_reading(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="stt-utterance-tape")

    async def _read(self) -> None:
        try:
            async for chunk in self._source:
                checked = checked_chunk(chunk)
                async with self._grew:
                    self._chunks.append(checked)
                    self._grew.notify_all()
        except asyncio.CancelledError:
            raise
        except RequestError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - handed to the playback that needs the audio
            self._error = RequestError(f"the utterance audio stream failed: {type(exc).__name__}: {exc}")
            self._error.__cause__ = exc
        finally:
            self._ended = True
            async with self._grew:
                self._grew.notify_all()

    async def close(self) -> None:
        """Stop reading the caller's stream if it has not ended (the transcription was abandoned)."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
