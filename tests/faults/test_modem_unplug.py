"""Fault case: the modem is unplugged (its USB serial devices vanish), idle and mid-call, then plugged back.

A real ``secretaryd`` with the real sim7600 driver on the secured broker; the
modem is the SIM7600 simulator as its own process, whose ``unplug`` closes
both ptys and removes their device links (the host reads EOF/EIO on its open
ports and finds no device when it looks again, as when a USB modem is pulled)
and whose ``replug`` makes them appear again and boots. Asserted on the bus
(``modem/state``, ``services/modem/state``, ``call/state``, ``call/event``),
the record, the index and the audio the caller heard (the simulator's uplink
recording):

- idle: ``modem/state`` says ``connected: false`` with a problem a person can
  read, the modem service says it waits for the modem, no call event; on
  replug it connects again by itself and the next call is answered, greeted and
  ends with the same outcome in record, index and bus;
- mid-call (the caller has begun their message, the box is answering): the
  call ends at once with reason ``modem_lost`` and the same outcome in record,
  index and ``ended`` (the owner's notification path), the record holds what
  the bus said was said, nothing stays ``in_progress``, ``call/state`` goes
  idle; after replug a new call works.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.tools.demo_caller import caller_script
from daemon.tools.private_broker import MosquittoBroker
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
from tests.support.mqtt_watch import MqttWatch, Seen

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

START_S = 120.0  # a loaded 2-core machine: engines, phrases
DETECT_S = 5.0  # unplug -> modem/state connected false (EOF on the open tty is immediate; the driver polls 0.5 s)
RECONNECT_S = 20.0  # replug -> connected again: the simulator boots, the driver initialises the modem
QUIET_S = 2.5  # unplugged this long: the driver keeps looking (every 0.5 s) and nothing about a call happens
MODEM_LOST = "modem_lost"  # drivers/sim7600/call_model.py EndReason.MODEM_LOST, the reason the contract names


@pytest.fixture
def sim_dir(tmp_path: Path, daemon_env: dict[str, str]) -> Iterator[Path]:
    with simulator_process(tmp_path, daemon_env) as path:
        yield path


def call_state_is(state: str) -> Callable[[Seen], bool]:
    return lambda m: m.topic == topic("call/state") and m.json()["state"] == state


def modem_service(state: str) -> Callable[[Seen], bool]:
    return lambda m: m.topic == topic("services/modem/state") and m.json()["state"] == state


async def start(tmp_path: Path, broker: MosquittoBroker, sim_dir: Path, env: dict[str, str],
                spawn: list[subprocess.Popen[bytes]], bus: MqttWatch) -> Path:
    data = tmp_path / "data"
    use_sim7600(write_config(tmp_path / "config.yaml", broker, data), sim_dir)
    start_daemon(tmp_path / "config.yaml", env, spawn)
    await bus.wait_for(service_running("calls"), START_S)
    await bus.wait_for(modem_connected(True), 30)
    return data


async def a_whole_call(bus: MqttWatch, sim_dir: Path, data: Path) -> tuple[str, dict[str, object], float]:
    """A call after the replug: answered, greeted, one caller line and a reply, the caller hangs up.

    Returns (call_id, its ``ended``, seconds of speech the caller heard).
    """
    mark = len(bus.seen)
    uplink = sim_dir / SIM_UPLINK_WAV
    heard_from = heard_bytes(uplink)
    await sim(sim_dir, f"call {CALLER}")
    call_id = (await bus.wait_for(call_event("answered"), 30, after=mark)).json()["call_id"]
    await bus.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["source"] == "greeting", 30, after=mark)
    line = caller_script("en")[0]
    before = len(bus.seen)
    await sim(sim_dir, f"speak {line.wav}")
    await bus.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["role"] == "secretary", 60,
                       after=before)
    await asyncio.sleep(1.0)
    await sim(sim_dir, "hangup")
    ended = (await bus.wait_for(call_event("ended", call_id), 30, after=mark)).json()
    await settled_record(data, call_id)
    return call_id, ended, voiced_seconds(heard_pcm(uplink, heard_from))


async def test_unplug_while_idle_says_disconnected_retries_and_the_replugged_modem_takes_the_next_call(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], sim_dir: Path,
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        data = await start(tmp_path, broker, sim_dir, daemon_env, spawn, bus)

        mark = len(bus.seen)
        pulled = time.monotonic()
        await sim(sim_dir, "unplug")
        gone = await bus.wait_for(modem_connected(False), DETECT_S, after=mark)
        detect_s = gone.at - pulled
        waiting = (await bus.wait_for(modem_service("degraded"), DETECT_S, after=mark)).json()
        await asyncio.sleep(QUIET_S)
        problems = [m.json().get("problems") or [] for m in bus.on(topic("modem/state"))[-1:]][0]
        while_gone = bus.seen[mark:]
        assert spawn[-1].poll() is None, "secretaryd exited when the modem was unplugged"

        plugged = time.monotonic()
        back_mark = len(bus.seen)
        await sim(sim_dir, "replug")
        back = await bus.wait_for(modem_connected(True), RECONNECT_S, after=back_mark)
        reconnect_s = back.at - plugged
        await bus.wait_for(modem_service("running"), 10, after=back_mark)

        call_id, ended, heard_s = await a_whole_call(bus, sim_dir, data)
        kinds = [e["type"] for e in events_of(bus.seen, call_id)]

    # unplugged: disconnected, said so a person can act on, and nothing about a call
    assert "modem gone" in waiting["detail"] and "waiting for it to return" in waiting["detail"], waiting
    assert problems and any("unplugged" in p or "does not exist" in p for p in problems), problems
    assert all(m.json().get("connected") is False for m in while_gone[while_gone.index(gone):]
               if m.topic == topic("modem/state")), "the modem was said to be back while it was unplugged"
    assert [m for m in while_gone if m.topic == topic("call/event")] == []
    assert all(m.json()["state"] == "idle" for m in while_gone if m.topic == topic("call/state"))

    # replugged: the next call is answered, heard and ends truthfully
    assert kinds[:2] == ["ringing", "answered"] and kinds[-1] == "ended" and kinds.count("ended") == 1, kinds
    assert_one_outcome(data, call_id, ended, str(ended["outcome"]), str(ended["reason"]))
    assert ended["reason"] != MODEM_LOST and ended["outcome"] not in ("failed", "in_progress"), ended
    assert heard_s >= 1.0, f"{heard_s:.2f} s of speech reached the caller after the replug"
    assert (await sim_status(sim_dir))["call"] is None
    print(json.dumps({"unplug_detect_s": round(detect_s, 2), "replug_reconnect_s": round(reconnect_s, 2),
                      "problems": problems, "speech_heard_after_replug_s": round(heard_s, 2)}))


async def test_unplug_mid_call_ends_the_call_modem_lost_everywhere_and_a_new_call_works_after_replug(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], sim_dir: Path,
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        data = await start(tmp_path, broker, sim_dir, daemon_env, spawn, bus)
        await sim(sim_dir, f"call {CALLER}")
        lost_id = (await bus.wait_for(call_event("answered"), 30)).json()["call_id"]
        await bus.wait_for(lambda m: call_event("utterance", lost_id)(m) and m.json()["source"] == "greeting", 30)
        await bus.wait_for(call_state_is("active"), 10)
        before = len(bus.seen)
        await sim(sim_dir, f"speak {caller_script('en')[0].wav}")  # the caller starts their message...
        await bus.wait_for(lambda m: call_event("utterance", lost_id)(m) and m.json()["role"] == "secretary", 60,
                           after=before)  # ...and the box is answering when the modem is pulled

        mark = len(bus.seen)
        pulled = time.monotonic()
        await sim(sim_dir, "unplug")
        ended_msg = await bus.wait_for(call_event("ended", lost_id), 15, after=mark)
        end_s = ended_msg.at - pulled
        ended = ended_msg.json()
        # "at once": by the time ended is out the record and the index say the same
        assert_one_outcome(data, lost_id, ended, str(ended["outcome"]), MODEM_LOST)
        await bus.wait_for(call_state_is("idle"), 5, after=mark)
        gone = await bus.wait_for(modem_connected(False), DETECT_S, after=mark)
        await asyncio.sleep(1.0)  # room for a second ending, were there one
        endings = [m for m in bus.seen[mark:] if call_event("ended", lost_id)(m)]

        back_mark = len(bus.seen)
        plugged = time.monotonic()
        await sim(sim_dir, "replug")
        back = await bus.wait_for(modem_connected(True), RECONNECT_S, after=back_mark)
        reconnect_s = back.at - plugged
        call_id, next_ended, heard_s = await a_whole_call(bus, sim_dir, data)
        retained = {m.topic: m for m in bus.seen if m.topic in (topic("call/state"), topic("modem/state"))}

    assert len(endings) == 1
    assert ended["answered"] is True and ended["outcome"] not in ("in_progress", "message_taken"), ended
    record = await settled_record(data, lost_id, 1.0)
    assert record["ended_at"] is not None and record["duration_s"] is not None
    said = [u for u in record["utterances"] if u["role"] == "secretary"]
    assert said and said[0]["source"] == "greeting" and said[0]["end_s"] > said[0]["start_s"]
    assert any(u["role"] == "caller" for u in record["utterances"])
    lost_events = events_of(bus.seen, lost_id)
    kinds = [e["type"] for e in lost_events]
    assert kinds[:2] == ["ringing", "answered"] and kinds[-1] == "ended", kinds
    assert [e["text"] for e in lost_events if e["type"] == "utterance"] == [u["text"] for u in record["utterances"]]

    assert call_id != lost_id
    assert_one_outcome(data, call_id, next_ended, str(next_ended["outcome"]), str(next_ended["reason"]))
    assert next_ended["reason"] != MODEM_LOST and heard_s >= 1.0, (next_ended, heard_s)
    assert retained[topic("call/state")].json()["state"] == "idle"
    assert retained[topic("modem/state")].json()["connected"] is True
    print(json.dumps({"call_ended_after_unplug_s": round(end_s, 2), "unplug_detect_s": round(gone.at - pulled, 2),
                      "replug_reconnect_s": round(reconnect_s, 2), "lost_call": [ended["outcome"], ended["reason"]],
                      "speech_heard_after_replug_s": round(heard_s, 2)}))

