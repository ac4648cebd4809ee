"""The box as a caller meets it: each case runs on the rig (the simulator in CI, a real tester phone on a bench).

What each case checks and its pass criteria are in hil-tests/README.md.
Times on the rig's side include what the rig adds (``rig.timing``: zero on
the simulator, the network's share on the real rig).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from measurements import Measure
from rig import BoxPersona, Feature, Rig, same_number
from rig_audio import audible_fraction, first_audible_s, last_audible_end_s, slice_s
from transcriber import Transcriber, has_word, word_recall

from daemon.tools.demo_caller import CallerLine, caller_script

pytestmark = pytest.mark.asyncio(loop_scope="module")

GREETING_WITHIN_S = 1.0  # answer -> the greeting's first audible frame
QUIET_AFTER_TURN_S = 0.8  # the box is done with a turn once it has been quiet this long
REPLY_WITHIN_S = 5.0  # the caller's last word -> the box's next audio (CPU whisper; a filler covers a slow STT)
BARGE_IN_TARGET_S = 0.2  # the caller starts talking over the box -> the box is quiet
BARGE_IN_MARGIN_S = 0.1  # 20 ms frames on both sides, the simulator's 20 ms downlink tick, the 20 ms fade
TALK_OVER_AFTER_S = 1.0  # how far into the greeting the caller starts talking
BARGE_IN_WINDOW_S = 1.5  # after the caller's onset; the box cannot have a reply ready this soon
RECOVERY_TARGET_S = 5.0  # modem replugged -> the box answers calls again
SPEECH_FRACTION = 0.5  # share of audible 20 ms frames in a spoken sentence (pauses between words are quiet)


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def box_idle(rig: Rig) -> AsyncIterator[None]:
    """Every case starts and ends with the box idle (the rig is shared by the module)."""
    await rig.settle()
    yield
    await rig.settle()


@pytest_asyncio.fixture(loop_scope="module")
async def persona(rig: Rig) -> BoxPersona:
    return await rig.box_persona()


def lines_of(persona: BoxPersona) -> list[CallerLine]:
    if persona.language != "en":
        pytest.skip(f"the box answers in {persona.language!r}: the only caller recordings whisper understands are English")
    return caller_script("en")


def within(rig: Rig, seconds: float) -> float:
    """A bound on the box's own time, plus what the rig's voice path adds."""
    return seconds + rig.timing.voice_round_trip_s


async def test_answers_and_greets(rig: Rig, persona: BoxPersona, transcriber: Transcriber, measure: Measure) -> None:
    async with await rig.call_box() as call:
        first = await call.wait_speech(timeout=within(rig, GREETING_WITHIN_S) + 5)
        latency_s = call.time_of(first) - call.answered_at
        end = await call.wait_quiet(QUIET_AFTER_TURN_S, first, timeout=20)
        audio = call.recorded()
        greeting = await call.utterance("secretary", source="greeting", timeout=10)
    heard = await transcriber.transcribe(slice_s(audio, first, end), persona.language)
    print(f"whisper heard the greeting as {heard!r}; the box said {greeting['text']!r}")
    limit = GREETING_WITHIN_S + rig.timing.voice_round_trip_s / 2  # only the way back to the tester counts
    measure("greeting: first audio after answer", latency_s * 1000, limit=limit * 1000)
    measure("greeting: length", end - first, unit="s")
    assert latency_s <= limit, f"the greeting began {latency_s:.3f} s after the answer"
    assert end - first >= 1.0 and audible_fraction(audio, first, end) >= SPEECH_FRACTION
    assert has_word(heard, persona.display_name), f"whisper heard {heard!r}, not the name {persona.display_name!r}"
    assert has_word(greeting["text"], persona.display_name) and not greeting["interrupted"]


async def test_two_turn_conversation(rig: Rig, persona: BoxPersona, measure: Measure) -> None:
    introduction = lines_of(persona)[0]
    async with await rig.call_box() as call:
        greeting_start = await call.wait_speech(timeout=within(rig, GREETING_WITHIN_S) + 5)
        await call.wait_quiet(QUIET_AFTER_TURN_S, greeting_start, timeout=20)
        mark = rig.box_events.mark()
        said = await call.say(introduction.wav)
        reply_start = await call.wait_speech(said.speech_end_s, timeout=within(rig, REPLY_WITHIN_S) + 10)
        reply_end = await call.wait_quiet(QUIET_AFTER_TURN_S, reply_start, timeout=30)
        caller = await call.utterance("caller", after=mark, timeout=10)
        reply = await call.utterance("secretary", after=mark, timeout=10)
        audio = call.recorded()
    voice_to_voice_s = reply_start - said.speech_end_s
    measure("voice-to-voice on the line", voice_to_voice_s * 1000, limit=within(rig, REPLY_WITHIN_S) * 1000)
    measure("voice-to-voice as the box measured it", float(reply["latency_ms"]["voice_to_voice_ms"]))
    print(f"the box heard {caller['text']!r} and replied {reply['text']!r}")
    recall = word_recall(introduction.text, caller["text"])
    assert recall >= 0.7, f"the box heard {caller['text']!r} for {introduction.text!r}"
    assert reply["source"] == "scripted" or reply["source"].startswith("llm:"), f"not an answer: {reply}"
    assert "?" in reply["text"], f"the box did not ask the next question: {reply['text']!r}"
    assert voice_to_voice_s <= within(rig, REPLY_WITHIN_S)
    assert audible_fraction(audio, reply_start, reply_end) >= SPEECH_FRACTION


async def test_caller_talks_over_the_greeting(rig: Rig, persona: BoxPersona, measure: Measure) -> None:
    long_request = lines_of(persona)[3]
    async with await rig.call_box() as call:
        await call.wait_speech(timeout=within(rig, GREETING_WITHIN_S) + 5)
        await call.listen(TALK_OVER_AFTER_S)
        said = await call.say(long_request.wav)
        audio = call.recorded()
        greeting = await call.utterance("secretary", source="greeting", timeout=10)
    onset = said.speech_start_s
    window_end = onset + BARGE_IN_WINDOW_S
    quiet_at = last_audible_end_s(audio, onset, window_end) or onset
    silence_after_s = max(0.0, quiet_at - onset)
    limit = within(rig, BARGE_IN_TARGET_S + BARGE_IN_MARGIN_S)
    measure("barge-in: caller onset -> box quiet", silence_after_s * 1000, limit=limit * 1000)
    assert audible_fraction(audio, onset - 0.5, onset) >= 0.3, "the box was not talking when the caller began"
    assert greeting["interrupted"], "the box did not report the greeting as interrupted"
    assert silence_after_s <= limit, f"the box kept talking {silence_after_s:.3f} s over the caller"
    assert audible_fraction(audio, quiet_at, window_end) == 0.0


async def test_hash_key_ends_the_call_with_goodbye(rig: Rig, persona: BoxPersona, transcriber: Transcriber,
                                                   measure: Measure) -> None:
    async with await rig.call_box() as call:
        first = await call.wait_speech(timeout=within(rig, GREETING_WITHIN_S) + 5)
        await call.wait_quiet(QUIET_AFTER_TURN_S, first, timeout=20)
        pressed_at = call.position_s()
        await call.press("#")
        ended = await call.wait_ended(30)
        goodbye = await call.utterance("secretary", source="goodbye", timeout=5)
        audio = call.recorded()
    key = rig.box_events.events("call/event", "dtmf", after=call.mark)
    goodbye_start = first_audible_s(audio, pressed_at)
    assert goodbye_start is not None, "nothing was said after the key was pressed"
    measure("goodbye: key -> first audio", (goodbye_start - pressed_at) * 1000)
    heard = await transcriber.transcribe(slice_s(audio, goodbye_start), persona.language)
    print(f"whisper heard the goodbye as {heard!r}; the box said {goodbye['text']!r}")
    assert [k["digit"] for k in key if k["call_id"] == call.box_call_id] == ["#"]
    assert ended["reason"] == "dtmf_end", ended
    assert word_recall(goodbye["text"], heard, min_length=3) >= 0.5, f"whisper heard {heard!r} for {goodbye['text']!r}"


async def test_caller_hangs_up_and_the_call_is_recorded(rig: Rig) -> None:
    async with await rig.call_box() as call:
        await call.wait_speech(timeout=within(rig, GREETING_WITHIN_S) + 5)
        await call.listen(1.0)
        await call.hang_up()
        ended = await call.wait_ended(30)
    assert ended["reason"] == "remote_hangup", ended
    assert ended["record_dir"], "the box kept no record of the call"
    record = await rig.box_events.request("calls/get", {"call_id": call.box_call_id})
    assert record["end_reason"] == "remote_hangup" and record["duration_s"] >= 1.0
    spoken = [u for u in record["transcript"] if u["role"] == "secretary"]
    assert spoken and spoken[0]["interrupted"], record["transcript"]  # the greeting, cut by the hang-up


async def test_sms_to_the_box_is_published(rig: Rig) -> None:
    text = f"HIL ping {uuid.uuid4().hex[:8]}: call me back"
    mark = rig.box_events.mark()
    await rig.send_sms(text)
    received = await rig.box_events.wait_event("sms/event", "received", timeout=60, after=mark, text=text)
    if rig.tester_number is not None:
        assert same_number(received.payload["from"], rig.tester_number), received.payload


async def test_sms_from_the_box_reaches_the_tester(rig: Rig) -> None:
    if (why := rig.missing(Feature.SMS_FROM_BOX)) is not None:
        pytest.skip(why)
    text = f"HIL reply {uuid.uuid4().hex[:8]}: Alex will call you"
    assert await rig.sms_from_box(text, timeout=90) == text


async def test_modem_unplugged_and_replugged(rig: Rig, measure: Measure) -> None:
    if (why := rig.missing(Feature.UNPLUG)) is not None:
        pytest.skip(why)
    bus = rig.box_events
    mark = bus.mark()
    unplugged_at = time.monotonic()
    await rig.unplug_box_modem()
    gone = await bus.wait_event("modem/event", "disconnected", timeout=15, after=mark)
    back_mark = bus.mark()
    replugged_at = time.monotonic()
    await rig.replug_box_modem()
    back = await bus.wait_event("modem/event", "connected", timeout=RECOVERY_TARGET_S + rig.timing.modem_boot_s + 30,
                                after=back_mark)
    async with await rig.call_box() as call:
        await call.wait_speech(timeout=within(rig, GREETING_WITHIN_S) + 5)
    reconnect_s = back.at - replugged_at
    answered_s = call.answered_at - replugged_at
    measure("unplug -> modem/event disconnected", (gone.at - unplugged_at) * 1000)
    measure("replug -> modem/event connected", reconnect_s, unit="s", limit=RECOVERY_TARGET_S + rig.timing.modem_boot_s)
    limit = RECOVERY_TARGET_S + rig.timing.modem_boot_s + rig.timing.call_setup_s
    measure("replug -> a call answered", answered_s, unit="s", limit=limit)
    assert reconnect_s <= RECOVERY_TARGET_S + rig.timing.modem_boot_s
    assert answered_s <= limit, f"the box answered {answered_s:.2f} s after the replug"
