"""Fault case: the MQTT broker goes down mid-call and comes back after the call ended.

A real ``secretaryd`` with the real sim7600 driver; the modem is the SIM7600
simulator as its own process, scripted over its control socket (not over the
bus, which is down). The broker is a real mosquitto with persistence, stopped
(SIGTERM) mid-call and started again on the same port once the call is over.
The watcher stands in for Home Assistant or the Telegram channel: a
persistent MQTT session (QoS 1), so what the daemon delivers the moment the
broker returns is kept for it even before it reconnects.

Asserted: the conversation goes on without the broker (the caller keeps
hearing replies: speech in the simulator's uplink recording after the stop),
the call ends normally and its record and index are final while the broker is
still down; once it is back, the outbox delivers the call's events in order
(``ringing``, ``answered``, ``utterance``..., ``ended``), each once, the
retained ``call/state`` is idle, ``modem/state`` connected and ``status``
online, and the record and the index say what the bus finally got.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
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
    index_row,
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
REPLY_WAIT_S = 8.0  # after a caller line: the endpoint, STT, the dialogue and the reply spoken at line rate
SESSION = "fault-broker-down-watch"  # the watcher's persistent session: what the daemon sends while it is away


@pytest.fixture
def sim_dir(tmp_path: Path, daemon_env: dict[str, str]) -> Iterator[Path]:
    with simulator_process(tmp_path, daemon_env) as path:
        yield path


@pytest.fixture
def lasting_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """The secured test broker, with persistence: sessions and their queued messages survive a stop."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    with MosquittoBroker(workdir=workdir, persistent=True) as running:
        yield running


async def test_broker_down_mid_call_the_call_goes_on_and_the_outbox_delivers_it_in_order_when_it_returns(
    lasting_broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], sim_dir: Path,
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    broker = lasting_broker
    data = tmp_path / "data"
    use_sim7600(write_config(tmp_path / "config.yaml", broker, data), sim_dir)
    uplink = sim_dir / SIM_UPLINK_WAV
    lines = caller_script("en")

    async with MqttWatch(broker, f"{topic('')}#", session=SESSION) as before:
        start_daemon(tmp_path / "config.yaml", daemon_env, spawn)
        await before.wait_for(service_running("calls"), START_S)
        await before.wait_for(modem_connected(True), 30)
        await sim(sim_dir, f"call {CALLER}")
        call_id = (await before.wait_for(call_event("answered"), 30)).json()["call_id"]
        await before.wait_for(lambda m: call_event("utterance", call_id)(m) and m.json()["source"] == "greeting", 30)
        await asyncio.sleep(1.0)  # the greeting is over and delivered
        heard_from = heard_bytes(uplink)
        broker.stop(graceful=True)  # the broker is gone mid-call (its sessions saved, as a restart keeps them)
    seen_before = events_of(before.seen, call_id)

    # the conversation goes on without the broker: the caller speaks, the box answers
    for line in lines[:2]:
        await sim(sim_dir, f"speak {line.wav}")
        await sim(sim_dir, "wait-speech 30")
        await asyncio.sleep(REPLY_WAIT_S)
    heard_s = voiced_seconds(heard_pcm(uplink, heard_from))
    assert (await sim_status(sim_dir))["call"] is not None, "the call ended while the broker was down"
    await sim(sim_dir, "hangup")
    record = await settled_record(data, call_id, 15)  # finished on disk while the broker is still away
    assert spawn[-1].poll() is None, "secretaryd exited while the broker was down"

    broker.start()
    async with MqttWatch(broker, f"{topic('')}#", session=SESSION) as after:
        ended = (await after.wait_for(call_event("ended", call_id), 30)).json()
        await asyncio.sleep(1.5)  # the rest of the outbox, and room for a duplicate
        delivered = events_of(after.seen, call_id)
    async with MqttWatch(broker, f"{topic('')}#") as late:  # a client that connects now: what is retained
        await late.wait_for(lambda m: m.topic == topic("call/state"), 5)
        await asyncio.sleep(0.5)
        retained = {m.topic: m for m in late.seen if m.retain}

    # the caller kept hearing the box while the broker was down
    assert heard_s >= 2.0, f"{heard_s:.2f} s of speech reached the caller while the broker was down"

    # the outbox: the call's whole story, in order, each event once
    story = seen_before + delivered
    kinds = [e["type"] for e in story]
    assert kinds[:2] == ["ringing", "answered"] and kinds[-1] == "ended" and kinds.count("ended") == 1, kinds
    assert len({json.dumps(e, sort_keys=True) for e in story}) == len(story), "an event was delivered twice"
    stamps = [e["ts"] for e in story]
    assert stamps == sorted(stamps), "events out of order"
    assert ended == story[-1]
    caller_turns = [e for e in delivered if e["type"] == "utterance" and e["role"] == "caller"]
    box_turns = [e for e in delivered if e["type"] == "utterance" and e["role"] == "secretary"]
    assert caller_turns and box_turns, kinds

    # record, index and bus agree; the retained states tell the truth
    assert_one_outcome(data, call_id, ended, str(ended["outcome"]), str(ended["reason"]))
    assert ended["outcome"] not in ("failed", "in_progress") and ended["reason"] != "error", ended
    row = index_row(data, call_id)
    assert row is not None and row["summary"] == ended["summary"] == record["summary"]
    record_turns = [u["text"] for u in record["utterances"]]
    bus_turns = [e["text"] for e in story if e["type"] == "utterance"]
    assert bus_turns == record_turns, (bus_turns, record_turns)
    assert retained[topic("call/state")].json()["state"] == "idle"
    assert retained[topic("modem/state")].json()["connected"] is True
    assert retained[topic("status")].text == "online"
    assert retained[topic("services/bus/state")].json()["state"] == "running"
    assert retained[topic("services/modem/state")].json()["state"] == "running"
    assert retained[topic("services/calls/state")].json()["state"] == "running"
    print(json.dumps({"speech_heard_while_broker_down_s": round(heard_s, 2),
                      "events_delivered_after_broker_return": len(delivered),
                      "events_of_the_call": kinds}))
