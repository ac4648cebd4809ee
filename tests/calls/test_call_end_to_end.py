"""A whole call over the simulator with the real CPU engines and the scripted take-a-message policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from daemon.tools.demo_caller import caller_script
from drivers.audio import read_wav

from .call_harness import box_config, call_box

pytestmark = pytest.mark.slow


async def test_english_caller_leaves_a_message(tmp_path: Path) -> None:
    config = box_config(tmp_path / "data")
    lines = caller_script("en")
    async with call_box(config) as box:
        call_id = await box.ring()
        greeting = await box.wait_secretary_turns(1, 30)
        assert greeting["text"].startswith("Hello, you've reached")
        assert greeting["latency_ms"]["greeting_ms"] < 100
        for count, line in enumerate(lines[:3], start=2):
            await box.sim.caller_speaks(line.wav)
            await box.wait_secretary_turns(count, 60)
        ended = await box.wait_ended(60)
    assert ended["call_id"] == call_id
    print(json.dumps(box.events(), ensure_ascii=False, indent=1))
    assert ended["outcome"] == "message_taken", ended
    assert ended["message"]["callback_number"] == "5550134"
    assert "john" in (ended["message"]["name"] or "").lower()
    record = tmp_path / "data" / "calls" / call_id
    transcript = json.loads((record / "transcript.json").read_text())
    assert transcript["outcome"] == "message_taken"
    roles = [u["role"] for u in transcript["utterances"]]
    assert roles[0] == "secretary" and "caller" in roles
    caller_audio, rate = read_wav(record / "caller.wav")
    reply_audio, _ = read_wav(record / "secretary.wav")
    assert rate == 8000 and abs(caller_audio.size - reply_audio.size) <= 8000
    assert np.abs(reply_audio.astype(np.int32)).max() > 3000
