"""CallRecord: transcript.json/.txt written at every change, crash-safe, readable back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.records import call_record
from daemon.records.call_record import (
    TRANSCRIPT_JSON,
    TRANSCRIPT_TXT,
    CallRecord,
    CallRecordHeader,
    CorruptRecordError,
    Utterance,
    format_offset,
    is_valid_call_id,
)

REPO = Path(__file__).resolve().parents[3]
STARTED = 1732451696.25  # 2024-11-24 12:34:56.250 UTC
CALL_ID = "20241124T123456Z-1a2b3c"

JSON_KEYS = [
    "version", "call_id", "caller", "persona", "language", "started_at", "started_ts", "answered_at",
    "ended_at", "duration_s", "outcome", "end_reason", "message", "summary", "dtmf", "recording", "utterances",
]
UTTERANCE_KEYS = ["role", "text", "start_s", "end_s", "interrupted", "planned_text", "source", "heard_by"]


def make_header(**overrides: Any) -> CallRecordHeader:
    values: dict[str, Any] = {
        "call_id": CALL_ID, "caller": "+79161234567", "persona": "anna", "language": "ru", "started_at": STARTED,
    }
    values.update(overrides)
    return CallRecordHeader(**values)


def on_disk(call_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((call_dir / TRANSCRIPT_JSON).read_text("utf-8"))
    return data


def said(role: str, text: str, start: float, end: float, **kw: Any) -> Utterance:
    return Utterance(role, text, start, end, **kw)  # type: ignore[arg-type]


@pytest.fixture
def moscow_time() -> Iterator[None]:
    """Local time UTC+3 (a POSIX TZ string: needs no tz database)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "MSK-3"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


# ---------------------------------------------------------------- shape and persistence


def test_new_record_writes_both_files_at_once(tmp_path: Path) -> None:
    call_dir = tmp_path / "calls" / CALL_ID
    CallRecord(call_dir, make_header())
    data = on_disk(call_dir)
    assert list(data) == JSON_KEYS
    assert data["version"] == 1 and data["call_id"] == CALL_ID and data["outcome"] == "in_progress"
    assert data["started_ts"] == STARTED
    assert data["started_at"] == "2024-11-24T12:34:56.250+00:00"
    assert datetime.fromisoformat(data["started_at"]).timestamp() == STARTED
    assert data["message"] == {} and data["dtmf"] == [] and data["utterances"] == []
    assert (call_dir / TRANSCRIPT_TXT).read_text("utf-8").startswith(f"Call:     {CALL_ID}\n")
    assert sorted(p.name for p in call_dir.iterdir()) == [TRANSCRIPT_JSON, TRANSCRIPT_TXT]


def test_every_change_is_on_disk_without_any_close(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    record.update(answered_at=STARTED + 4.0)
    assert on_disk(record.call_dir)["answered_at"] == STARTED + 4.0
    record.add_utterance(said("secretary", "Hello, this is Anna.", 0.2, 1.9, source="greeting"))
    assert on_disk(record.call_dir)["utterances"] == [
        {"role": "secretary", "text": "Hello, this is Anna.", "start_s": 0.2, "end_s": 1.9,
         "interrupted": False, "planned_text": None, "source": "greeting", "heard_by": None}
    ]
    assert list(on_disk(record.call_dir)["utterances"][0]) == UTTERANCE_KEYS
    record.add_dtmf("5", 2.5)
    assert on_disk(record.call_dir)["dtmf"] == [{"digit": "5", "at_s": 2.5}]
    record.update(outcome="message_taken", summary="Wants a call back", ended_at=STARTED + 30, duration_s=26.0)
    data = on_disk(record.call_dir)
    assert (data["outcome"], data["summary"], data["duration_s"]) == ("message_taken", "Wants a call back", 26.0)
    assert "Outcome:  message_taken" in (record.call_dir / TRANSCRIPT_TXT).read_text("utf-8")
    del record  # no close exists; nothing is left to flush
    assert CallRecord.load(tmp_path / CALL_ID).header.outcome == "message_taken"


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from daemon.records.call_record import CallRecord, CallRecordHeader, Utterance
    r = CallRecord(Path(sys.argv[1]), CallRecordHeader("crash-1", "+7999", "anna", "ru", 1700000000.0))
    for i in range(3):
        r.add_utterance(Utterance("caller", f"фраза {i}", i * 2.0, i * 2.0 + 1.5))
    r.update(message={"name": "Пётр", "reason": None, "callback_number": None})
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_sigkill_mid_call_leaves_a_complete_record(tmp_path: Path) -> None:
    call_dir = tmp_path / "crash-1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(call_dir)], env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    record = CallRecord.load(call_dir)
    assert [u.text for u in record.utterances] == ["фраза 0", "фраза 1", "фраза 2"]
    assert record.header.message["name"] == "Пётр" and record.header.outcome == "in_progress"
    assert "[00:04.0] Caller: фраза 2" in (call_dir / TRANSCRIPT_TXT).read_text("utf-8")


def test_crash_between_temp_write_and_rename_keeps_last_complete_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    record.add_utterance(said("caller", "first", 1.0, 2.0))
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        record.add_utterance(said("caller", "second", 3.0, 4.0))
    # what a restarted process sees: the previous complete state, plus a stray temp file
    assert [u["text"] for u in on_disk(record.call_dir)["utterances"]] == ["first"]
    assert (record.call_dir / (TRANSCRIPT_JSON + ".tmp")).exists()
    assert [u.text for u in CallRecord.load(record.call_dir).utterances] == ["first"]
    # the running process kept the change in memory: the next write carries it
    monkeypatch.setattr(os, "replace", real_replace)
    record.add_utterance(said("caller", "third", 5.0, 6.0))
    assert [u["text"] for u in on_disk(record.call_dir)["utterances"]] == ["first", "second", "third"]
    assert not list(record.call_dir.glob("*.tmp"))


def test_torn_temp_files_are_ignored_then_replaced(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    record.add_utterance(said("caller", "kept", 1.0, 2.0))
    (record.call_dir / (TRANSCRIPT_JSON + ".tmp")).write_bytes(b'{"version": 1, "call_id": "20241124T1')
    (record.call_dir / (TRANSCRIPT_TXT + ".tmp")).write_bytes(b"Call:     2024")
    loaded = CallRecord.load(record.call_dir)
    assert [u.text for u in loaded.utterances] == ["kept"]
    loaded.add_utterance(said("secretary", "next", 2.5, 3.0))
    assert not list(record.call_dir.glob("*.tmp"))
    assert [u["text"] for u in on_disk(record.call_dir)["utterances"]] == ["kept", "next"]


def test_existing_transcript_is_never_overwritten_by_a_new_record(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    record.add_utterance(said("caller", "precious", 1.0, 2.0))
    with pytest.raises(FileExistsError):
        CallRecord(tmp_path / CALL_ID, make_header())
    assert len(on_disk(record.call_dir)["utterances"]) == 1


def test_directory_made_by_the_audio_recorder_first_is_fine(tmp_path: Path) -> None:
    call_dir = tmp_path / CALL_ID
    call_dir.mkdir()
    (call_dir / "caller.wav").write_bytes(b"RIFF")
    CallRecord(call_dir, make_header())
    assert (call_dir / "caller.wav").read_bytes() == b"RIFF" and (call_dir / TRANSCRIPT_JSON).exists()


# ---------------------------------------------------------------- content


def test_russian_text_survives_as_utf8(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header(persona="Анна"))
    record.add_utterance(said("caller", "Здравствуйте, это Пётр Иванов.", 1.0, 3.0))
    record.add_utterance(said("secretary", "Добрый день! Чем могу помочь?", 3.5, 5.0, source="llm:local"))
    record.update(message={"name": "Пётр Иванов", "reason": "счёт за май", "callback_number": "+79161234567"},
                  summary="Пётр просит перезвонить по поводу счёта.")
    raw = (record.call_dir / TRANSCRIPT_JSON).read_bytes()
    assert "Здравствуйте, это Пётр Иванов.".encode() in raw and b"\\u04" not in raw
    txt = (record.call_dir / TRANSCRIPT_TXT).read_text("utf-8")
    assert "[00:01.0] Caller: Здравствуйте, это Пётр Иванов." in txt
    assert "[00:03.5] Secretary: Добрый день! Чем могу помочь?" in txt
    assert "  Name:     Пётр Иванов" in txt and "Summary:  Пётр просит перезвонить по поводу счёта." in txt
    loaded = CallRecord.load(record.call_dir)
    assert loaded.utterances == record.utterances and loaded.header == record.header


def test_interrupted_speech_is_marked_and_keeps_what_was_meant(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header(language="en"))
    planned = "I can take a message, or you can call back after five when she is free."
    record.add_utterance(
        said("secretary", "I can take a message, or", 2.0, 3.4, interrupted=True, planned_text=planned)
    )
    record.add_utterance(said("caller", "Just tell her Bob called", 3.3, 5.0, interrupted=True))
    u = on_disk(record.call_dir)["utterances"][0]
    assert (u["text"], u["interrupted"], u["planned_text"]) == ("I can take a message, or", True, planned)
    lines = (record.call_dir / TRANSCRIPT_TXT).read_text("utf-8").splitlines()
    assert "[00:02.0] Secretary: I can take a message, or [interrupted]" in lines
    assert "[00:03.3] Caller: Just tell her Bob called [interrupted]" in lines


def test_dtmf_and_utterances_merge_in_time_order(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header(language="en"))
    record.add_utterance(said("caller", "press what", 5.0, 6.0))
    record.add_dtmf("1", 3.0)
    record.add_utterance(said("secretary", "Press 1 for", 1.0, 2.5))
    record.add_dtmf("#", 5.0)  # same time as an utterance: after it
    record.add_dtmf("0", 0.5)
    record.add_dtmf("*", 12.0)
    lines = (record.call_dir / TRANSCRIPT_TXT).read_text("utf-8").split("Transcript:\n", 1)[1].splitlines()
    assert lines == [
        "[00:00.5] (DTMF 0)",
        "[00:01.0] Secretary: Press 1 for",
        "[00:03.0] (DTMF 1)",
        "[00:05.0] Caller: press what",
        "[00:05.0] (DTMF #)",
        "[00:12.0] (DTMF *)",
    ]
    assert [d["digit"] for d in on_disk(record.call_dir)["dtmf"]] == ["0", "1", "#", "*"]


def test_utterances_are_kept_in_start_order(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    record.add_utterance(said("secretary", "reply", 4.0, 6.0))
    record.add_utterance(said("caller", "question (recognised late)", 1.0, 3.5))
    record.add_utterance(said("caller", "same start, added later", 4.0, 4.5))
    assert [u.text for u in record.utterances] == ["question (recognised late)", "reply", "same start, added later"]
    assert [u["start_s"] for u in on_disk(record.call_dir)["utterances"]] == [1.0, 4.0, 4.0]


def test_txt_format(tmp_path: Path, moscow_time: None) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header(answered_at=STARTED + 6))
    record.add_utterance(said("secretary", "Здравствуйте! Это Анна,\nсекретарь.", 0.2, 2.0, source="greeting"))
    record.add_utterance(said("caller", "Это Пётр, перезвоните мне.", 3.24, 5.0))
    record.add_dtmf("0", 12.0)
    record.update(outcome="message_taken", end_reason="caller hung up", duration_s=83.44,
                  message={"name": "Пётр", "reason": None, "callback_number": "+79161234567"},
                  summary="Пётр просит перезвонить.")
    assert (record.call_dir / TRANSCRIPT_TXT).read_text("utf-8") == textwrap.dedent(
        f"""\
        Call:     {CALL_ID}
        Caller:   +79161234567
        Persona:  anna (ru)
        Started:  2024-11-24 15:34:56+03:00
        Duration: 01:23 (83.4 s)
        Outcome:  message_taken (caller hung up)
        Message:
          Name:     Пётр
          Reason:   -
          Callback: +79161234567
        Summary:  Пётр просит перезвонить.

        Transcript:
        [00:00.2] Secretary: Здравствуйте! Это Анна, секретарь.
        [00:03.2] Caller: Это Пётр, перезвоните мне.
        [00:12.0] (DTMF 0)
        """
    )


def test_txt_of_a_fresh_record(tmp_path: Path, moscow_time: None) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header(caller=None))
    assert (record.call_dir / TRANSCRIPT_TXT).read_text("utf-8") == textwrap.dedent(
        f"""\
        Call:     {CALL_ID}
        Caller:   (withheld)
        Persona:  anna (ru)
        Started:  2024-11-24 15:34:56+03:00
        Duration: (in progress)
        Outcome:  in_progress
        Message:  (none)
        Summary:  -

        Transcript:
        (no speech)
        """
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "[00:00.0]"), (3.24, "[00:03.2]"), (3.25, "[00:03.2]"), (59.96, "[01:00.0]"),
        (3725.5, "[62:05.5]"), (-1, "[00:00.0]"),
    ],
)
def test_format_offset(seconds: float, text: str) -> None:
    assert format_offset(seconds) == text


def test_fast_json_equals_the_plain_encoder() -> None:
    h = make_header(message={"name": "Пётр", "reason": None}, summary="«кавычки» \"q\"\n", outcome="declined")
    h.dtmf = [{"digit": "1", "at_s": 2.0}]
    us = (
        said("secretary", "Здравствуйте", 0, 1, source="greeting"),
        said("caller", "tab\tand \\ backslash", 1.5, 2.5, interrupted=True),
        said("secretary", "cut", 3, 4, interrupted=True, planned_text="cut short"),
    )
    for utterances in ((), us[:1], us):
        expected = json.dumps(call_record.record_to_dict(h, utterances), ensure_ascii=False, indent=2)
        assert call_record.record_json(h, utterances) == expected
        assert call_record.record_json(h, utterances) == expected  # cached utterances too


def test_utterance_numbers_are_canonical() -> None:
    u = said("caller", "x", 1, 2, interrupted=0)
    assert u.as_dict() == {"role": "caller", "text": "x", "start_s": 1.0, "end_s": 2.0, "interrupted": False,
                           "planned_text": None, "source": None, "heard_by": None}
    assert isinstance(u.start_s, float) and u.interrupted is False
    assert json.dumps(u.as_dict()) == json.dumps(said("caller", "x", 1.0, 2.0).as_dict())


# ---------------------------------------------------------------- load


def test_load_round_trip(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header(answered_at=STARTED + 5))
    record.add_utterance(said("secretary", "Hi", 0.0, 0.8, source="greeting"))
    record.add_utterance(
        said("secretary", "Let me", 2.0, 2.4, interrupted=True, planned_text="Let me check.", source="llm:local")
    )
    record.add_dtmf("9", 7.25)
    record.update(outcome="declined", end_reason="spam", message={"name": "X", "extra": "y"}, summary="s",
                  ended_at=STARTED + 20, duration_s=15)
    loaded = CallRecord.load(record.call_dir)
    assert loaded.header == record.header and loaded.utterances == record.utterances
    assert loaded.as_dict() == on_disk(record.call_dir)
    mtime = (record.call_dir / TRANSCRIPT_JSON).stat().st_mtime_ns
    CallRecord.load(record.call_dir)
    assert (record.call_dir / TRANSCRIPT_JSON).stat().st_mtime_ns == mtime  # load writes nothing
    loaded.add_utterance(said("caller", "bye", 16.0, 16.5))
    assert len(CallRecord.load(record.call_dir).utterances) == 3


def test_load_falls_back_to_iso_start_time(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    data = on_disk(record.call_dir)
    del data["started_ts"]
    (record.call_dir / TRANSCRIPT_JSON).write_text(json.dumps(data), "utf-8")
    assert CallRecord.load(record.call_dir).header.started_at == STARTED


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"version": 1, "call_id": "x", "utter', "JSONDecodeError"),
        (b"", "JSONDecodeError"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": 1, "call_id": "x"}', "KeyError"),
        (b'{"version": 2, "call_id": "x", "persona": "a", "language": "en", "started_ts": 1}', "version 2"),
        (b'{"version": 1, "call_id": "x", "persona": "a", "language": "en", "started_ts": 1,'
         b' "utterances": [{"role": "dog", "text": "", "start_s": 0, "end_s": 1}]}', "role"),
        (b"\xff\xfe\x00garbage", "UnicodeDecodeError"),
    ],
)
def test_load_of_a_corrupt_file_raises_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    call_dir = tmp_path / "broken"
    call_dir.mkdir()
    (call_dir / TRANSCRIPT_JSON).write_bytes(content)
    with pytest.raises(CorruptRecordError, match=reason) as info:
        CallRecord.load(call_dir)
    assert str(call_dir / TRANSCRIPT_JSON) in str(info.value) and isinstance(info.value, ValueError)


def test_load_without_transcript_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CallRecord.load(tmp_path)


# ---------------------------------------------------------------- validation


def test_update_rejects_unknown_and_fixed_fields(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    bad: dict[str, Any]
    for bad in ({"colour": "red"}, {"call_id": "other"}, {"started_at": 1.0}, {"dtmf": []}):
        with pytest.raises(TypeError, match=next(iter(bad))):
            record.update(**bad)
    with pytest.raises(TypeError):
        record.update(message="not a dict")
    with pytest.raises(TypeError):
        record.update(message={"name": 5})
    with pytest.raises(TypeError):
        record.update(duration_s="long")
    with pytest.raises(TypeError):
        record.update(outcome=None)
    with pytest.raises(ValueError):
        record.update(ended_at=float("nan"))
    assert on_disk(record.call_dir)["outcome"] == "in_progress"
    record.update(duration_s=None, summary=None)


def test_message_update_replaces_the_slots(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    slots: dict[str, str | None] = {"name": "Ann", "reason": None, "callback_number": None}
    record.update(message=slots)
    slots["reason"] = "mutated by the caller afterwards"
    assert record.header.message["reason"] is None
    record.update(message={"name": "Ann", "reason": "invoice", "callback_number": None})
    assert on_disk(record.call_dir)["message"] == {"name": "Ann", "reason": "invoice", "callback_number": None}


def test_header_property_is_a_copy(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    record.add_dtmf("1", 1.0)
    header = record.header
    header.outcome = "changed"
    header.message["name"] = "changed"
    header.dtmf.append({"digit": "2", "at_s": 2.0})
    assert record.header.outcome == "in_progress" and record.header.message == {} and len(record.header.dtmf) == 1


def test_invalid_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="role"):
        said("owner", "hi", 0, 1)
    with pytest.raises(ValueError, match="start_s"):
        said("caller", "hi", float("inf"), 1)
    with pytest.raises(ValueError, match="safe directory name"):
        CallRecord(tmp_path / "x", make_header(call_id="../escape"))
    record = CallRecord(tmp_path / CALL_ID, make_header())
    for digit in ("", "12", "x", "E"):
        with pytest.raises(ValueError, match="DTMF"):
            record.add_dtmf(digit, 1.0)
    with pytest.raises(TypeError):
        record.add_utterance({"role": "caller"})  # type: ignore[arg-type]
    record.add_dtmf("a", 1.0)
    assert on_disk(record.call_dir)["dtmf"] == [{"digit": "A", "at_s": 1.0}]


@pytest.mark.parametrize(
    ("call_id", "valid"),
    [(CALL_ID, True), ("a", True), ("a.b_c-d", True), ("..", False), ("a..b", False), (".hidden", False),
     ("", False), ("a/b", False), ("a b", False), ("звонок", False), ("x" * 128, True), ("x" * 129, False)],
)
def test_call_id_rule(call_id: str, valid: bool) -> None:
    assert is_valid_call_id(call_id) is valid


# ---------------------------------------------------------------- async


async def test_async_writes_keep_call_order(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    await asyncio.gather(*(record.aadd_utterance(said("caller", f"u{i}", float(i), i + 0.5)) for i in range(40)))
    await asyncio.gather(*(record.aupdate(outcome=f"o{i}") for i in range(20)))
    await asyncio.gather(*(record.aadd_dtmf(str(i % 10), float(i)) for i in range(12)))
    data = on_disk(record.call_dir)
    assert [u["text"] for u in data["utterances"]] == [f"u{i}" for i in range(40)]
    assert data["outcome"] == "o19"
    assert [d["at_s"] for d in data["dtmf"]] == [float(i) for i in range(12)]
    assert CallRecord.load(record.call_dir).as_dict() == record.as_dict()


async def test_async_writes_happen_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    threads: list[threading.Thread] = []
    real_write = call_record._write_temp

    def spy(path: Path, data: bytes) -> Path:
        threads.append(threading.current_thread())
        return real_write(path, data)

    monkeypatch.setattr(call_record, "_write_temp", spy)
    await record.aadd_utterance(said("caller", "hi", 0.0, 1.0))
    assert threads and threading.main_thread() not in threads


async def test_cancelled_async_write_still_lands(tmp_path: Path) -> None:
    record = CallRecord(tmp_path / CALL_ID, make_header())
    task = asyncio.create_task(record.aupdate(outcome="caller_hung_up"))
    await asyncio.sleep(0)  # the change is applied, the write is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await record.aadd_dtmf("1", 1.0)  # queued behind it
    assert on_disk(record.call_dir)["outcome"] == "caller_hung_up"
