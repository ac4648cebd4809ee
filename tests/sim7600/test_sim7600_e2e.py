"""The driver against the simulator over real pseudo-terminals, end to end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from daemon.modem.modem_service import modem_state_payload
from drivers.sim7600.call_model import CallDirection, CallState, EndReason
from drivers.sim7600.parsers import SimStatus
from drivers.sim7600.pcm_port import FRAME_BYTES
from drivers.sim7600.simulator import SimulatorConfig, read_pcm_wav, write_pcm_wav
from drivers.sim7600.simulator.sim_state import SimCallStat

from .sim7600_helpers import FAST_SIM, RigFactory, tone

CALLER = "+79161234567"


def replace_sim(**changes: object) -> SimulatorConfig:
    from dataclasses import replace

    return replace(FAST_SIM, **changes)  # type: ignore[arg-type]


async def read_until(modem: object, needle: bytes, timeout: float) -> bytes:
    """Read downlink frames until ``needle`` appears in what was received."""
    received = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in received:
        remaining = deadline - loop.time()
        assert remaining > 0, f"downlink never carried the caller audio ({len(received)} bytes received)"
        frame = await modem.read_audio_frame(timeout=remaining)  # type: ignore[attr-defined]
        assert frame is not None, "call audio ended early"
        assert len(frame) == FRAME_BYTES
        received += frame
    return bytes(received)


async def test_boot_and_modem_state(make_rig: RigFactory) -> None:
    rig = await make_rig()
    state = rig.modem.state
    assert state.connected
    assert state.sim is SimStatus.READY
    assert state.registered
    assert state.operator == "SimTel"
    assert state.signal_dbm == -71  # +CSQ: 21
    assert state.own_number == "+79160000000"  # came hex-encoded (AT+CSCS="UCS2") and was decoded
    assert state.pcm_supported
    assert state.info.model == "SIMCOM_SIM7600G-H"
    wire = modem_state_payload(state).encode()  # what the modem service retains on modem/state
    assert {key: wire[key] for key in ("sim", "registered", "operator", "signal_dbm", "ports")} == {
        "sim": "ready",
        "registered": True,
        "operator": "SimTel",
        "signal_dbm": -71,
        "ports": {"at": str(rig.paths[0]), "audio": str(rig.paths[1])},
    }
    commands = rig.sim.counters.commands
    for expected in ("ATE0", "AT+CMEE=2", "AT+CLIP=1", "AT+CLCC=1", "AT+DDET=1", "AT+CMGF=1", "AT+CPCMREG=0"):
        assert expected in commands
    assert commands.index("AT") < commands.index("ATE0")  # polled AT first, echo still on


async def test_incoming_call_rings_answers_audio_both_ways_dtmf_and_caller_hangs_up(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    record = tmp_path / "uplink.wav"
    rig = await make_rig(sim_config=replace_sim(record_path=record), answer_after_rings=3)
    sim, modem, events = rig.sim, rig.modem, rig.events

    await sim.incoming_call(CALLER)
    ringing = await events.wait_for("ringing")
    assert ringing.caller == CALLER and not ringing.withheld and ringing.direction is CallDirection.INCOMING
    answered = await events.wait_for("answered", timeout=3)
    assert answered.call_id == ringing.call_id
    assert sim.call is not None and 3 <= sim.call.rings_sent <= 4  # answered after the third RING
    assert modem.call.state is CallState.ACTIVE and modem.call.caller == CALLER

    # Caller audio: a WAV streamed in real time only once AT+CPCMREG=1 was sent.
    speech = tone(frames=10, seed=2)
    wav = tmp_path / "caller.wav"
    write_pcm_wav(wav, speech)
    await sim.caller_speaks(wav)
    await read_until(modem, speech, timeout=3)

    # Reply audio: frames written by the box reach the modem and its recording.
    reply = tone(frames=25, seed=3)
    for offset in range(0, len(reply), FRAME_BYTES):
        assert modem.write_audio_frame(reply[offset : offset + FRAME_BYTES])
        await asyncio.sleep(0.02)
    await sim.wait_until(lambda: reply in bytes(sim.uplink_audio), 3, "uplink audio")
    stats = modem.pcm_stats()
    assert stats is not None and stats.tx_bytes == len(reply) and stats.tx_dropped_frames == 0
    assert stats.rx_bytes_per_s > 8000  # ~16000 B/s of downlink while the call runs

    # DTMF both ways.
    await sim.caller_sends_dtmf("5#", gap_s=0.01)
    digits = [(await events.wait_for("dtmf")).digit for _ in range(2)]
    assert digits == ["5", "#"]
    await modem.send_dtmf("1*")
    assert sim.dtmf_from_host == ["1", "*"]

    await sim.caller_hangs_up()
    ended = await events.wait_for("ended", timeout=3)
    assert ended.call_id == ringing.call_id
    assert ended.reason is EndReason.REMOTE_HANGUP and ended.answered and ended.duration_s > 0
    await events.wait_for("call_state", where=lambda e: e.call.state is CallState.IDLE)
    states = [e.call.state for e in events.of_type("call_state")]
    assert states == [CallState.RINGING, CallState.ACTIVE, CallState.ENDING, CallState.IDLE]
    await sim.wait_until(lambda: not sim.settings.pcm, 2, "AT+CPCMREG=0")
    commands = sim.counters.commands
    assert commands.index("AT+CPCMREG=1") > commands.index("ATA")
    assert reply in read_pcm_wav(record)
    assert modem.audio is None


async def test_local_hangup_sends_chup_then_pcm_off(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1)
    await rig.sim.incoming_call(CALLER)
    await rig.events.wait_for("answered", timeout=3)
    await rig.sim.wait_until(lambda: rig.sim.settings.pcm, 2, "PCM on")
    await rig.modem.hangup()
    ended = await rig.events.wait_for("ended")
    assert ended.reason is EndReason.LOCAL_HANGUP
    assert rig.sim.call is None
    commands = rig.sim.counters.commands
    assert commands.index("AT+CPCMREG=0", commands.index("AT+CHUP")) > commands.index("AT+CHUP")
    assert rig.modem.call.state is CallState.IDLE


async def test_manual_answer_when_auto_answer_is_off(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=None)
    await rig.sim.incoming_call(CALLER)
    await rig.events.wait_for("ringing")
    await asyncio.sleep(0.35)
    assert rig.sim.call is not None and rig.sim.call.stat is SimCallStat.INCOMING
    await rig.modem.answer()
    await rig.events.wait_for("answered")
    assert rig.sim.call.stat is SimCallStat.ACTIVE


async def test_blocked_number_is_rejected_without_answering(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1, blocked_numbers=("+7 999 000-11-22",))
    await rig.sim.incoming_call("89990001122")  # national form of the blocked number
    ended = await rig.events.wait_for("ended", timeout=3)
    assert ended.reason is EndReason.REJECTED and not ended.answered
    assert "ATA" not in rig.sim.counters.commands
    assert rig.sim.call is None


async def test_withheld_caller(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1)
    await rig.sim.incoming_call("", withheld=True)
    ringing = await rig.events.wait_for("ringing")
    assert ringing.withheld and ringing.caller is None
    await rig.events.wait_for("answered", timeout=3)


async def test_withheld_numbers_can_be_blocked(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=2, blocked_numbers=("withheld",))
    await rig.sim.incoming_call("", withheld=True)
    ended = await rig.events.wait_for("ended", timeout=3)
    assert ended.reason is EndReason.REJECTED


async def test_missed_call_reported_once(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=10, sim_config=replace_sim(no_carrier_after_missed=True))
    await rig.sim.incoming_call(CALLER, give_up_after_s=0.25)
    missed = await rig.events.wait_for("missed", timeout=3)
    ended = await rig.events.wait_for("ended")
    assert ended.reason is EndReason.MISSED and ended.call_id == missed.call_id and missed.caller == CALLER
    await rig.events.drain(0.4)
    assert len(rig.events.of_type("ended")) == 1  # +CLCC stat 6, MISSED_CALL and NO CARRIER: one call


async def test_remote_hangup_without_any_urc_is_caught_by_clcc_reconcile(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1, sim_config=replace_sim(silent_remote_hangup=True))
    await rig.sim.incoming_call(CALLER)
    await rig.events.wait_for("answered", timeout=3)
    await rig.sim.caller_hangs_up()
    started = time.monotonic()
    ended = await rig.events.wait_for("ended", timeout=3)
    assert ended.reason is EndReason.REMOTE_HANGUP
    assert time.monotonic() - started < 1.5  # reconcile_call_s = 0.3


async def test_outgoing_call_answered_then_remote_hangup(make_rig: RigFactory) -> None:
    rig = await make_rig()
    call_id = await rig.modem.dial("+79161112233")
    ringing = await rig.events.wait_for("ringing")
    assert ringing.call_id == call_id and ringing.direction is CallDirection.OUTGOING
    assert rig.modem.call.state is CallState.RINGING
    await rig.events.wait_for("answered", timeout=3)
    assert "ATD+79161112233;" in rig.sim.counters.commands
    frame = await rig.modem.read_audio_frame(timeout=2)
    assert frame is not None and len(frame) == FRAME_BYTES
    await rig.sim.caller_hangs_up()
    ended = await rig.events.wait_for("ended")
    assert ended.reason is EndReason.REMOTE_HANGUP and ended.direction is CallDirection.OUTGOING


async def test_outgoing_call_busy(make_rig: RigFactory) -> None:
    rig = await make_rig(sim_config=replace_sim(dial_outcome="busy"))
    await rig.modem.dial("+79161112233")
    ended = await rig.events.wait_for("ended", timeout=3)
    assert ended.reason is EndReason.BUSY and not ended.answered


async def test_sms_receive_read_and_delete(make_rig: RigFactory) -> None:
    rig = await make_rig()
    text = "Привет! Перезвоните, пожалуйста."
    await rig.sim.incoming_sms(CALLER, text)
    received = await rig.events.wait_for("sms_received", timeout=3)
    assert received.message.sender == CALLER and received.message.text == text
    assert received.message.timestamp is not None
    assert rig.sim.sms_store == {}
    commands = rig.sim.counters.commands
    read = [i for i, c in enumerate(commands) if c in ("AT+CMGR=0", 'AT+CMGL="ALL"')]
    assert read and commands.index("AT+CMGD=0") > read[0]  # deleted only after it was read
    await rig.events.drain(0.3)
    assert len(rig.events.of_type("sms_received")) == 1


async def test_sms_stored_while_nobody_listened_is_collected(make_rig: RigFactory) -> None:
    rig = await make_rig(start_modem=False)
    await rig.sim.wait_until(lambda: rig.sim.booted, 2, "simulator boot")
    await rig.sim.incoming_sms(CALLER, "left while you were away")
    await rig.modem.start()
    received = await rig.events.wait_for("sms_received", timeout=5)
    assert received.message.text == "left while you were away"
    await rig.sim.wait_until(lambda: rig.sim.sms_store == {}, 2, "stored SMS deleted")


async def test_sms_send_gsm_and_cyrillic(make_rig: RigFactory) -> None:
    rig = await make_rig()
    reference = await rig.modem.send_sms(CALLER, "Call me back")
    assert reference == 1
    await rig.modem.send_sms("+79160001122", "Перезвоню через час")
    first, second = rig.sim.sent_sms
    assert (first.number, first.text, first.dcs) == (CALLER, "Call me back", 0)
    assert (second.number, second.text, second.dcs) == ("+79160001122", "Перезвоню через час", 8)


async def test_unplug_mid_call_ends_call_and_recovers(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1)
    sim, modem, events = rig.sim, rig.modem, rig.events
    await sim.incoming_call(CALLER)
    answered = await events.wait_for("answered", timeout=3)
    await sim.wait_until(lambda: sim.settings.pcm, 2, "PCM on")

    unplugged_at = time.monotonic()
    await sim.unplug()
    ended = await events.wait_for("ended", timeout=2)
    lost_after = time.monotonic() - unplugged_at
    assert ended.call_id == answered.call_id and ended.reason is EndReason.MODEM_LOST and ended.answered
    assert lost_after < 2.0
    await events.wait_for("modem_disconnected", timeout=2)
    assert modem.call.state is CallState.IDLE
    assert not modem.connected and modem.audio is None

    await asyncio.sleep(0.3)
    replugged_at = time.monotonic()
    await sim.replug()
    await events.wait_for("modem_connected", timeout=5)
    assert time.monotonic() - replugged_at < 5.0
    assert modem.state.connected and modem.state.sim is SimStatus.READY

    await sim.incoming_call("+79160009988")
    await events.wait_for("answered", timeout=3, where=lambda e: e.caller == "+79160009988")
    frame = await modem.read_audio_frame(timeout=2)
    assert frame is not None


async def test_pcm_enable_is_retried_on_error(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1, sim_config=replace_sim(cpcmreg_failures=2))
    await rig.sim.incoming_call(CALLER)
    await rig.events.wait_for("answered", timeout=3)
    frame = await rig.modem.read_audio_frame(timeout=2)
    assert frame is not None
    assert rig.sim.counters.commands.count("AT+CPCMREG=1") == 3
    assert not [a for a in rig.events.of_type("pcm_alarm") if a.kind == "enable_failed"]


async def test_pcm_enable_failure_raises_an_alarm(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=1, sim_config=replace_sim(cpcmreg_failures=9))
    await rig.sim.incoming_call(CALLER)
    alarm = await rig.events.wait_for("pcm_alarm", timeout=3, where=lambda a: a.kind == "enable_failed")
    assert alarm.call_id == rig.modem.call.call_id
    # nothing comes down the line: the health check says so too
    await rig.events.wait_for("pcm_alarm", timeout=3, where=lambda a: a.kind == "downlink_silent")


async def test_sim_pin_entered_once(make_rig: RigFactory) -> None:
    rig = await make_rig(sim_config=replace_sim(sim_pin="1234"), sim_pin="1234")
    assert rig.modem.state.sim is SimStatus.READY and rig.modem.state.registered
    assert rig.sim.counters.commands.count('AT+CPIN="1234"') == 1


async def test_wrong_sim_pin_is_not_retried(make_rig: RigFactory) -> None:
    rig = await make_rig(sim_config=replace_sim(sim_pin="1234"), sim_pin="0000")
    await asyncio.sleep(1.2)  # a couple of state polls
    state = rig.modem.state
    assert state.sim is SimStatus.PIN_REQUIRED
    assert any("PIN rejected" in p for p in state.problems)
    assert sum(c.startswith("AT+CPIN=") for c in rig.sim.counters.commands) == 1
    await rig.sim.unplug()  # a reconnect (or a modem reboot) must not spend another attempt
    await rig.events.wait_for("modem_disconnected", timeout=2)
    await rig.sim.replug()
    await rig.events.wait_for("modem_connected", timeout=5)
    assert not any(c.startswith("AT+CPIN=") for c in rig.sim.counters.commands[-30:])
    assert sum(c.startswith("AT+CPIN=") for c in rig.sim.counters.commands) == 1


async def test_missing_sim_pin_is_explained(make_rig: RigFactory) -> None:
    rig = await make_rig(sim_config=replace_sim(sim_pin="1234"))
    assert rig.modem.state.sim is SimStatus.PIN_REQUIRED
    assert any("needs a PIN" in p for p in rig.modem.state.problems)
    assert not any(c.startswith("AT+CPIN=") for c in rig.sim.counters.commands)


async def test_slow_boot_is_polled_until_ok(make_rig: RigFactory) -> None:
    rig = await make_rig(sim_config=replace_sim(boot_delay_s=0.6))
    assert rig.modem.state.connected
    assert rig.sim.counters.commands[0] == "AT"


async def test_ports_that_appear_later_are_picked_up(make_rig: RigFactory) -> None:
    rig = await make_rig(start_sim=False, wait_connected=False)
    await asyncio.sleep(0.3)
    assert not rig.modem.connected
    assert any("do not exist" in p for p in rig.modem.state.problems)
    await rig.sim.start()
    await rig.modem.wait_connected(timeout=5)
    assert rig.modem.state.problems == ()


async def test_modem_reset_is_a_disconnect_and_reconnect(make_rig: RigFactory) -> None:
    rig = await make_rig()
    response = await rig.modem.at_command("AT+CRESET")
    assert response.ok
    await rig.events.wait_for("modem_disconnected", timeout=2)
    await rig.events.wait_for("modem_connected", timeout=5)
    assert rig.modem.state.connected


async def test_doubled_cr_urcs(make_rig: RigFactory) -> None:
    rig = await make_rig(answer_after_rings=2, sim_config=replace_sim(doubled_cr_urcs=True))
    await rig.sim.incoming_call(CALLER)
    await rig.events.wait_for("answered", timeout=3)
    await rig.sim.caller_sends_dtmf("7", gap_s=0)
    assert (await rig.events.wait_for("dtmf")).digit == "7"


async def test_commands_fail_cleanly_while_disconnected(make_rig: RigFactory) -> None:
    from drivers.sim7600.modem import ModemUnavailableError

    rig = await make_rig()
    await rig.sim.unplug()
    await rig.events.wait_for("modem_disconnected", timeout=2)
    for attempt in (rig.modem.dial("+79161112233"), rig.modem.send_sms(CALLER, "x"), rig.modem.hangup()):
        try:
            await attempt
        except ModemUnavailableError:
            continue
        raise AssertionError("expected ModemUnavailableError")
    assert rig.modem.write_audio_frame(bytes(FRAME_BYTES)) is False


async def test_hung_modem_is_treated_as_lost_and_recovered(make_rig: RigFactory) -> None:
    from dataclasses import replace

    from .sim7600_helpers import FAST_TIMINGS

    timings = replace(
        FAST_TIMINGS, command_timeout_s=0.3, state_poll_interval_s=0.2, max_consecutive_timeouts=2, boot_timeout_s=1.0
    )
    rig = await make_rig(timings=timings)
    rig.sim.hung = True
    disconnected = await rig.events.wait_for("modem_disconnected", timeout=5)
    assert "stopped answering" in disconnected.reason
    rig.sim.hung = False
    await rig.events.wait_for("modem_connected", timeout=5)


async def test_the_simulator_keeps_only_the_last_calls_audio(make_rig: RigFactory) -> None:
    """A long demo run on the built-in simulator does not grow: the audio of the last few calls only, all counted."""
    from drivers.sim7600.simulator.sim_modem import RECORDINGS_KEPT

    rig = await make_rig(answer_after_rings=1)
    calls = RECORDINGS_KEPT + 3
    for _ in range(calls):
        await rig.sim.incoming_call(CALLER)
        await rig.events.wait_for("answered", timeout=3)
        await rig.sim.wait_until(lambda: rig.sim.settings.pcm, 2, "PCM on")
        assert rig.modem.write_audio_frame(b"\x01\x00" * (FRAME_BYTES // 2))
        await rig.modem.hangup()
        await rig.events.wait_for("ended")
    assert len(rig.sim.recordings) == RECORDINGS_KEPT
    assert rig.sim.status()["recordings"] == calls
