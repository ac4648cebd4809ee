"""The call view's timeline data and the status page's day of voice-to-voice (daemon/web/pages/call_figures.py).

Records are made by the daemon's own writers: ``CallRecord`` for the
transcript with each turn's ``TurnStages`` and ``CallRecorder`` for both
tracks, frame by frame as the line feeds them; the index is the real SQLite
``CallIndex``. The HTTP test runs a real call over the simulator in the whole
daemon (real broker, light engines) and reads its timeline as the page does.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon.records.call_index import CallIndex
from daemon.records.call_record import CallRecord, CallRecordHeader, TurnStages, Utterance
from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
from daemon.web.pages.call_figures import HISTOGRAM_STEP_MS, call_timeline, day_figures, last_day, track_peaks
from drivers.audio import LINE_RATE, CallRecorder
from tests.daemon.web.web_daemon import WebDaemon, web_daemon
from tests.support.mqtt_watch import MqttWatch

FRAME = LINE_RATE // 50  # one 20 ms line frame
BASE = "secretary/test-box"
CALLER = "+79161234567"


def _tone(seconds: float, hz: float, level: float = 0.4) -> np.ndarray:
    t = np.arange(round(seconds * LINE_RATE)) / LINE_RATE
    return (np.sin(2 * np.pi * hz * t) * level * 32767).astype(np.int16)


def _record_tracks(call_dir: Path, seconds: float, caller: list[tuple[float, float]],
                   secretary: list[tuple[float, float]]) -> dict[str, Any]:
    """Both tracks through the daemon's recorder, one 20 ms frame each way at a time; tones where each one talks."""
    tracks = {"caller": np.zeros(round(seconds * LINE_RATE), np.int16),
              "secretary": np.zeros(round(seconds * LINE_RATE), np.int16)}
    for name, spans, hz in (("caller", caller, 220.0), ("secretary", secretary, 330.0)):
        for start, end in spans:
            a, b = round(start * LINE_RATE), round(end * LINE_RATE)
            tracks[name][a:b] = _tone((b - a) / LINE_RATE, hz)
    recorder = CallRecorder(call_dir)
    for i in range(0, tracks["caller"].size, FRAME):
        recorder.write_caller(tracks["caller"][i:i + FRAME])
        recorder.write_secretary(tracks["secretary"][i:i + FRAME])
    recorder.close()
    return recorder.summary()


def _header(call_id: str, started_at: float) -> CallRecordHeader:
    return CallRecordHeader(call_id=call_id, caller=CALLER, persona="anna", language="en", started_at=started_at)


def _turn(speech_end: float, v2v_ms: float, *, fillers: int = 0, ended_by: str = "turn_end",
          reply: bool = True) -> TurnStages:
    endpoint = speech_end + 0.2
    reply_at = speech_end + v2v_ms / 1000
    return TurnStages(
        speech_end_s=speech_end, endpoint_s=endpoint, ended_by=ended_by, stt_final_s=endpoint + 0.1,
        first_text_s=endpoint + 0.25, first_audio_s=(speech_end + 1.0 if fillers else reply_at) if reply else None,
        reply_audio_s=reply_at if reply else None, fillers=fillers,
    )


def _write_call(calls_dir: Path, index: CallIndex, call_id: str, started_at: float,
                turns: list[TurnStages]) -> CallRecord:
    """A finished call whose secretary answered each of ``turns`` (the caller spoke before each)."""
    record = CallRecord(calls_dir / call_id, _header(call_id, started_at))
    record.add_utterance(Utterance("secretary", "Hello, you've reached Anna.", 0.1, 1.5, source="greeting"))
    for i, stages in enumerate(turns):
        record.add_utterance(Utterance("caller", f"line {i}", stages.speech_end_s - 1.2, stages.speech_end_s + 0.1,
                                       source="stt"))
        start = stages.reply_audio_s or stages.endpoint_s + 0.5
        record.add_utterance(Utterance("secretary", f"answer {i}", start, start + 1.0, source="scripted",
                                       turn=stages))
    record.update(ended_at=started_at + 60, duration_s=60.0, outcome="message_taken")
    index.upsert(record.header, record.call_dir)
    return record


# ---------------------------------------------------------------- the record keeps each turn's stages


def test_turn_stages_are_kept_on_the_answer_and_read_back(tmp_path: Path) -> None:
    stages = _turn(3.0, 640.0, fillers=1, ended_by="silence")
    record = CallRecord(tmp_path / "c1", _header("c1", time.time()))
    record.add_utterance(Utterance("caller", "my number is", 1.5, 3.05, source="stt"))
    record.add_utterance(Utterance("secretary", "Thank you.", 3.64, 4.5, source="scripted", turn=stages))
    doc = json.loads((tmp_path / "c1" / "transcript.json").read_text())
    assert "turn" not in doc["utterances"][0]  # only an answer carries a turn: older records read the same
    assert doc["utterances"][1]["turn"] == stages.as_dict()
    back = CallRecord.load(tmp_path / "c1").utterances[1].turn
    assert back == stages and back.voice_to_voice_ms == 640.0 and back.to_any_audio_ms == 1000.0
    with pytest.raises(ValueError, match="ended_by"):
        TurnStages(speech_end_s=1.0, endpoint_s=1.2, ended_by="guess")


# ---------------------------------------------------------------- one call's timeline


def test_timeline_puts_peaks_utterances_and_stages_at_their_times(tmp_path: Path) -> None:
    call_dir = tmp_path / "calls" / "c2"
    stages = _turn(3.0, 720.0, fillers=0)
    record = CallRecord(call_dir, _header("c2", time.time()))
    record.add_utterance(Utterance("secretary", "Hello, you've reached Anna.", 0.1, 1.3, source="greeting"))
    record.add_utterance(Utterance("caller", "This is John, call me back.", 1.6, 3.1, source="stt"))
    record.add_utterance(Utterance("secretary", "Thank you, John.", 3.72, 4.9, source="scripted", turn=stages))
    record.add_utterance(Utterance("caller", "and also", 5.2, 5.8, source="stt"))
    record.add_utterance(Utterance("secretary", "Sorry —", 5.0, 5.4, interrupted=True, planned_text="Sorry to hear",
                                   source="prompt"))
    summary = _record_tracks(call_dir, 6.0, caller=[(1.6, 3.0), (5.2, 5.8)], secretary=[(0.1, 1.3), (3.72, 4.9)])
    record.update(recording=summary, duration_s=6.0)

    data = call_timeline(call_dir, {"caller": call_dir / "caller.wav", "secretary": call_dir / "secretary.wav"})

    assert data["duration_s"] == 6.0
    for role, spans in (("caller", [(1.6, 3.0), (5.2, 5.8)]), ("secretary", [(0.1, 1.3), (3.72, 4.9)])):
        track = data["tracks"][role]
        assert track["available"] and track["step_s"] == 0.02 and len(track["peaks"]) == 300
        peaks = np.asarray(track["peaks"])
        at = np.arange(peaks.size) * track["step_s"]
        talking = np.zeros(peaks.size, bool)
        for start, end in spans:
            talking |= (at >= start + 0.02) & (at < end - 0.02)
        silent = np.ones(peaks.size, bool)
        for start, end in spans:
            silent &= (at < start - 0.04) | (at >= end + 0.02)
        level = round((20 * np.log10(0.4) + 60) / 60 * 100)  # the tones peak at 0.4 of full scale: -8 dB of 60
        assert np.abs(peaks[talking] - level).max() <= 1 and peaks[silent].max() == 0, role  # and digital silence
    assert [(u["role"], u["start_s"]) for u in data["utterances"]] == [
        ("secretary", 0.1), ("caller", 1.6), ("secretary", 3.72), ("secretary", 5.0), ("caller", 5.2)]

    [turn] = data["turns"]
    assert turn["caller_text"] == "This is John, call me back." and turn["reply_text"] == "Thank you, John."
    assert turn["voice_to_voice_ms"] == 720.0 and turn["endpoint_ms"] == 200.0 and turn["ended_by"] == "turn_end"
    assert turn["stt_ms"] == 100.0 and turn["first_text_ms"] == 250.0 and turn["first_audio_ms"] == 520.0
    segments = turn["stages"]
    assert [s["name"] for s in segments] == ["turn_end", "stt", "first_text", "first_audio"]
    assert segments[0]["start_s"] == 3.0 and segments[-1]["end_s"] == 3.72
    assert all(a["end_s"] == b["start_s"] for a, b in zip(segments, segments[1:]))  # back to back
    assert sum(s["ms"] for s in segments) == pytest.approx(720.0, abs=0.5)
    assert data["barge_ins"] == [{"at_s": 5.4, "text": "Sorry —"}]


def test_a_stage_that_ended_before_the_endpoint_has_no_width_and_fillers_are_counted(tmp_path: Path) -> None:
    early = TurnStages(speech_end_s=2.0, endpoint_s=2.25, stt_final_s=2.1, first_text_s=2.9, first_audio_s=3.25,
                       reply_audio_s=4.1, fillers=1)
    record = CallRecord(tmp_path / "c3", _header("c3", time.time()))
    record.add_utterance(Utterance("secretary", "One moment, please. Thanks.", 3.25, 5.0, turn=early))
    [turn] = call_timeline(tmp_path / "c3", {})["turns"]
    stt = turn["stages"][1]
    assert stt["name"] == "stt" and stt["start_s"] == stt["end_s"] == 2.25 and stt["ms"] == 0.0
    assert turn["stt_ms"] == -150.0  # the figure itself says the final came early
    assert turn["voice_to_voice_ms"] == 2100.0 and turn["to_any_audio_ms"] == 1250.0 and turn["fillers"] == 1


def test_missing_and_malformed_tracks_become_placeholders(tmp_path: Path) -> None:
    call_dir = tmp_path / "c4"
    record = CallRecord(call_dir, _header("c4", time.time()))
    record.add_utterance(Utterance("caller", "hello?", 0.5, 1.2))
    (call_dir / "caller.wav").write_bytes(b"RIFF but not really a wave file")
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(6400))
    data = call_timeline(call_dir, {"caller": call_dir / "caller.wav", "secretary": None})
    assert data["tracks"]["caller"] == {"available": False,
                                        "reason": data["tracks"]["caller"]["reason"]}
    assert data["tracks"]["caller"]["reason"].startswith("caller.wav is not a readable WAV file")
    assert data["tracks"]["secretary"] == {"available": False, "reason": "secretary.wav was not recorded or is gone"}
    assert data["utterances"][0]["text"] == "hello?"  # the page draws the speech regions instead
    stereo = track_peaks(tmp_path / "stereo.wav", "caller")
    assert not stereo["available"] and "2 channel(s), 16-bit at 16000 Hz" in stereo["reason"]
    record.update(recording={"complete": True, "lost_s": 0.0, "reason": None, "gaps": [],
                             "audio_deleted": "low disk space"})
    deleted = call_timeline(call_dir, {"caller": call_dir / "caller.wav"})["tracks"]["caller"]
    assert deleted == {"available": False, "reason": "the audio was deleted (low disk space)"}
    (call_dir / "transcript.json").write_text("{not json")
    assert call_timeline(call_dir, {})["error"].startswith("the call record cannot be read")
    assert call_timeline(tmp_path / "gone", {})["error"] == "the call's transcript.json is gone"


# ---------------------------------------------------------------- the last day


async def test_the_day_counts_every_turn_of_the_last_24_hours_only(tmp_path: Path) -> None:
    calls_dir = tmp_path / "calls"
    now = time.time()
    recent = {
        "a": [_turn(3.0, 520.0), _turn(8.0, 610.0, ended_by="silence")],
        "b": [_turn(3.0, 1480.0, fillers=1), _turn(9.0, 700.0, reply=False)],  # cut before its first frame
        "c": [_turn(4.0, 880.0, fillers=2), _turn(10.0, 455.0), _turn(15.0, 2600.0, fillers=1)],
    }
    with CallIndex(tmp_path / "secretary.db") as index:
        for n, (call_id, turns) in enumerate(recent.items()):
            _write_call(calls_dir, index, call_id, now - 3600 * (n + 1), turns)
        _write_call(calls_dir, index, "old", now - 30 * 3600, [_turn(3.0, 100.0), _turn(6.0, 5000.0)])
        _write_call(calls_dir, index, "greeting-only", now - 600, [])
        unreadable = _write_call(calls_dir, index, "broken", now - 1200, [_turn(3.0, 300.0)])
        (unreadable.call_dir / "transcript.json").write_text("[]")
        figures = await last_day(index, now)

    assert figures.calls == 5 and figures.unreadable == 1
    assert figures.turns == 7 and figures.measured == 6 and figures.fillers == 3
    expected = np.array([520.0, 610.0, 1480.0, 880.0, 455.0, 2600.0])
    for q, value in ((50, figures.p50_ms), (95, figures.p95_ms), (99, figures.p99_ms)):
        assert value == pytest.approx(np.percentile(expected, q), abs=0.1)
    assert figures.any_audio_p50_ms == pytest.approx(np.percentile([520, 610, 1000, 1000, 455, 1000], 50), abs=0.1)
    counts = {b["from_ms"]: b["count"] for b in figures.histogram if b["count"]}
    assert counts == {400: 1, 500: 1, 600: 1, 800: 1, 1400: 1, 2000: 1}  # 2600 ms falls in the last bin
    assert figures.histogram[-1]["to_ms"] is None and figures.histogram[0]["to_ms"] == HISTOGRAM_STEP_MS
    assert day_figures([]).turns == 0 and day_figures([]).p50_ms is None


# ---------------------------------------------------------------- the endpoint, on a real call


@pytest.fixture
async def box(broker: MosquittoBroker, tmp_path: Path) -> WebDaemon:
    async with web_daemon(broker, tmp_path) as daemon:
        yield daemon  # type: ignore[misc]


def _events(bus: MqttWatch) -> list[dict[str, Any]]:
    return [m.json() for m in bus.on(f"{BASE}/call/event")]


async def _until_event(bus: MqttWatch, enough: Any, timeout: float) -> None:
    await bus.wait_for(lambda m: m.topic == f"{BASE}/call/event" and enough(_events(bus)), timeout)


def _questions(events: list[dict[str, Any]]) -> int:
    """The secretary's whole lines that ask something: the scripted take-a-message policy ends each turn so."""
    return sum(1 for e in events if e.get("type") == "utterance" and e.get("role") == "secretary"
               and not e.get("interrupted") and e.get("text", "").rstrip().endswith("?"))


async def _settled(bus: MqttWatch, questions: int, timeout: float = 120) -> None:
    """Until the secretary has asked ``questions`` questions (it awaits the caller's answer)."""
    await _until_event(bus, lambda events: _questions(events) >= questions, timeout)
    await asyncio.sleep(0.5)


async def real_call(box: WebDaemon, lines: int = 2) -> str:
    """A call over the simulator: the caller says ``lines`` bundled lines, each answered, then hangs up."""
    script = caller_script("en")
    async with MqttWatch(box.broker, f"{BASE}/call/#") as bus:
        reply = await bus.request(f"{BASE}/cmd/simulator/call", json.dumps({"from": CALLER}).encode())
        assert reply["ok"], reply
        await _settled(bus, 1)  # the greeting
        for line in script[:lines]:
            asked = _questions(_events(bus))
            spoken = await bus.request(f"{BASE}/cmd/simulator/speak", json.dumps({"wav": str(line.wav)}).encode())
            assert spoken["ok"], spoken
            await _settled(bus, asked + 1)
        assert (await bus.request(f"{BASE}/cmd/simulator/hangup", b"{}"))["ok"]
        await _until_event(bus, lambda events: any(e.get("type") == "ended" for e in events), 30)
        ended = next(e for e in _events(bus) if e.get("type") == "ended")
    return str(ended["call_id"])


@pytest.mark.slow
async def test_the_timeline_endpoint_of_a_real_call(box: WebDaemon) -> None:
    call_id = await real_call(box)
    url = f"{box.url}/calls/{call_id}/timeline.json"
    async with box.client() as http:
        async with http.get(url, allow_redirects=False) as response:
            assert response.status == 401  # a script without a session
        await box.login(http)
        async with http.get(url) as response:
            assert response.status == 200, await response.text()
            data = await response.json()
        async with http.get(f"{box.url}/calls/{call_id}") as response:
            page = await response.text()
        async with http.get(f"{box.url}/") as response:
            status_page = await response.text()

        turns = data["turns"]
        seen = json.dumps({"utterances": data["utterances"], "turns": [{k: v for k, v in t.items() if k != "stages"}
                                                                      for t in turns]})
        assert len(turns) >= 2, seen
        for t in turns:
            assert t["speech_end_s"] <= t["endpoint_s"] <= t["first_audio_s"] <= t["reply_audio_s"], seen
            assert t["ended_by"] in ("turn_end", "silence", "long_silence")
            assert t["voice_to_voice_ms"] == pytest.approx((t["reply_audio_s"] - t["speech_end_s"]) * 1000, abs=1.5)
            assert t["stages"][0]["name"] == "turn_end" and t["stages"][-1]["end_s"] == t["reply_audio_s"], seen
            assert 0 < t["voice_to_voice_ms"] < 15_000
        caller = data["tracks"]["caller"]
        secretary = data["tracks"]["secretary"]
        assert caller["available"] and secretary["available"], data["tracks"]
        # the caller's words sit where the caller's track is loud, and the secretary's on its own
        for role, track in (("caller", caller), ("secretary", secretary)):
            peaks = np.asarray(track["peaks"], float)
            at = np.arange(peaks.size) * track["step_s"]
            inside = np.zeros(peaks.size, bool)
            for u in data["utterances"]:
                if u["role"] == role:
                    inside |= (at >= u["start_s"]) & (at < u["end_s"])
            assert inside.any() and (~inside).any()
            assert peaks[inside].mean() > peaks[~inside].mean() + 15, role
        # the page: the turns' table in text, the timeline's data source
        assert f'data-src="/calls/{call_id}/timeline.json"' in page
        assert len(re.findall(r'<tr data-turn="\d+">', page)) == len(turns)
        # the status page counts these very turns
        assert re.search(rf'id="v2v-turns">{len(turns)} in 1 call<', status_page), status_page[:4000]

        # a record whose track went bad, or whose transcript is gone, is a placeholder, not a 500
        record_dir = box.data_dir / "calls" / call_id
        (record_dir / "caller.wav").write_bytes(b"garbage")
        async with http.get(url) as response:
            assert response.status == 200
            bad = await response.json()
        assert not bad["tracks"]["caller"]["available"] and "not a readable WAV" in bad["tracks"]["caller"]["reason"]
        (record_dir / "transcript.json").unlink()
        async with http.get(url) as response:
            assert response.status == 200 and (await response.json())["error"] == "the call's transcript.json is gone"
        async with http.get(f"{box.url}/calls/{call_id}") as response:
            assert response.status == 200 and "transcript.json is gone" in await response.text()
        async with http.get(f"{box.url}/calls/no-such-call/timeline.json") as response:
            assert response.status == 404
