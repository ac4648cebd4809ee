"""The figures the call view and the status page draw, from the call records as the daemon wrote them.

One call's timeline: both tracks as waveform peaks (``caller.wav`` and
``secretary.wav``, read in a worker thread and cached per file version), the
utterances at their times, each answered turn's stages (turn end, STT, first
text, first audio) from the record's ``TurnStages``, fillers and barge-ins. A
track that is missing or unreadable becomes a placeholder with the reason
(the page then draws the speech regions from the transcript). The status
page's voice-to-voice card: every turn of the calls that started in the last
24 h, to the reply's own first audio, with p50/p95/p99, the fillers and a
histogram::

    CallIndex row -> CallRecord.load (thread) -> utterances + TurnStages -> timeline dict -> JSON / template
    caller.wav, secretary.wav -> peaks (thread, lru cache) ---------------------^
"""

from __future__ import annotations

import asyncio
import functools
import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from daemon.records.call_index import CallIndex, CallSummaryRow
from daemon.records.call_record import (
    ROLES,
    TRANSCRIPT_JSON,
    CallRecord,
    CallRecordHeader,
    CorruptRecordError,
    TurnStages,
    Utterance,
)
from drivers.audio import LINE_RATE

PEAKS_PER_S: Final = 50  # one peak per 20 ms line frame, fewer on long calls
MAX_PEAKS: Final = 4000  # per track: a 2-minute call keeps every frame
FLOOR_DB: Final = -60.0  # peaks are drawn on a dB scale from here (0) to full scale (100)
DAY_S: Final = 24 * 3600.0
DAY_MAX_CALLS: Final = 5000  # the day's card reads at most this many records (newest first)
ENDPOINT_SLACK_S: Final = 0.3  # a caller utterance's end may lie this much past its turn's endpoint (VAD padding)
HISTOGRAM_STEP_MS: Final = 100
HISTOGRAM_TOP_MS: Final = 2000  # the last bin holds everything from here up
TARGET_P50_MS: Final = 650  # issue 21's voice-to-voice targets on the 2-core CPU box: the histogram's colours
TARGET_P95_MS: Final = 900
STAGES: Final = (  # name, label, the record's time the stage ends at
    ("turn_end", "turn end", "endpoint_s"),
    ("stt", "STT final", "stt_final_s"),
    ("first_text", "first text", "first_text_s"),
    ("first_audio", "first audio", "reply_audio_s"),
)


class TrackUnreadable(ValueError):
    """A track's WAV is not the 8 kHz mono 16-bit file the recorder writes."""


# ---------------------------------------------------------------- waveforms


def _read_track(path: Path) -> np.ndarray:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != LINE_RATE:
                raise TrackUnreadable(f"{path.name} is {w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit at "
                                      f"{w.getframerate()} Hz, not the recorder's mono 16-bit at {LINE_RATE} Hz")
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise TrackUnreadable(f"{path.name} is not a readable WAV file ({exc})") from None
    return np.frombuffer(data[: len(data) // 2 * 2], "<i2")


@functools.lru_cache(maxsize=32)
def _cached_peaks(path: str, version: tuple[int, int, int]) -> dict[str, Any]:
    """Peaks of one version of a track file (the key changes when the file does)."""
    samples = _read_track(Path(path))
    duration_s = samples.size / LINE_RATE
    frame = LINE_RATE // PEAKS_PER_S
    frames = math.ceil(samples.size / frame)
    per_peak = max(1, math.ceil(frames / MAX_PEAKS)) * frame
    peak = np.zeros(0)
    if samples.size:  # the loudest sample of each run of per_peak samples (the last run may be shorter)
        starts = np.arange(0, samples.size, per_peak)
        high = np.maximum.reduceat(samples, starts).astype(np.int32)
        low = np.minimum.reduceat(samples, starts).astype(np.int32)
        peak = np.maximum(high, -low) / 32768.0
    db = 20 * np.log10(np.maximum(peak, 10 ** (FLOOR_DB / 20)))
    levels = np.clip(np.round((db - FLOOR_DB) / -FLOOR_DB * 100), 0, 100).astype(int)
    return {"available": True, "duration_s": round(duration_s, 3), "step_s": per_peak / LINE_RATE,
            "peaks": levels.tolist()}


def track_peaks(path: Path | None, name: str, deleted: str | None = None) -> dict[str, Any]:
    """A track's peaks (0..100 on a dB scale, ``step_s`` apart) or ``{"available": False, "reason"}``."""
    if deleted:
        return {"available": False, "reason": f"the audio was deleted ({deleted})"}
    if path is None:
        return {"available": False, "reason": f"{name}.wav was not recorded or is gone"}
    try:
        stat = path.stat()
        return _cached_peaks(str(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except TrackUnreadable as exc:
        return {"available": False, "reason": str(exc)}
    except OSError as exc:
        return {"available": False, "reason": f"{name}.wav cannot be read: {exc.strerror or exc}"}


# ---------------------------------------------------------------- one call


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((a - b) * 1000, 1)


def turn_figure(stages: TurnStages, answer: Utterance, caller_text: str) -> dict[str, Any]:
    """One answered turn: its times, voice-to-voice and the stages as back-to-back segments.

    Each stage runs from the end of the one before (a stage that ended
    earlier, like an STT final that came before the endpoint, is drawn with
    no width) to its own time, and none past the reply's first audio; ``ms``
    is the segment's length.
    """
    segments: list[dict[str, Any]] = []
    at = stages.speech_end_s
    for name, label, field in STAGES:
        end = getattr(stages, field)
        if end is None:
            continue
        if stages.reply_audio_s is not None:
            end = min(end, stages.reply_audio_s)  # nothing after the reply's first audio is on its path
        start, at = at, max(at, end)
        segments.append({"name": name, "label": label, "start_s": start, "end_s": at, "ms": round((at - start) * 1000, 1)})
    return {
        **stages.as_dict(),
        "voice_to_voice_ms": stages.voice_to_voice_ms, "to_any_audio_ms": stages.to_any_audio_ms,
        "endpoint_ms": _ms(stages.endpoint_s, stages.speech_end_s),
        "stt_ms": _ms(stages.stt_final_s, stages.endpoint_s),
        "first_text_ms": _ms(stages.first_text_s, stages.endpoint_s),
        "first_audio_ms": _ms(stages.reply_audio_s, stages.endpoint_s),
        "stages": segments, "caller_text": caller_text, "reply_text": answer.text, "interrupted": answer.interrupted,
    }


def _turns(utterances: Sequence[Utterance]) -> list[dict[str, Any]]:
    """The answered turns in order; each with the caller's words it answers (those that ended since the last one)."""
    turns: list[dict[str, Any]] = []
    since = -math.inf
    for u in utterances:
        if u.role != "secretary" or u.turn is None:
            continue
        until = u.turn.endpoint_s + ENDPOINT_SLACK_S
        heard = [c.text for c in utterances if c.role == "caller" and since < c.end_s <= until]
        turns.append(turn_figure(u.turn, u, " ".join(heard)))
        since = until
    return turns


def _duration(header: CallRecordHeader, utterances: Sequence[Utterance], tracks: dict[str, dict[str, Any]]) -> float:
    ends = [u.end_s for u in utterances] + [t["duration_s"] for t in tracks.values() if t.get("available")]
    return round(max([header.duration_s or 0.0, *ends, 1.0]), 3)


def call_timeline(record_dir: Path, track_paths: dict[str, Path | None], *, peaks: bool = True) -> dict[str, Any]:
    """Everything the call view draws (blocking: run it in a thread). ``{"error": ...}`` for an unreadable record."""
    try:
        record = CallRecord.load(record_dir)
    except FileNotFoundError:
        return {"error": "the call's transcript.json is gone", "turns": [], "utterances": []}
    except (CorruptRecordError, OSError) as exc:
        return {"error": f"the call record cannot be read: {exc}", "turns": [], "utterances": []}
    header, utterances = record.header, record.utterances
    deleted = (header.recording or {}).get("audio_deleted")
    tracks = {role: (track_peaks(track_paths.get(role), role, deleted) if peaks else {"available": False,
                                                                                     "reason": "not asked"})
              for role in ROLES}
    return {
        "call_id": header.call_id,
        "duration_s": _duration(header, utterances, tracks),
        "tracks": tracks,
        "recording": header.recording,
        "utterances": [{"role": u.role, "text": u.text, "start_s": u.start_s, "end_s": u.end_s,
                        "interrupted": u.interrupted, "source": u.source} for u in utterances],
        "turns": _turns(utterances),
        "barge_ins": [{"at_s": u.end_s, "text": u.text} for u in utterances if u.role == "secretary" and u.interrupted],
        "dtmf": [dict(d) for d in header.dtmf],
        "targets": {"p50_ms": TARGET_P50_MS, "p95_ms": TARGET_P95_MS},
    }


# ---------------------------------------------------------------- the last day


@dataclass(frozen=True)
class DayFigures:
    """Voice-to-voice over every turn of the calls that started in the window (the status page's card)."""

    calls: int
    turns: int
    measured: int  # turns whose reply reached the line (the others were cut or unspoken before a frame)
    fillers: int  # turns on which a filler played first
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    any_audio_p50_ms: float | None  # to the first audio of anything (a filler or the reply)
    histogram: list[dict[str, Any]]  # [{"from_ms", "to_ms" (None: and above), "count"}]
    unreadable: int  # records of the window that could not be read

    @property
    def peak_count(self) -> int:
        return max([b["count"] for b in self.histogram] + [0])


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values.size else None


def histogram(values: Sequence[float]) -> list[dict[str, Any]]:
    edges = list(range(0, HISTOGRAM_TOP_MS + 1, HISTOGRAM_STEP_MS))
    counts = [0] * len(edges)
    for v in values:
        counts[min(len(edges) - 1, max(0, int(v // HISTOGRAM_STEP_MS)))] += 1
    return [{"from_ms": lo, "to_ms": lo + HISTOGRAM_STEP_MS if lo < HISTOGRAM_TOP_MS else None, "count": n}
            for lo, n in zip(edges, counts, strict=True)]


@functools.lru_cache(maxsize=4096)
def _record_turns(record_dir: str, version: tuple[int, int, int]) -> tuple[TurnStages, ...]:
    """The answered turns of one version of a record (the status page reads the day's records on every view).

    ``version`` is the transcript's (inode, size, mtime): every write replaces the file, so a new inode.
    """
    return tuple(u.turn for u in CallRecord.load(Path(record_dir)).utterances if u.turn is not None)


def day_figures(rows: Sequence[CallSummaryRow]) -> DayFigures:
    """Read each call's record (blocking: run it in a thread) and count every answered turn."""
    reply: list[float] = []
    any_audio: list[float] = []
    turns = fillers = unreadable = 0
    for row in rows:
        try:
            stat = (Path(row.record_dir) / TRANSCRIPT_JSON).stat()
            record_turns = _record_turns(row.record_dir, (stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except (OSError, CorruptRecordError):
            unreadable += 1
            continue
        for turn in record_turns:
            turns += 1
            fillers += turn.fillers > 0
            if turn.voice_to_voice_ms is not None:
                reply.append(turn.voice_to_voice_ms)
            if turn.to_any_audio_ms is not None:
                any_audio.append(turn.to_any_audio_ms)
    values = np.asarray(reply, float)
    return DayFigures(
        calls=len(rows), turns=turns, measured=len(reply), fillers=fillers,
        p50_ms=_percentile(values, 50), p95_ms=_percentile(values, 95), p99_ms=_percentile(values, 99),
        any_audio_p50_ms=_percentile(np.asarray(any_audio, float), 50), histogram=histogram(reply),
        unreadable=unreadable,
    )


async def last_day(index: CallIndex, now: float, window_s: float = DAY_S) -> DayFigures:
    """The figures over the calls that started in the ``window_s`` before ``now``."""
    rows, _ = await index.asearch(since=now - window_s, until=now + 1.0, limit=DAY_MAX_CALLS)
    return await asyncio.to_thread(day_figures, rows)
