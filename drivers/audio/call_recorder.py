"""The call record's two audio tracks: ``caller.wav`` and ``secretary.wav`` (8 kHz mono PCM16).

Recording is a side job of the call: a track that cannot be written (the
disk is full, the file system went read-only) never raises into the call.
The recorder notes what was lost and where, tries again every
``RETRY_EVERY_S`` of call audio, and on success carries on in place, the
lost stretch left as silence (a hole in the file) so the two tracks stay
aligned with the call's clock. ``summary()`` is what the call record says
about its audio; ``on_change`` hears when recording stops and when it resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.audio.pcm import AudioLike, as_int16
from drivers.audio.wav_io import StreamingWavWriter, repair_wav

CALLER_WAV = "caller.wav"
SECRETARY_WAV = "secretary.wav"
RETRY_EVERY_S = 2.0  # of call audio between two attempts to write a failing track again
DISK_FULL = "disk full"
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_failure(exc: OSError) -> str:
    """A short reason for a failed write: ``disk full`` for ENOSPC/EDQUOT, else the system's words."""
    if exc.errno in _DISK_FULL_ERRNOS:
        return DISK_FULL
    return exc.strerror or type(exc).__name__


class _Track:
    """One WAV track that survives write failures: position, losses and the writer (opened when it can be)."""

    def __init__(self, path: Path, sample_rate: int, retry_samples: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.retry_samples = retry_samples
        self.writer: StreamingWavWriter | None = None
        self.position = 0  # samples of call audio fed so far (written or lost)
        self.lost = 0  # samples fed that are not in the file as audio
        self.gaps: list[list[int]] = []  # [first lost sample, first sample after], in samples
        self.error: str | None = None  # why the track is failing now (None: it writes)
        self.last_error: str | None = None  # why it failed last (kept after it recovers)
        self._next_try = 0
        self._accounted = 0  # samples the writer holds or owes as silence

    @property
    def failing(self) -> bool:
        return self.error is not None

    def open(self) -> None:
        try:
            self.writer = StreamingWavWriter(self.path, self.sample_rate)
        except OSError as exc:
            self._failed(exc)
            self._next_try = 0  # no audio lost yet: try again with the first samples

    def write(self, samples: AudioLike) -> None:
        data = as_int16(samples)
        count = int(data.size)
        if count == 0:
            return
        if self.error is not None and self.position < self._next_try:
            self._lose(count)
            return
        try:
            if self.writer is None:
                self.writer = StreamingWavWriter(self.path, self.sample_rate)
                self._accounted = 0  # a new file: everything before this write is a gap
            self._owe_gap()
            self.writer.write(data)
        except OSError as exc:
            self._failed(exc)
            self._lose(count)
            return
        self._accounted += count
        self.error = None  # writing again (if it was failing, the open gap ends here)
        self.position += count

    def _owe_gap(self) -> None:
        """Tell the writer about samples lost since it last wrote: silence before its next write."""
        assert self.writer is not None
        if self.position > self._accounted:
            self.writer.skip(self.position - self._accounted)
            self._accounted = self.position

    def close(self) -> None:
        if self.writer is None:  # never got a header on disk: leave no empty file behind
            with contextlib.suppress(OSError):
                if self.path.stat().st_size == 0:
                    self.path.unlink()
            return
        self._owe_gap()
        try:
            self.writer.close()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.error = self.last_error = f"{write_failure(exc)} writing {self.path.name}"
        self._next_try = self.position + self.retry_samples

    def _lose(self, count: int) -> None:
        if self.gaps and self.gaps[-1][1] == self.position:
            self.gaps[-1][1] += count
        else:
            self.gaps.append([self.position, self.position + count])
        self.position += count
        self.lost += count


class CallRecorder:
    """Writes both tracks of one call into ``call_dir`` as the call goes.

    Feed every line frame in both directions (including silence) and the two
    tracks stay time-aligned, through write failures too. Writes are small
    ``pwrite`` calls, fine on the event loop; ``aclose`` does the final fsync
    off the loop. Nothing here raises ``OSError`` to the caller.
    """

    def __init__(
        self,
        call_dir: str | os.PathLike[str],
        sample_rate: int = 8000,
        *,
        on_change: Callable[[CallRecorder], None] | None = None,
    ) -> None:
        self.call_dir = Path(call_dir)
        self.sample_rate = sample_rate
        self.on_change = on_change
        retry = max(1, int(RETRY_EVERY_S * sample_rate))
        self._tracks = (_Track(self.call_dir / CALLER_WAV, sample_rate, retry),
                        _Track(self.call_dir / SECRETARY_WAV, sample_rate, retry))
        self._closed = False
        self._was_failing = False
        try:
            self.call_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            for track in self._tracks:
                track._failed(exc)
        else:
            for track in self._tracks:
                track.open()
        self._notify()

    @property
    def caller(self) -> StreamingWavWriter | None:
        """The caller track's writer (None while it could not be created)."""
        return self._tracks[0].writer

    @property
    def secretary(self) -> StreamingWavWriter | None:
        """The secretary track's writer (None while it could not be created)."""
        return self._tracks[1].writer

    @property
    def failing(self) -> bool:
        """True while a track cannot be written."""
        return any(t.failing for t in self._tracks)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def reason(self) -> str | None:
        """Why recording is failing now (None while both tracks write)."""
        errors = [t.error for t in self._tracks if t.error is not None]
        return "; ".join(errors) if errors else None

    def write_caller(self, samples: AudioLike) -> None:
        """Append caller (inbound line) audio."""
        self._tracks[0].write(samples)
        self._notify()

    def write_secretary(self, samples: AudioLike) -> None:
        """Append secretary (outbound line) audio."""
        self._tracks[1].write(samples)
        self._notify()

    def summary(self) -> dict[str, Any]:
        """The call record's ``recording``: ``{complete, lost_s, reason, gaps}`` (seconds from the answer).

        ``lost_s`` is the longer loss of the two tracks; ``gaps`` merges both
        tracks' lost stretches; ``reason`` is the last failure (None if none).
        """
        rate = self.sample_rate
        spans = sorted(g for t in self._tracks for g in t.gaps)
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        reasons = [t.last_error for t in self._tracks if t.last_error is not None]
        lost = max(t.lost for t in self._tracks)
        return {
            "complete": not reasons,
            "lost_s": round(lost / rate, 2),
            "reason": "; ".join(dict.fromkeys(reasons)) or None,
            "gaps": [[round(s / rate, 2), round(e / rate, 2)] for s, e in merged],
        }

    def close(self) -> None:
        """Finalise both files (blocking: fsync); a failure is noted in ``summary``, never raised."""
        if self._closed:
            return
        for track in self._tracks:
            track.close()
        self._closed = True
        self._notify(force=True)

    async def aclose(self) -> None:
        """Finalise both files in a worker thread."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _notify(self, *, force: bool = False) -> None:
        failing = self.failing
        if (failing == self._was_failing and not force) or self.on_change is None:
            self._was_failing = failing
            return
        self._was_failing = failing
        self.on_change(self)


def repair_call_dir(call_dir: str | os.PathLike[str]) -> list[Path]:
    """Fix the headers of a call's tracks left by a crash; returns the files changed."""
    changed = []
    for name in (CALLER_WAV, SECRETARY_WAV):
        path = Path(call_dir) / name
        if path.exists() and path.stat().st_size >= 44 and repair_wav(path):
            changed.append(path)
    return changed
