"""Issue 18 item 1: a reply that never reached the caller is not in the transcript (no ``start_s == end_s`` lies).

The flow runs on a real paced ``CallLine`` with the real ``Speaker``; the
ears hear nothing. With no TTS engine and no cached greeting the greeting
cannot be said: nothing of it may be recorded. With the greeting cached it
is played and recorded with its real length.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from config.call_schema import CallConfig
from config.loader import bundled_config_text, parse_config_text
from daemon.call.flow import CallFlow, CallPhrases, TurnTiming
from daemon.call.line import CallLine
from daemon.call.speaker import Speaker
from daemon.call.stream_line import StreamLineSession
from daemon.dialogue.scripted_dialogue import ScriptedDialogue
from daemon.records.call_record import Utterance
from daemon.voices.persona_voice import PersonaVoice
from daemon.voices.phrase_cache import CachedSpeech

PERSONA = parse_config_text(bundled_config_text(), "default").settings.personas["lidia"]


class DeafEars:
    """A caller who says nothing: the caller's audio is read and ignored."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self.emit = emit

    async def run(self, audio: AsyncIterator[Any]) -> None:
        async for _ in audio:
            pass


async def said_on_a_call(greeting: CachedSpeech | None) -> list[Utterance]:
    session = StreamLineSession("unspoken")
    said: list[tuple[Utterance, TurnTiming | None]] = []
    async with CallLine(session, None) as line:
        flow = CallFlow(
            call_id="unspoken", caller="+15550100", persona=PERSONA, config=CallConfig(), line=line,
            speaker=Speaker(line, None, PersonaVoice.of(PERSONA)),  # no TTS engine loaded
            listener_factory=lambda emit: DeafEars(emit),  # type: ignore[arg-type,return-value]
            dialogue=ScriptedDialogue(PERSONA, "+15550100"), phrases=CallPhrases(greeting=greeting),
            on_utterance=lambda u, t: said.append((u, t)), hangup=_nothing,
        )

        async def caller_hangs_up() -> None:
            await asyncio.sleep(1.5)
            flow.hung_up()
            session.close()

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(caller_hangs_up())
            await asyncio.wait_for(flow.run(), 15)
    return [u for u, _ in said if u.role == "secretary"]


async def _nothing() -> None:
    pass


async def test_a_greeting_no_tts_could_speak_is_not_recorded() -> None:
    assert await said_on_a_call(None) == []


async def test_a_played_greeting_is_recorded_with_its_length() -> None:
    rate = 8000
    samples = (np.sin(2 * np.pi * 440 * np.arange(int(0.5 * rate)) / rate) * 8000).astype(np.int16)
    [greeting] = await said_on_a_call(CachedSpeech(PERSONA.greeting, samples))
    assert greeting.source == "greeting" and greeting.text == PERSONA.greeting
    assert greeting.end_s - greeting.start_s >= 0.4
