"""One call's record on disk: ``transcript.json`` and ``transcript.txt`` in ``data_dir/calls/<call_id>/``.

The audio tracks beside them (``caller.wav``, ``secretary.wav``) are written by
``drivers.audio.CallRecorder``. This module owns the transcript: every change
is written at once, crash-safe (temp file + fsync + ``os.replace`` + directory
fsync), so a process killed at any point leaves the last complete state, and
``transcript.json`` is never half-written.

State lives in memory; each write serializes the whole current state (a call
has tens of utterances, so that is small). Writes are serialized and always
write the newest state, so the file on disk never goes backwards.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import functools
import json
import math
import os
import re
import textwrap
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

TRANSCRIPT_JSON: Final = "transcript.json"
TRANSCRIPT_TXT: Final = "transcript.txt"
TEMP_SUFFIX: Final = ".tmp"
FORMAT_VERSION: Final = 1

IN_PROGRESS: Final = "in_progress"
INTERRUPTED: Final = "interrupted"
"""Outcome of a record found ``in_progress`` after the daemon died mid-call."""

ROLES: Final = ("caller", "secretary")
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")
MESSAGE_LABELS: Final = {"name": "Name", "reason": "Reason", "callback_number": "Callback"}
UPDATABLE_FIELDS: Final = frozenset(
    {"answered_at", "ended_at", "duration_s", "outcome", "end_reason", "message", "summary", "recording"}
)
RECORDING_KEYS: Final = frozenset({"complete", "lost_s", "reason", "gaps", "audio_deleted"})
"""``recording`` in the record: {complete, lost_s, reason, gaps} from the recorder, audio_deleted once freed."""

_CALL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Role = Literal["caller", "secretary"]


class CorruptRecordError(ValueError):
    """``transcript.json`` exists but cannot be read back as a call record."""


def is_valid_call_id(call_id: str) -> bool:
    """A call id that is safe as one directory name: ``[A-Za-z0-9][A-Za-z0-9._-]*``, no ``..``, at most 128."""
    return bool(_CALL_ID.fullmatch(call_id)) and ".." not in call_id


def _check_finite(name: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


ENDED_BY_TURN_END: Final = "turn_end"  # the turn-end model judged the utterance complete at a short pause
ENDED_BY_SILENCE: Final = "silence"  # the fixed silence window (no turn-end model)
ENDED_BY_LONG_SILENCE: Final = "long_silence"  # the model said incomplete: the full window passed
ENDED_BY_HANGUP: Final = "hangup"  # the caller hung up mid-utterance
TURN_ENDED_BY: Final = (ENDED_BY_TURN_END, ENDED_BY_SILENCE, ENDED_BY_LONG_SILENCE, ENDED_BY_HANGUP)
"""How a caller turn was judged over (the listener's ``CallerStopped.ended_by``; a turn's record)."""


@dataclass(frozen=True)
class TurnStages:
    """How one caller turn was answered, kept on the secretary utterance that answers it.

    Times are seconds from the call's answer, like an utterance's; None: the
    stage did not happen. Voice-to-voice runs from ``speech_end_s`` to the
    reply's own first audio; ``first_audio_s`` is the first audio of anything
    (a filler, when ``fillers`` > 0).
    """

    speech_end_s: float  # the caller's voice ended
    endpoint_s: float  # the turn was judged over
    ended_by: str = ENDED_BY_SILENCE  # one of TURN_ENDED_BY
    stt_final_s: float | None = None  # the (last) transcript the reply answers was final
    first_text_s: float | None = None  # the dialogue's first text of the reply
    first_audio_s: float | None = None  # the first frame on the line: a filler or the reply
    reply_audio_s: float | None = None  # the reply's own first frame (after its fillers)
    fillers: int = 0  # fillers played before the reply

    def __post_init__(self) -> None:
        if self.ended_by not in TURN_ENDED_BY:
            raise ValueError(f"ended_by must be one of {', '.join(TURN_ENDED_BY)}, got {self.ended_by!r}")
        for name in ("speech_end_s", "endpoint_s", "stt_final_s", "first_text_s", "first_audio_s", "reply_audio_s"):
            value = getattr(self, name)
            _check_finite(name, value)
            if value is not None:
                object.__setattr__(self, name, round(float(value), 3))
        if isinstance(self.fillers, bool) or not isinstance(self.fillers, int) or self.fillers < 0:
            raise ValueError(f"fillers must be a whole number >= 0, got {self.fillers!r}")

    @property
    def voice_to_voice_ms(self) -> float | None:
        """From the caller's voice ending to the reply's own first audio; None: no reply audio went out."""
        return None if self.reply_audio_s is None else round((self.reply_audio_s - self.speech_end_s) * 1000, 1)

    @property
    def to_any_audio_ms(self) -> float | None:
        """From the caller's voice ending to the first audio of anything (filler or reply)."""
        return None if self.first_audio_s is None else round((self.first_audio_s - self.speech_end_s) * 1000, 1)

    def as_dict(self) -> dict[str, object]:
        return {
            "speech_end_s": self.speech_end_s, "endpoint_s": self.endpoint_s, "ended_by": self.ended_by,
            "stt_final_s": self.stt_final_s, "first_text_s": self.first_text_s, "first_audio_s": self.first_audio_s,
            "reply_audio_s": self.reply_audio_s, "fillers": self.fillers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnStages:
        return cls(
            speech_end_s=float(data["speech_end_s"]), endpoint_s=float(data["endpoint_s"]),
            ended_by=str(data.get("ended_by", ENDED_BY_SILENCE)), stt_final_s=_optional_float(data, "stt_final_s"),
            first_text_s=_optional_float(data, "first_text_s"), first_audio_s=_optional_float(data, "first_audio_s"),
            reply_audio_s=_optional_float(data, "reply_audio_s"), fillers=int(data.get("fillers", 0)),
        )


@dataclass(frozen=True)
class Utterance:
    """One turn. Times are seconds from the call's answer (the audio tracks' zero)."""

    role: Role
    text: str  # for the secretary: what the caller actually heard (cut at barge-in)
    start_s: float
    end_s: float
    interrupted: bool = False  # secretary cut by barge-in / caller cut by hang-up
    planned_text: str | None = None  # secretary only: the full reply it meant to say
    source: str | None = None  # e.g. "llm:local", "scripted", "greeting"
    heard_by: str | None = None  # secretary cut short: how ``text`` was found ("audio_share": no word timings)
    turn: TurnStages | None = None  # secretary answering a caller turn: its stages (the key only when present)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be 'caller' or 'secretary', got {self.role!r}")
        if not isinstance(self.text, str):
            raise TypeError(f"text must be a string, got {type(self.text).__name__}")
        _check_finite("start_s", self.start_s)
        _check_finite("end_s", self.end_s)
        # canonical types: equal utterances serialize identically (the JSON cache relies on it)
        object.__setattr__(self, "start_s", float(self.start_s))
        object.__setattr__(self, "end_s", float(self.end_s))
        object.__setattr__(self, "interrupted", bool(self.interrupted))
        if self.turn is not None and not isinstance(self.turn, TurnStages):
            raise TypeError(f"turn must be TurnStages or None, got {type(self.turn).__name__}")

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "role": self.role, "text": self.text, "start_s": self.start_s, "end_s": self.end_s,
            "interrupted": self.interrupted, "planned_text": self.planned_text, "source": self.source,
            "heard_by": self.heard_by,
        }
        if self.turn is not None:
            data["turn"] = self.turn.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Utterance:
        return cls(
            role=data["role"],
            text=str(data["text"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            interrupted=bool(data.get("interrupted", False)),
            planned_text=data.get("planned_text"),
            source=data.get("source"),
            heard_by=data.get("heard_by"),
            turn=TurnStages.from_dict(data["turn"]) if isinstance(data.get("turn"), dict) else None,
        )


@dataclass
class CallRecordHeader:
    """Everything about a call that is not an utterance. Times are unix seconds."""

    call_id: str
    caller: str | None
    persona: str
    language: str
    started_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    outcome: str = IN_PROGRESS  # in_progress | message_taken | declined | caller_hung_up | no_speech | ...
    end_reason: str | None = None  # the modem's / flow's reason, free text
    message: dict[str, str | None] = field(default_factory=dict)  # {"name", "reason", "callback_number"}
    summary: str | None = None
    dtmf: list[dict[str, Any]] = field(default_factory=list)  # [{"digit": "0", "at_s": 12.0}]
    # the audio tracks: {"complete", "lost_s", "reason", "gaps", "audio_deleted"}; None while unknown or not recorded
    recording: dict[str, Any] | None = None

    def copy(self) -> CallRecordHeader:
        return replace(self, message=dict(self.message), dtmf=copy.deepcopy(self.dtmf),
                       recording=copy.deepcopy(self.recording))


# ---------------------------------------------------------------- JSON shape


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def record_to_dict(header: CallRecordHeader, utterances: tuple[Utterance, ...]) -> dict[str, object]:
    """The ``transcript.json`` document."""
    return {
        "version": FORMAT_VERSION,
        "call_id": header.call_id,
        "caller": header.caller,
        "persona": header.persona,
        "language": header.language,
        "started_at": _iso_utc(header.started_at),
        "started_ts": header.started_at,
        "answered_at": header.answered_at,
        "ended_at": header.ended_at,
        "duration_s": header.duration_s,
        "outcome": header.outcome,
        "end_reason": header.end_reason,
        "message": dict(header.message),
        "summary": header.summary,
        "dtmf": [dict(d) for d in header.dtmf],
        "recording": copy.deepcopy(header.recording),
        "utterances": [u.as_dict() for u in utterances],
    }


@functools.lru_cache(maxsize=2048)
def _utterance_json(u: Utterance) -> str:
    """One utterance as it sits in the indented document (utterances are immutable: cached)."""
    return textwrap.indent(json.dumps(u.as_dict(), ensure_ascii=False, indent=2, allow_nan=False), "    ")


_EMPTY_UTTERANCES: Final = '"utterances": []\n}'


def record_json(header: CallRecordHeader, utterances: tuple[Utterance, ...]) -> str:
    """``json.dumps(record_to_dict(...), ensure_ascii=False, indent=2)``, built without re-encoding utterances.

    The indenting encoder is pure Python; encoding only the header and reusing
    each utterance's text keeps a write cheap in CPU (and in GIL time).
    """
    text = json.dumps(record_to_dict(header, ()), ensure_ascii=False, indent=2, allow_nan=False)
    if not utterances:
        return text
    assert text.endswith(_EMPTY_UTTERANCES)
    body = ",\n".join(_utterance_json(u) for u in utterances)
    return f'{text[: -len(_EMPTY_UTTERANCES)]}"utterances": [\n{body}\n  ]\n}}'


def _optional_float(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    return None if value is None else float(value)


def _started_ts(data: dict[str, Any]) -> float:
    if data.get("started_ts") is not None:
        return float(data["started_ts"])
    return datetime.fromisoformat(str(data["started_at"])).timestamp()


def record_from_dict(data: dict[str, Any]) -> tuple[CallRecordHeader, list[Utterance]]:
    """Inverse of :func:`record_to_dict`; raises KeyError/TypeError/ValueError on a bad document."""
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported transcript version {version!r} (this build reads {FORMAT_VERSION})")
    header = CallRecordHeader(
        call_id=str(data["call_id"]),
        caller=data.get("caller"),
        persona=str(data["persona"]),
        language=str(data["language"]),
        started_at=_started_ts(data),
        answered_at=_optional_float(data, "answered_at"),
        ended_at=_optional_float(data, "ended_at"),
        duration_s=_optional_float(data, "duration_s"),
        outcome=str(data.get("outcome", IN_PROGRESS)),
        end_reason=data.get("end_reason"),
        message=dict(data.get("message") or {}),
        summary=data.get("summary"),
        dtmf=[{"digit": str(d["digit"]), "at_s": float(d["at_s"])} for d in data.get("dtmf") or []],
        recording=_checked_recording(data.get("recording")),
    )
    return header, [Utterance.from_dict(u) for u in data.get("utterances") or []]


# ---------------------------------------------------------------- transcript.txt


def format_offset(seconds: float) -> str:
    """``[MM:SS.d]`` from the call's answer (minutes go past 59 on long calls)."""
    tenths = max(0, round(seconds * 10))
    minutes, rest = divmod(tenths, 600)
    return f"[{minutes:02d}:{rest // 10:02d}.{rest % 10}]"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(sep=" ", timespec="seconds")


def _duration_text(header: CallRecordHeader) -> str:
    if header.duration_s is None:
        return "(in progress)" if header.outcome == IN_PROGRESS else "-"
    whole = int(header.duration_s)
    return f"{whole // 60:02d}:{whole % 60:02d} ({header.duration_s:.1f} s)"


def _message_lines(message: dict[str, str | None]) -> list[str]:
    if not any(message.values()):
        return ["Message:  (none)"]
    lines = ["Message:"]
    keys = [*MESSAGE_LABELS, *(k for k in message if k not in MESSAGE_LABELS)]
    for key in keys:
        label = MESSAGE_LABELS.get(key, key)
        value = message.get(key)
        lines.append(f"  {label + ':':<10}{_one_line(value) if value else '-'}")
    return lines


def _header_lines(header: CallRecordHeader) -> list[str]:
    outcome = header.outcome + (f" ({_one_line(header.end_reason)})" if header.end_reason else "")
    return [
        f"Call:     {header.call_id}",
        f"Caller:   {header.caller or '(withheld)'}",
        f"Persona:  {header.persona} ({header.language})",
        f"Started:  {_local_time(header.started_at)}",
        f"Duration: {_duration_text(header)}",
        f"Outcome:  {outcome}",
        *_message_lines(header.message),
        f"Summary:  {_one_line(header.summary) if header.summary else '-'}",
        *_recording_lines(header.recording),
    ]


def _recording_lines(recording: dict[str, Any] | None) -> list[str]:
    if recording is None:
        return []
    if recording.get("audio_deleted"):
        return [f"Audio:    deleted ({_one_line(str(recording['audio_deleted']))})"]
    if recording.get("complete", True):
        return ["Audio:    complete"]
    reason = f"{recording['reason']}, " if recording.get("reason") else ""
    return [f"Audio:    incomplete ({reason}{float(recording.get('lost_s') or 0.0):.1f} s lost)"]


@functools.lru_cache(maxsize=2048)
def _utterance_line(u: Utterance) -> str:
    who = "Caller" if u.role == "caller" else "Secretary"
    mark = " [interrupted]" if u.interrupted else ""
    return f"{format_offset(u.start_s)} {who}: {_one_line(u.text)}{mark}"


def timeline_lines(header: CallRecordHeader, utterances: tuple[Utterance, ...]) -> list[str]:
    """Utterances and DTMF merged in time order (an utterance before a DTMF at the same time)."""
    entries: list[tuple[float, int, int, str]] = []
    for i, u in enumerate(utterances):
        entries.append((u.start_s, 0, i, _utterance_line(u)))
    for i, d in enumerate(header.dtmf):
        entries.append((float(d["at_s"]), 1, i, f"{format_offset(float(d['at_s']))} (DTMF {d['digit']})"))
    entries.sort(key=lambda e: e[:3])
    return [e[3] for e in entries]


def render_text(header: CallRecordHeader, utterances: tuple[Utterance, ...]) -> str:
    """The human-readable ``transcript.txt``."""
    body = timeline_lines(header, utterances) or ["(no speech)"]
    return "\n".join([*_header_lines(header), "", "Transcript:", *body]) + "\n"


# ---------------------------------------------------------------- atomic files


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in ``<path>.tmp``, flushed to disk; on failure (disk full) the temp file is removed again."""
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- the record


class CallRecord:
    """One call's directory. Every change is persisted at once, crash-safe.

    The sync methods may be called from any thread. The async ones change the
    in-memory state on the event loop (microseconds) and write the files in a
    worker thread, one write at a time under one ``asyncio.Lock``; a write
    always stores the newest state, so files never go backwards, and a write
    still finishes when its awaiting task is cancelled. If a write fails
    (disk full) the change stays in memory and goes out with the next write.
    """

    def __init__(self, call_dir: Path, header: CallRecordHeader, *, write_later: bool = False) -> None:
        """Start a new record: creates ``call_dir`` and writes both transcript files.

        Raises ``FileExistsError`` if ``call_dir`` already holds a transcript
        (use :meth:`load` to continue a record) and ``ValueError`` for a call id
        that is not a safe directory name. With ``write_later`` a record that
        cannot be written now (disk full) is kept in memory instead of raising:
        ``unwritten`` says why, and the next successful write stores it all.
        """
        if not is_valid_call_id(header.call_id):
            raise ValueError(f"call id {header.call_id!r} is not a safe directory name")
        self._init_state(Path(call_dir), header.copy(), [])
        if self.json_path.exists():
            raise FileExistsError(f"{self.json_path} already exists; use CallRecord.load to continue it")
        try:
            self._persist()
        except OSError as exc:
            if not write_later:
                raise
            self.unwritten = exc

    def _init_state(self, call_dir: Path, header: CallRecordHeader, utterances: list[Utterance]) -> None:
        self.call_dir = call_dir
        self._header = header
        self._utterances = sorted(utterances, key=lambda u: u.start_s)
        self._state_lock = threading.Lock()  # held briefly: mutation and snapshot
        self._io_lock = threading.Lock()  # held while writing files
        self._alock = asyncio.Lock()
        self._generation = 0
        self._written = -1
        self.unwritten: OSError | None = None  # why the newest state is not on disk (a failed write), else None

    @classmethod
    def load(cls, call_dir: Path) -> CallRecord:
        """Read a record back from ``transcript.json`` (nothing is written).

        Raises ``FileNotFoundError`` when there is no transcript and
        :class:`CorruptRecordError` when it cannot be parsed.
        """
        path = Path(call_dir) / TRANSCRIPT_JSON
        raw = path.read_bytes()
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise TypeError("top level is not a JSON object")
            header, utterances = record_from_dict(data)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptRecordError(f"{path}: corrupt call record: {type(e).__name__}: {e}") from e
        record = cls.__new__(cls)
        record._init_state(Path(call_dir), header, utterances)
        record._written = record._generation  # the files already hold this state
        return record

    # ------------------------------------------------------------ reading

    @property
    def json_path(self) -> Path:
        return self.call_dir / TRANSCRIPT_JSON

    @property
    def txt_path(self) -> Path:
        return self.call_dir / TRANSCRIPT_TXT

    @property
    def header(self) -> CallRecordHeader:
        """A copy of the header (change it with :meth:`update` / :meth:`add_dtmf`)."""
        with self._state_lock:
            return self._header.copy()

    @property
    def utterances(self) -> tuple[Utterance, ...]:
        """All utterances, ordered by ``start_s`` (equal starts keep the order they were added)."""
        with self._state_lock:
            return tuple(self._utterances)

    def as_dict(self) -> dict[str, object]:
        """The current ``transcript.json`` document."""
        header, utterances = self._snapshot()[1:]
        return record_to_dict(header, utterances)

    # ------------------------------------------------------------ sync changes

    def add_utterance(self, u: Utterance) -> None:
        self._apply_utterance(u)
        self._persist()

    def add_dtmf(self, digit: str, at_s: float) -> None:
        self._apply_dtmf(digit, at_s)
        self._persist()

    def update(self, **fields: Any) -> None:
        """Set header fields: answered_at, ended_at, duration_s, outcome, end_reason, message, summary, recording.

        ``message`` replaces the whole slot dict. Any other name raises TypeError.
        """
        self._apply_update(fields)
        self._persist()

    def note(self, **fields: Any) -> None:
        """Set header fields in memory only: they go to disk with the next write (same fields as ``update``)."""
        self._apply_update(fields)

    # ------------------------------------------------------------ async changes

    async def aadd_utterance(self, u: Utterance) -> None:
        self._apply_utterance(u)
        await self._apersist()

    async def aadd_dtmf(self, digit: str, at_s: float) -> None:
        self._apply_dtmf(digit, at_s)
        await self._apersist()

    async def aupdate(self, **fields: Any) -> None:
        self._apply_update(fields)
        await self._apersist()

    async def aflush(self) -> None:
        """Write the newest state if it is not on disk yet (a retry after a failed write)."""
        await self._apersist()

    async def _apersist(self) -> None:
        async with self._alock:
            await asyncio.shield(asyncio.to_thread(self._persist))

    # ------------------------------------------------------------ internals

    def _apply_utterance(self, u: Utterance) -> None:
        if not isinstance(u, Utterance):
            raise TypeError(f"expected an Utterance, got {type(u).__name__}")
        with self._state_lock:
            bisect.insort_right(self._utterances, u, key=lambda x: x.start_s)
            self._generation += 1

    def _apply_dtmf(self, digit: str, at_s: float) -> None:
        if not isinstance(digit, str) or digit.upper() not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        _check_finite("at_s", at_s)
        entry = {"digit": digit.upper(), "at_s": float(at_s)}
        with self._state_lock:
            bisect.insort_right(self._header.dtmf, entry, key=lambda d: float(d["at_s"]))
            self._generation += 1

    def _apply_update(self, changes: dict[str, Any]) -> None:
        checked = {name: _checked_field(name, value) for name, value in changes.items()}
        with self._state_lock:
            for name, value in checked.items():
                setattr(self._header, name, value)
            self._generation += 1

    def _snapshot(self) -> tuple[int, CallRecordHeader, tuple[Utterance, ...]]:
        with self._state_lock:
            return self._generation, self._header.copy(), tuple(self._utterances)

    def _persist(self) -> None:
        with self._io_lock:
            generation, header, utterances = self._snapshot()
            if generation == self._written:
                return  # a later write already stored this state
            doc = record_json(header, utterances) + "\n"
            try:
                self.call_dir.mkdir(parents=True, exist_ok=True)  # a record started on a full disk has none yet
                json_tmp = _write_temp(self.json_path, doc.encode("utf-8"))
                try:
                    txt_tmp = _write_temp(self.txt_path, render_text(header, utterances).encode("utf-8"))
                except OSError:
                    with contextlib.suppress(OSError):
                        os.unlink(json_tmp)
                    raise
                os.replace(json_tmp, self.json_path)
                os.replace(txt_tmp, self.txt_path)
                _fsync_dir(self.call_dir)
            except OSError as exc:
                self.unwritten = exc
                raise
            self._written = generation
            self.unwritten = None

    def __repr__(self) -> str:
        outcome, count = self._header.outcome, len(self._utterances)
        return f"CallRecord({str(self.call_dir)!r}, outcome={outcome!r}, utterances={count})"


_FLOAT_FIELDS: Final = frozenset({"answered_at", "ended_at", "duration_s"})
_OPTIONAL_TEXT_FIELDS: Final = frozenset({"end_reason", "summary"})


def _checked_field(name: str, value: Any) -> Any:
    if name not in UPDATABLE_FIELDS:
        allowed = ", ".join(sorted(UPDATABLE_FIELDS))
        raise TypeError(f"CallRecord.update() got an unexpected field {name!r} (allowed: {allowed})")
    if name in _FLOAT_FIELDS:
        if value is None:
            return None
        if not isinstance(value, int | float):
            raise TypeError(f"{name} must be a number or None, got {type(value).__name__}")
        _check_finite(name, value)
        return float(value)
    if name in _OPTIONAL_TEXT_FIELDS and value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")
    if name == "outcome" and (not isinstance(value, str) or not value):
        raise TypeError(f"outcome must be a non-empty string, got {value!r}")
    if name == "message":
        return _checked_message(value)
    if name == "recording":
        return _checked_recording(value)
    return value


def _checked_recording(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"recording must be a dict or None, got {type(value).__name__}")
    unknown = set(value) - RECORDING_KEYS
    if unknown:
        raise TypeError(f"recording has unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(RECORDING_KEYS))})")
    return copy.deepcopy(value)


def _checked_message(value: Any) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise TypeError(f"message must be a dict, got {type(value).__name__}")
    for key, slot in value.items():
        if not isinstance(key, str) or (slot is not None and not isinstance(slot, str)):
            raise TypeError(f"message slots must map str to str or None, got {key!r}: {slot!r}")
    return dict(cast(dict[str, str | None], value))


def read_utterances(record_dir: Path) -> list[dict[str, Any]]:
    """The utterances of a call record's ``transcript.json`` (each has a text); [] if it is gone or unreadable."""
    try:
        data = json.loads((record_dir / "transcript.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    utterances = data.get("utterances", []) if isinstance(data, dict) else []
    return [u for u in utterances if isinstance(u, dict) and isinstance(u.get("text"), str)]

