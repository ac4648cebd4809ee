"""The call record's two audio tracks: ``caller.wav`` and ``secretary.wav`` (8 kHz mono PCM16)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from drivers.audio.pcm import AudioLike
from drivers.audio.wav_io import StreamingWavWriter, repair_wav

CALLER_WAV = "caller.wav"
SECRETARY_WAV = "secretary.wav"


class CallRecorder:
    """Writes both tracks of one call into ``call_dir`` as the call goes.

    Feed every line frame in both directions (including silence) and the two
    tracks stay time-aligned. Writes are small ``os.write`` calls, fine on the
    event loop; ``aclose`` does the final fsync off the loop.
    """

    def __init__(self, call_dir: str | os.PathLike[str], sample_rate: int = 8000) -> None:
        self.call_dir = Path(call_dir)
        self.call_dir.mkdir(parents=True, exist_ok=True)
        self.caller = StreamingWavWriter(self.call_dir / CALLER_WAV, sample_rate)
        self.secretary = StreamingWavWriter(self.call_dir / SECRETARY_WAV, sample_rate)

    def write_caller(self, samples: AudioLike) -> None:
        """Append caller (inbound line) audio."""
        self.caller.write(samples)

    def write_secretary(self, samples: AudioLike) -> None:
        """Append secretary (outbound line) audio."""
        self.secretary.write(samples)

    def close(self) -> None:
        """Finalise both files (blocking: fsync)."""
        try:
            self.caller.close()
        finally:
            self.secretary.close()

    async def aclose(self) -> None:
        """Finalise both files in a worker thread."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_call_dir(call_dir: str | os.PathLike[str]) -> list[Path]:
    """Fix the headers of a call's tracks left by a crash; returns the files changed."""
    changed = []
    for name in (CALLER_WAV, SECRETARY_WAV):
        path = Path(call_dir) / name
        if path.exists() and path.stat().st_size >= 44 and repair_wav(path):
            changed.append(path)
    return changed
