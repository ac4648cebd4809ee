"""The speaker keeps the words the caller heard of a live-synthesised chunk cut mid-way (issue 18 item 5).

The real ``Speaker`` on a real paced ``CallLine`` (20 ms clock, jitter
buffer) with the real espeak-ng TTS, the lightest real voice. espeak speaks
a sentence as one piece of audio, so when the caller barges in the chunk is
still being fed to the line: before the fix its words were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio

from config.loader import bundled_config_text, parse_config_text
from daemon.call.line import CallLine
from daemon.call.speaker import ReplyProgress, Speaker, words_heard
from daemon.call.stream_line import StreamLineSession
from daemon.voices.persona_voice import PersonaVoice
from engines.fallback_chain import BackendSlot
from engines.tts.espeak_backend import EspeakBackend
from engines.tts.settings import EspeakSettings
from engines.tts.tts_engine import TtsEngine

PERSONA = parse_config_text(bundled_config_text(), "default").settings.personas["lidia"]
LONG = "I will make sure that Alex gets your message about the invoice today and he will call you back this afternoon."


@pytest_asyncio.fixture
async def tts() -> AsyncIterator[TtsEngine]:
    engine = TtsEngine([BackendSlot("espeak", lambda: EspeakBackend(EspeakSettings()))])
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()


async def one(text: str) -> AsyncIterator[str]:
    yield text


async def speak(tts: TtsEngine, text: str, cut_after_s: float | None) -> tuple[ReplyProgress, str, float]:
    """Say ``text``; with ``cut_after_s``, barge in that long after its first audio went out."""
    session = StreamLineSession("test-call")
    async with CallLine(session, None) as line:
        speaker = Speaker(line, tts, PersonaVoice.of(PERSONA))
        progress = speaker.begin()
        saying = asyncio.create_task(speaker.say(one(text), progress))
        async with asyncio.timeout(30):
            if cut_after_s is None:
                await saying
            else:
                while progress.first_audio_at is None:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(cut_after_s)
                speaker.cut(40)  # what the flow does at a barge-in: cut the line, cancel the reply
                saying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saying
        return progress, progress.heard_text(line), progress.played_s(line)


async def test_an_uninterrupted_chunk_keeps_all_its_words(tts: TtsEngine) -> None:
    progress, heard, _ = await speak(tts, LONG, None)
    assert progress.finished and heard == LONG == progress.planned_text


async def test_a_chunk_cut_mid_way_keeps_the_words_played_before_the_cut(tts: TtsEngine) -> None:
    whole, _, _ = await speak(tts, LONG, None)
    length_s = whole.segments[0].seconds  # the chunk's audio, as espeak speaks it
    assert length_s > 4.0

    progress, heard, played_s = await speak(tts, LONG, 2.0)
    assert progress.planned_text == LONG and not progress.finished
    assert 1.8 <= played_s <= 2.6  # the line stopped within a frame or two of the cut (and its fade)
    assert heard.endswith("…"), heard
    words = heard.removesuffix("…").split()
    assert 2 <= len(words) < len(LONG.split()), heard
    assert words == LONG.split()[: len(words)]
    # to the word, as the audio's share allows: the words the whole chunk's known length gives (give or take
    # one: the length is estimated from the TTS's own text of the sentence while it is still being fed)
    expected = words_heard(LONG, played_s / length_s, last_word=False).split()
    assert abs(len(words) - len(expected)) <= 1, (words, expected, played_s, length_s)


async def test_a_cut_before_any_audio_keeps_no_words(tts: TtsEngine) -> None:
    progress, heard, played_s = await speak(tts, LONG, 0.0)
    assert played_s <= 0.1 and heard == ""


async def test_a_tts_that_loads_mid_call_speaks_the_next_chunk(tts: TtsEngine) -> None:
    """The speaker asks for the current TTS before each chunk: a call that began without one is not mute for good."""
    loaded: list[TtsEngine] = []
    session = StreamLineSession("test-call")
    async with CallLine(session, None) as line:
        speaker = Speaker(line, None, PersonaVoice.of(PERSONA), current_tts=lambda: loaded[0] if loaded else None)
        before = speaker.begin()
        await speaker.say(one("Hello."), before)
        assert before.failed == ["Hello."] and line.audible_frames == 0  # no engine yet: nothing said
        loaded.append(tts)  # the engine comes up mid-call
        after = speaker.begin()
        async with asyncio.timeout(30):
            await speaker.say(one("Hello again."), after)
        assert after.failed == [] and after.played_s(line) > 0.3 and after.heard_text(line) == "Hello again."
