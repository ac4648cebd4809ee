"""Issue 18 item 6: a call whose flow crashes ends at once, the same in its record, its index row and on the bus.

A real ``secretaryd`` on the real broker takes a call from a channel over
its line socket (as the Twilio channel does), for a persona whose language
its TTS has no voice for (``engines.tts.espeak.voices`` lists English only,
the ``gulya`` persona speaks Russian: a configuration the loader accepts).
Setting up that call's phrases raises inside the call, after its record was
opened: the flow crashes. Before, the record and the index row stayed
``in_progress`` until the next start or the hourly sweep (which then
labelled them ``interrupted``) while the bus said ``failed``; now all three
say ``failed`` / ``error`` by the time ``ended`` is out, and the channel
hears ``ended`` too.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from channels import line_protocol as lp
from daemon.tools.private_broker import MosquittoBroker
from tests.faults.fault_box import (
    CALLER,
    assert_one_outcome,
    call_event,
    events_of,
    index_row,
    read_record,
    service_running,
    start_daemon,
    topic,
)
from tests.support.daemon_runner import LIGHT_ENGINES, write_config
from tests.support.mqtt_watch import MqttWatch

pytestmark = pytest.mark.slow

CALL_ID = "line-crash-1"


async def test_a_crashed_flow_ends_its_call_at_once_in_record_index_and_bus(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawn: list[subprocess.Popen[bytes]]
) -> None:
    data = tmp_path / "data"
    engines = LIGHT_ENGINES.replace("  tts: {chain: [espeak]}\n", "  tts: {chain: [espeak], espeak: {voices: {en: en-us}}}\n")
    config = write_config(tmp_path / "config.yaml", broker, data, engines=engines)
    async with MqttWatch(broker, f"{topic('')}#") as bus:
        start_daemon(config, daemon_env, spawn)
        await bus.wait_for(service_running("calls"), 90)
        await bus.wait_for(service_running("lines"), 30)
        line_events: list[dict[str, object]] = []
        async with lp.open_line(lp.socket_path(data), call_id=CALL_ID, caller=CALLER, channel="twilio",
                                persona="gulya") as (line, _):
            async with asyncio.timeout(30):
                async for kind, payload in line.messages():
                    if kind == lp.EVENT:
                        line_events.append(json.loads(payload))
        ended = (await bus.wait_for(call_event("ended", CALL_ID), 15)).json()
        # "at once": by the time ``ended`` is on the bus, the record and the index already say the same
        assert_one_outcome(data, CALL_ID, ended, "failed", "error")
        await asyncio.sleep(1.0)  # room for a second ending, were there one
        kinds = [e["type"] for e in events_of(bus.seen, CALL_ID)]

    assert kinds == ["answered", "ended"], kinds
    assert line_events[-1] == {"type": "ended", "call_id": CALL_ID, "reason": "error", "outcome": "failed"}
    assert ended["channel"] == "twilio" and ended["persona"] == "gulya"
    assert "call flow failed" in (ended["summary"] or "")
    record = read_record(data, CALL_ID)
    assert record["ended_at"] is not None and record["duration_s"] is not None
    assert record["summary"] == ended["summary"]
    assert record["utterances"] == []  # nothing was said, and the record claims nothing
    row = index_row(data, CALL_ID)
    assert row is not None and row["summary"] == ended["summary"]
