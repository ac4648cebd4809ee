"""The simulator as a process: ptys appear, the control socket scripts it, the driver can use it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from drivers.sim7600.call_model import EndReason
from drivers.sim7600.events import CallEnded
from drivers.sim7600.modem import Sim7600Modem, Sim7600Settings
from drivers.sim7600.simulator.control import send_command

from .sim7600_helpers import FAST_TIMINGS

REPO = Path(__file__).resolve().parents[2]


async def test_cli_run_and_ctl(tmp_path: Path) -> None:
    at, audio, control = tmp_path / "at", tmp_path / "audio", tmp_path / "ctl.sock"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "drivers.sim7600.simulator",
        "run",
        "--at",
        str(at),
        "--audio",
        str(audio),
        "--control",
        str(control),
        "--ring-period",
        "0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 10)
        assert b"AT port" in banner and at.is_symlink() and audio.is_symlink()
        modem = Sim7600Modem(
            Sim7600Settings(
                at_port=str(at),
                audio_port=str(audio),
                answer_after_rings=1,
                check_modem_manager=False,
                timings=FAST_TIMINGS,
            )
        )
        events = modem.subscribe()
        async with modem:
            await modem.wait_connected(5)
            assert (await send_command(control, "call +79161234567")) == "ok ringing"
            while (event := await events.get(5)) is not None and event.type != "answered":
                pass
            assert event is not None and event.type == "answered"
            assert (await send_command(control, "dtmf 4")) == "ok"
            status = json.loads((await send_command(control, "status"))[3:])
            assert status["call"]["stat"] == "active" and status["pcm"] is True
            assert (await send_command(control, "hangup")) == "ok"
            while (event := await events.get(5)) is not None and event.type != "ended":
                pass
            assert isinstance(event, CallEnded) and event.reason is EndReason.REMOTE_HANGUP
            assert (await send_command(control, "nonsense")).startswith("error")
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
    assert not at.exists()
