"""Hardware-in-the-loop: the SIM7600 driver on a real modem.

Runs only when the rig says where the modem is:

    SECRETARY_HIL_AT_PORT=/dev/ttyUSB2 SECRETARY_HIL_AUDIO_PORT=/dev/ttyUSB4 \\
        .venv/bin/python -m pytest hil-tests/test_real_modem.py -v

Optional:
    SECRETARY_HIL_SIM_PIN        PIN of the SIM, if it asks for one
    SECRETARY_HIL_CALL_TIMEOUT   seconds to wait for someone to call the SIM (runs the incoming call flow)
    SECRETARY_HIL_DIAL_NUMBER    a number the box may call (runs the outgoing call flow)
    SECRETARY_HIL_RECORD_DIR     where to keep the downlink WAV of the incoming call test

Stop ModemManager (or udev-ignore the modem) first: it competes for the AT port.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from modem_events import next_event

from daemon.modem.modem_service import modem_state_payload
from drivers.sim7600.at_channel import AtChannel
from drivers.sim7600.call_model import CallState
from drivers.sim7600.modem import Sim7600Modem, Sim7600Settings
from drivers.sim7600.parsers import parse_csq
from drivers.sim7600.pcm_port import FRAME_BYTES

AT_PORT = os.environ.get("SECRETARY_HIL_AT_PORT")
AUDIO_PORT = os.environ.get("SECRETARY_HIL_AUDIO_PORT")
SIM_PIN = os.environ.get("SECRETARY_HIL_SIM_PIN") or None
CALL_TIMEOUT = os.environ.get("SECRETARY_HIL_CALL_TIMEOUT")
DIAL_NUMBER = os.environ.get("SECRETARY_HIL_DIAL_NUMBER")

pytestmark = pytest.mark.skipif(
    not AT_PORT, reason="SECRETARY_HIL_AT_PORT is not set: no real SIM7600 attached to this machine"
)
needs_audio = pytest.mark.skipif(
    bool(AT_PORT) and not AUDIO_PORT,
    reason="SECRETARY_HIL_AUDIO_PORT is not set: the driver needs the modem's audio port too",
)


def tone_frame(index: int, frequency: float = 440.0) -> bytes:
    start = index * 160
    samples = [int(6000 * math.sin(2 * math.pi * frequency * (start + n) / 8000)) for n in range(160)]
    return struct.pack("<160h", *samples)


@pytest.fixture
async def modem() -> AsyncIterator[Sim7600Modem]:
    assert AT_PORT and AUDIO_PORT
    driver = Sim7600Modem(
        Sim7600Settings(at_port=AT_PORT, audio_port=AUDIO_PORT, answer_after_rings=1, sim_pin=SIM_PIN)
    )
    async with driver:
        await driver.wait_connected(timeout=90)
        yield driver


async def test_at_channel_talks_to_the_modem() -> None:
    assert AT_PORT
    channel = await AtChannel.open(AT_PORT, default_timeout_s=5)
    try:
        for _ in range(20):
            try:
                if (await channel.command("AT", timeout=1)).ok:
                    break
            except TimeoutError:
                continue
        info = await channel.command("ATI")
        assert info.ok and any("SIMCOM" in line.upper() for line in info.lines), info.lines
        csq = await channel.command("AT+CSQ")
        payload = csq.first("+CSQ:")
        assert csq.ok and payload is not None and parse_csq(payload) is not None
        probe = await channel.command("AT+CPCMREG=?")
        assert probe.ok, "this firmware has no USB PCM audio (AT+CPCMREG)"
    finally:
        await channel.close()


@needs_audio
async def test_driver_connects_and_reports_state(modem: Sim7600Modem) -> None:
    state = modem.state
    print("modem/state:", modem_state_payload(state).encode())
    assert state.connected and state.info.model
    assert state.sim.value == "ready", state.problems
    assert state.pcm_supported


@needs_audio
@pytest.mark.skipif(
    bool(AT_PORT) and not CALL_TIMEOUT, reason="SECRETARY_HIL_CALL_TIMEOUT is not set (nobody will call the SIM)"
)
async def test_incoming_call_flow(modem: Sim7600Modem, tmp_path: Path) -> None:
    events = modem.subscribe()
    print(f"call the SIM now (waiting {CALL_TIMEOUT} s)...")
    await next_event(events, "ringing", float(CALL_TIMEOUT or 0))
    answered = await next_event(events, "answered", 30)
    downlink = bytearray()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range(150):  # 3 s: read the caller, send a tone at the real rate
        await asyncio.sleep(max(0.0, start + k * 0.02 - loop.time()))
        modem.write_audio_frame(tone_frame(k))
        while (frame := await modem.read_audio_frame(timeout=0)) is not None:
            downlink += frame
    stats = modem.pcm_stats()
    print("pcm:", stats)
    record_dir = Path(os.environ.get("SECRETARY_HIL_RECORD_DIR") or tmp_path)
    with wave.open(str(record_dir / f"{answered.call_id}-downlink.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(downlink))
    await modem.hangup()
    ended = await next_event(events, "ended", 10)
    assert modem.call.state is CallState.IDLE
    assert stats is not None and stats.rx_bytes > 100 * FRAME_BYTES, "downlink stayed empty (known firmware issue)"
    assert stats.tx_dropped_frames == 0, "modem did not consume uplink audio"
    print("ended:", ended)


@needs_audio
@pytest.mark.skipif(
    bool(AT_PORT) and not DIAL_NUMBER, reason="SECRETARY_HIL_DIAL_NUMBER is not set (no number the box may call)"
)
async def test_outgoing_call_flow(modem: Sim7600Modem) -> None:
    events = modem.subscribe()
    assert DIAL_NUMBER
    call_id = await modem.dial(DIAL_NUMBER)
    print(f"dialled {DIAL_NUMBER} as {call_id}; answer it within 60 s")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 70
    while (remaining := deadline - loop.time()) > 0:
        event = await events.get(remaining)
        if event is not None and event.type in ("answered", "ended"):
            break
    else:
        raise AssertionError("call neither answered nor ended")
    if event.type == "answered":
        await asyncio.sleep(3)
        await modem.hangup()
        event = await next_event(events, "ended", 10)
    print("ended:", event)
    assert modem.call.state is CallState.IDLE
