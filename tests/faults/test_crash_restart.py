"""kill -9 mid-call, then restart: the dead call is announced ended, the caller still on the line is greeted.

The modem outlives the daemon, as a real one does: the SIM7600 simulator
runs as its own process (``python -m drivers.sim7600.simulator run``) and
``secretaryd`` talks to its pseudo-terminals with the real driver
(``modem.driver: sim7600``). A call is answered and greeted, the daemon is
killed (no ``finally``, no goodbye) and started again while the simulated
caller stays on the line. The new daemon must publish the killed call's
``ended`` once (reason ``daemon_stopped``, outcome ``interrupted``, record
and index the same), take the still-connected caller as a new call and greet
it once it can speak (speech in what the simulator received after the
restart) or, if it cannot within ``call.max_answer_wait_s``, say the goodbye
and hang up; that call's record, index row and ``ended`` must agree.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.bus_contract.call_payloads import NOT_READY
from daemon.records.retention import CRASH_END_REASON
from daemon.tools.private_broker import MosquittoBroker
from tests.faults.fault_box import sim, sim_status, simulator_process, use_sim7600
from tests.faults.test_sigterm import BASE, CALLER, call_event, start_daemon, voiced_seconds, wait_exit
from tests.support.daemon_runner import write_config
from tests.support.mqtt_watch import MqttWatch

READY_S = 90.0  # a daemon's start on a loaded 2-core machine: engines, the greeting


@pytest.fixture
def simulator(tmp_path: Path, daemon_env: dict[str, str]) -> Iterator[Path]:
    """The simulated modem as its own process (it outlives the daemon, as a real modem does)."""
    with simulator_process(tmp_path, daemon_env) as sim_dir:
        yield sim_dir


def index_row(data: Path, call_id: str) -> tuple[str, str] | None:
    with sqlite3.connect(data / "secretary.db") as db:
        return db.execute("SELECT outcome, end_reason FROM calls WHERE call_id = ?", (call_id,)).fetchone()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("wait_s", [90, 0], ids=["greeted-once-the-box-can-speak", "ended-politely-when-it-cannot"])
async def test_kill_mid_call_then_restart_announces_the_dead_call_and_takes_the_caller_still_on_the_line(
    wait_s: int, broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], simulator: Path,
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    """``call.max_answer_wait_s`` 90: the adopted caller waits for the engines and is greeted (a loaded machine
    may take long); 0: the engines are never ready in time, so the caller hears the goodbye the first run
    cached and is hung up (``failed``, ``not_ready``)."""
    data = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data, extra="call:\n  max_answer_wait_s: 90\n")
    use_sim7600(config, simulator)
    async with MqttWatch(broker, f"{BASE}/#") as bus:
        spawn.append(start_daemon(config, daemon_env, tmp_path))
        await bus.wait_for(lambda m: m.topic == f"{BASE}/services/calls/state" and m.json()["state"] == "running",
                           READY_S)
        await sim(simulator, f"call {CALLER}")
        first = (await bus.wait_for(call_event("answered"), 30)).json()["call_id"]
        await bus.wait_for(lambda m: call_event("utterance", first)(m) and m.json()["source"] == "greeting", 30)
        await asyncio.sleep(0.5)
        os.kill(spawn[-1].pid, signal.SIGKILL)  # a crash: no finally blocks, no flush, no goodbye
        await wait_exit(spawn[-1], 10)
        assert json.loads((data / "calls" / first / "transcript.json").read_text())["outcome"] == "in_progress"
        status = await sim_status(simulator)
        assert isinstance(status["call"], dict) and status["call"]["stat"] == "active"  # the caller is still there
        heard_before = int(status["uplink_bytes"])  # type: ignore[call-overload]

        config.write_text(config.read_text().replace("max_answer_wait_s: 90", f"max_answer_wait_s: {wait_s}"))
        mark = len(bus.seen)
        spawn.append(start_daemon(config, daemon_env, tmp_path))
        dead = (await bus.wait_for(call_event("ended", first), READY_S, after=mark)).json()
        adopted = (await bus.wait_for(call_event("answered"), READY_S, after=mark)).json()["call_id"]
        assert adopted != first
        if wait_s:
            greeting = (await bus.wait_for(
                lambda m: call_event("utterance", adopted)(m) and m.json()["source"] == "greeting", READY_S,
                after=mark,
            )).json()
            await asyncio.sleep(1.0)
            assert (await sim_status(simulator))["call"] is not None  # the greeted caller was not hung up on
            await sim(simulator, "hangup")
        ended = (await bus.wait_for(call_event("ended", adopted), 30, after=mark)).json()
        await asyncio.sleep(1.0)  # a second ending of either call would come now
        endings = [m.json()["call_id"] for m in bus.seen[mark:] if call_event("ended")(m)]
        assert (await sim_status(simulator))["call"] is None
        spawn[-1].send_signal(signal.SIGTERM)
        assert await wait_exit(spawn[-1], 15) == 0
    # the killed call: announced once, as the record and the index say
    assert endings.count(first) == 1 and endings.count(adopted) == 1
    assert (dead["reason"], dead["outcome"], dead["caller"]) == (CRASH_END_REASON, "interrupted", CALLER)
    record = json.loads((data / "calls" / first / "transcript.json").read_text())
    assert (record["outcome"], record["end_reason"]) == ("interrupted", CRASH_END_REASON)
    assert index_row(data, first) == ("interrupted", CRASH_END_REASON)
    assert dead["record_dir"] == str(data / "calls" / first)

    # the caller still on the line heard the new call's greeting, or the goodbye: speech after the restart
    with wave.open(str(simulator / "uplink.wav")) as wav:
        pcm = wav.readframes(wav.getnframes())
    after = pcm[heard_before - heard_before % 320:]
    assert voiced_seconds(after) >= 0.5, f"{voiced_seconds(after):.2f} s of speech after the restart"

    # the adopted call: record, index and bus agree, and nothing is left in progress
    record = json.loads((data / "calls" / adopted / "transcript.json").read_text())
    assert record["outcome"] == ended["outcome"] != "in_progress"
    assert record["end_reason"] == ended["reason"]
    assert index_row(data, adopted) == (ended["outcome"], ended["reason"])
    said = [u for u in record["utterances"] if u["role"] == "secretary"]
    if wait_s:
        assert said[0]["text"] == greeting["text"] and greeting["end_s"] > greeting["start_s"]
    else:
        assert (ended["outcome"], ended["reason"]) == ("failed", NOT_READY)
        assert [u["source"] for u in said] == ["goodbye"] and said[0]["end_s"] > said[0]["start_s"]
