"""Fault case: garbage on the AT port, idle and mid-call.

A real ``secretaryd`` with the real sim7600 driver on the secured broker; the
modem is the SIM7600 simulator as its own process, whose ``raw <hex>``
control verb writes bytes on the AT port exactly as given: random bytes,
overlong lines, lines that are not UTF-8 and URCs cut in half (a ``+CLCC``, a
``+CLIP`` or a ``VOICE CALL:`` without its end, a bare ``+CRING:``), the same
seeded bytes on every run. Asserted, idle: no crash, no phantom call (no
``call/event``, ``call/state`` idle, no record, no index row), the modem stays
connected; mid-call: the call goes on (the caller's next line is heard and
answered, speech in the simulator's uplink after the garbage) and ends
normally, record, index and bus agreeing; and the driver's log says what it
skipped in one line per kind, not one line per bad line. Two quick tests
check what the case rests on: the framer's ``SkipLog`` (one line per kind per
interval, then the count) and the simulator's ``raw`` verb (bytes as given,
bounded, clear errors).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
from drivers.sim7600.framing import SKIP_REPORT_INTERVAL_S, LineFramer, SkipLog
from drivers.sim7600.simulator import SimulatedModem
from drivers.sim7600.simulator.control import MAX_RAW_BYTES, execute
from tests.faults.fault_box import (
    CALLER,
    SIM_UPLINK_WAV,
    assert_one_outcome,
    call_event,
    events_of,
    heard_bytes,
    heard_pcm,
    modem_connected,
    service_running,
    settled_record,
    sim,
    sim_status,
    simulator_process,
    start_daemon,
    topic,
    use_sim7600,
    voiced_seconds,
)
from tests.support.daemon_runner import write_config
from tests.support.mqtt_watch import MqttWatch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

START_S = 120.0  # a loaded 2-core machine: engines, phrases
QUIET_S = 4.0  # after a burst: longer than the in-call AT+CLCC poll (2 s) and the idle status poll's reach
SEED = 18  # issue 18: the same garbage on every run

#: What the driver says when it skips input, by kind (drivers/sim7600/framing.py, at_channel.py).
SKIP_KINDS = {
    "not UTF-8": "non-UTF-8 AT line",
    "overlong": "AT line longer than",
    "not understood": "unsolicited line not understood",
}


def garbage() -> list[bytes]:
    """One burst: each kind of garbage, in chunks the simulator's ``raw`` takes."""
    rng = np.random.default_rng(SEED)
    random_bytes = [rng.bytes(MAX_RAW_BYTES) for _ in range(4)]
    overlong = [b"\r\n+CLCC: " + b"9" * 3000 + b"\r\n", b"A" * 4000, b"B" * 4000 + b"\r\n"]
    bad_utf8 = [b"\r\n\xc3\x28VOICE CALL: BEGIN\xff\r\n" * 20, b"\r\n+CLIP: \"\xfe\xfe\",145\r\n" * 20]
    half_urcs = [
        b'\r\n+CLCC: 1,1,4,0,0,"+155', b"\r\n",
        b"\r\nVOICE CALL:", b"\r\n",
        b'\r\n+CLIP: "+7916', b"\r\n",
        b"\r\n+CRING:\r\n",
        b"\r\nRIN", b"G-ish\r\n",
        b'\r\n+CMTI: "SM",\r\n',
        b"\r\nMISSED_CALL: \r\n",
        b"\r\nNO CARR\r\n",
        b"\r\n+RXDTMF: 12\r\n",
    ]
    return random_bytes + overlong + bad_utf8 + half_urcs


async def inject(sim_dir: Path) -> int:
    sent = 0
    for chunk in garbage():
        reply = await sim(sim_dir, f"raw {chunk.hex()}")
        assert "dropped" not in reply, reply
        sent += len(chunk)
    return sent


def skip_lines(log_text: str) -> Counter[str]:
    """How many log lines the daemon wrote about skipped AT input, by kind."""
    counts: Counter[str] = Counter()
    for line in log_text.splitlines():
        for kind, words in SKIP_KINDS.items():
            if words in line:
                counts[kind] += 1
    return counts


def test_the_skip_log_writes_one_line_per_kind_per_interval_and_then_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    framer = LineFramer(64, SkipLog(logging.getLogger("test.skips"), clock=lambda: now[0]))
    caplog.set_level(logging.INFO, logger="test.skips")
    burst = b"\xff\xfe bad\r\n" * 100 + b"x" * 200 + b"\r\nOK\r\n"
    assert framer.feed(burst) == ["OK"]
    assert framer.rejected_lines == 101
    assert [r.getMessage()[:30] for r in caplog.records] == ["non-UTF-8 AT line skipped: b'\\", "AT line longer than 64 bytes s"]
    now[0] += SKIP_REPORT_INTERVAL_S
    assert framer.feed(b"\xff\r\n") == []
    assert caplog.records[-1].getMessage().endswith("(and 99 more since the last report, not logged one by one)")
    assert len(caplog.records) == 3


async def test_the_simulators_raw_verb_writes_the_bytes_as_given_and_refuses_unbounded_or_bad_hex(
    tmp_path: Path,
) -> None:
    async with SimulatedModem(tmp_path / "at", tmp_path / "audio") as modem:
        host = os.open(tmp_path / "at", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            assert (await execute(modem, "raw")).startswith("error usage: raw <hex")
            assert (await execute(modem, "raw 0d0azz")).startswith("error non-hexadecimal")
            assert (await execute(modem, f"raw {'00' * (MAX_RAW_BYTES + 1)}")) == (
                f"error raw takes 1 to {MAX_RAW_BYTES} bytes, got {MAX_RAW_BYTES + 1}")
            assert await execute(modem, "raw 0d0aff2b434c43433a") == "ok wrote 9"
            await asyncio.sleep(0.1)
            assert b"\r\n\xff+CLCC:" in os.read(host, 65536)  # as given: no framing added, nothing re-encoded
            await execute(modem, "unplug")
            assert await execute(modem, "raw 00") == "error module is not plugged in"
        finally:
            os.close(host)


@pytest.fixture
def sim_dir(tmp_path: Path, daemon_env: dict[str, str]) -> Iterator[Path]:
    with simulator_process(tmp_path, daemon_env) as path:
        yield path


async def test_garbage_on_the_at_port_idle_and_mid_call_makes_no_call_breaks_no_call_and_no_log_flood(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], sim_dir: Path,
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    data = tmp_path / "data"
    log_path = tmp_path / "secretaryd.log"
    use_sim7600(write_config(tmp_path / "config.yaml", broker, data), sim_dir)
    uplink = sim_dir / SIM_UPLINK_WAV
    lines = caller_script("en")
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        start_daemon(tmp_path / "config.yaml", daemon_env, spawn)
        await bus.wait_for(service_running("calls"), START_S)
        await bus.wait_for(modem_connected(True), 30)

        # idle: a burst of garbage
        log_before = len(log_path.read_text(errors="replace"))
        mark = len(bus.seen)
        idle_bytes = await inject(sim_dir)
        await asyncio.sleep(QUIET_S)
        idle = bus.seen[mark:]
        idle_log = skip_lines(log_path.read_text(errors="replace")[log_before:])
        assert spawn[-1].poll() is None, "secretaryd exited on garbage"
        assert (await sim_status(sim_dir))["call"] is None

        # mid-call: answered and greeted, then a burst, then the conversation goes on
        await sim(sim_dir, f"call {CALLER}")
        call_id = (await bus.wait_for(call_event("answered"), 30)).json()["call_id"]
        await bus.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["source"] == "greeting", 30)
        await asyncio.sleep(0.5)
        heard_from = heard_bytes(uplink)
        log_before = len(log_path.read_text(errors="replace"))
        call_bytes = await inject(sim_dir)
        before = len(bus.seen)
        await sim(sim_dir, f"speak {lines[0].wav}")
        caller_turn = (await bus.wait_for(
            lambda m: call_event("utterance", call_id)(m) and m.json()["role"] == "caller", 60, after=before)).json()
        reply = (await bus.wait_for(
            lambda m: call_event("utterance", call_id)(m) and m.json()["role"] == "secretary", 60, after=before)).json()
        await asyncio.sleep(1.0)
        status = await sim_status(sim_dir)
        assert isinstance(status["call"], dict) and status["call"]["stat"] == "active", status
        call_log = skip_lines(log_path.read_text(errors="replace")[log_before:])
        await sim(sim_dir, "hangup")
        ended = (await bus.wait_for(call_event("ended", call_id), 30)).json()
        await settled_record(data, call_id)
        heard_s = voiced_seconds(heard_pcm(uplink, heard_from))
        await asyncio.sleep(1.0)  # room for a second ending or a phantom call
        events = [m.json() for m in bus.seen if m.topic == topic("call/event")]
        modem_states = [m.json() for m in bus.seen[mark:] if m.topic == topic("modem/state")]
        modem_service = [m.json()["state"] for m in bus.seen[mark:] if m.topic == topic("services/modem/state")]
        assert spawn[-1].poll() is None, "secretaryd exited on garbage"

    # idle: nothing about a call, the modem still there
    assert [m for m in idle if m.topic == topic("call/event")] == [], [m.text for m in idle]
    assert all(m.json()["state"] == "idle" for m in idle if m.topic == topic("call/state"))
    assert all(s["connected"] is True for s in modem_states), modem_states
    assert set(modem_service) <= {"running"}, modem_service  # the modem service never restarted or degraded

    # mid-call: the call went on and ended normally, the same everywhere, and nothing else happened
    assert {e["call_id"] for e in events} == {call_id}, events
    kinds = [e["type"] for e in events_of(bus.seen, call_id)]
    assert kinds[:2] == ["ringing", "answered"] and kinds.count("ended") == 1 and kinds[-1] == "ended", kinds
    assert caller_turn["text"].strip() and reply["text"].strip()
    assert ended["reason"] in ("caller_hung_up", "remote_hangup") and ended["outcome"] not in ("failed",), ended
    assert_one_outcome(data, call_id, ended, str(ended["outcome"]), str(ended["reason"]))
    assert heard_s >= 1.0, f"{heard_s:.2f} s of speech reached the caller after the garbage"
    assert [p.name for p in (data / "calls").iterdir()] == [call_id]
    with sqlite3.connect(data / "secretary.db") as db:
        assert [row[0] for row in db.execute("SELECT call_id FROM calls")] == [call_id]

    # the log: what was skipped, one line per kind (the first, with its details), not one per bad line; the
    # mid-call burst comes within SKIP_REPORT_INTERVAL_S of the first, so it is only counted
    assert idle_log["not UTF-8"] == 1 and idle_log["overlong"] == 1, idle_log
    assert all(idle_log[kind] + call_log[kind] <= 1 for kind in SKIP_KINDS), (idle_log, call_log)
    print(json.dumps({"garbage_bytes_idle": idle_bytes, "garbage_bytes_mid_call": call_bytes,
                      "skip_log_lines_idle": dict(idle_log), "skip_log_lines_mid_call": dict(call_log),
                      "speech_heard_after_garbage_s": round(heard_s, 2), "ended": [ended["outcome"], ended["reason"]]}))
