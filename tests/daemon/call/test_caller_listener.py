"""The listener's endpointing and when it asks the STT: early decodes for whisper, live audio for Vosk.

The VAD here calls a frame speech when it is loud (the real Silero runs in
tests/engines and tests/calls); the STT is a recogniser that takes a set time
to decode and writes how much speech it was given, so a test can tell which
audio a transcript came from. Caller audio arrives paced like a phone line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from daemon.call.listener import (
    CallerListener,
    CallerNoise,
    CallerSpeechStarted,
    CallerStopped,
    CallerUtterance,
    ListenerEvent,
)
from drivers.audio import ENGINE_RATE
from engines.stt.interface import SttFinal, SttPartial
from engines.vad.interface import VadSession
from engines.vad.speech_detector import DetectorSettings, SpeechDetector

RATE = ENGINE_RATE
CHUNK = 320  # 20 ms, as the line delivers it
LOUD = 1000 / 32768  # a frame louder than this is speech (float32 audio, as the line delivers it)


class LoudnessVad(VadSession):
    sample_rate = RATE
    frame_samples = 512

    def probability(self, frame: np.ndarray) -> float:
        return 0.9 if float(np.abs(frame).max()) > LOUD else 0.0

    def reset(self) -> None:
        pass


class TimedRecogniser:
    """Decodes in ``decode_s``; the text says how many seconds of loud audio it was given."""

    def __init__(self, decode_s: float, streams: bool = False) -> None:
        self.decode_s = decode_s
        self.streams = streams
        self.heard_s: list[float] = []
        self.given_s: list[float] = []  # all the audio a decode got, silence included

    async def transcribe(self, audio: AsyncIterator[np.ndarray], language: str | None) -> AsyncIterator[SttFinal | SttPartial]:
        loud = total = 0
        async for chunk in audio:
            total += chunk.size
            loud += chunk.size if float(np.abs(chunk).max(initial=0)) > LOUD else 0
            if self.streams and loud:
                yield SttPartial(f"{loud / RATE:.1f} s so far")
        started = time.monotonic()
        await asyncio.sleep(self.decode_s)
        self.heard_s.append(round(loud / RATE, 1))
        self.given_s.append(total / RATE)
        yield SttFinal(f"{loud / RATE:.1f} s of speech", language or "", 0.0, time.monotonic() - started, ())


def caller(*parts: tuple[str, float]) -> np.ndarray:
    """('speech' | 'silence', seconds) pieces: speech is a loud tone."""
    pieces = []
    for kind, seconds in parts:
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        tone = (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16).astype(np.float32) / 32768
        pieces.append(tone if kind == "speech" else np.zeros(n, np.float32))
    return np.concatenate(pieces)


async def paced(audio: np.ndarray) -> AsyncIterator[np.ndarray]:
    started = time.monotonic()
    for index, at in enumerate(range(0, len(audio), CHUNK)):
        await asyncio.sleep(max(0.0, started + index * CHUNK / RATE - time.monotonic()))
        yield audio[at:at + CHUNK]


async def listen(audio: np.ndarray, stt: TimedRecogniser, *, early_stt_ms: int | None = 200) -> tuple[CallerListener, list[ListenerEvent]]:
    events: list[ListenerEvent] = []
    detector = SpeechDetector(LoudnessVad(), DetectorSettings(min_speech_ms=100, min_silence_ms=550, speech_pad_ms=0))
    listener = CallerListener(detector, stt, "en", events.append, min_utterance_ms=250,  # type: ignore[arg-type]
                              early_stt_ms=early_stt_ms)
    await listener.run(paced(audio))
    return listener, events


def one(events: list[ListenerEvent], kind: type) -> object:
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, events
    return found[0]


async def test_whisper_decodes_during_the_silence_window_so_the_transcript_is_there_at_the_endpoint() -> None:
    stt = TimedRecogniser(decode_s=0.25)
    listener, events = await listen(caller(("silence", 0.3), ("speech", 1.0), ("silence", 1.0)), stt)
    stopped = one(events, CallerStopped)
    heard = one(events, CallerUtterance)
    assert isinstance(stopped, CallerStopped) and isinstance(heard, CallerUtterance)
    assert heard.seq == stopped.seq == 1 and heard.text == "1.0 s of speech"
    assert listener.decodes == 1
    # with the silence that set it off: whisper drops a last word that ends right at the end of its audio
    assert stt.given_s[0] >= 1.0 + 0.2
    # begun 200 ms into the 550 ms window, the 250 ms decode was done before the endpoint
    assert heard.final_at - heard.endpoint_at < 0.06
    assert [type(e) for e in events] == [CallerSpeechStarted, CallerStopped, CallerUtterance]


async def test_without_the_early_decode_the_transcript_comes_a_decode_after_the_endpoint() -> None:
    stt = TimedRecogniser(decode_s=0.25)
    listener, events = await listen(caller(("silence", 0.3), ("speech", 1.0), ("silence", 1.0)), stt, early_stt_ms=None)
    heard = one(events, CallerUtterance)
    assert isinstance(heard, CallerUtterance) and heard.text == "1.0 s of speech"
    assert listener.decodes == 1
    assert heard.final_at - heard.endpoint_at >= 0.25
    assert stt.given_s[0] >= 1.0 + 0.5  # the silence that ended the turn included


async def test_a_caller_who_pauses_and_goes_on_is_transcribed_whole() -> None:
    stt = TimedRecogniser(decode_s=0.15)
    listener, events = await listen(
        caller(("silence", 0.3), ("speech", 0.6), ("silence", 0.35), ("speech", 0.6), ("silence", 1.0)), stt,
    )
    heard = one(events, CallerUtterance)
    assert isinstance(heard, CallerUtterance) and heard.text == "1.2 s of speech"
    assert stt.heard_s == [0.6, 1.2]  # the pause's early decode was dropped; the last one heard it all
    assert listener.decodes == 2
    assert heard.final_at - heard.endpoint_at < 0.06


async def test_a_pause_while_the_last_early_decode_runs_is_decoded_whole_at_the_endpoint() -> None:
    stt = TimedRecogniser(decode_s=0.6)  # still busy with the first pause when the caller stops again
    listener, events = await listen(
        caller(("silence", 0.3), ("speech", 0.6), ("silence", 0.3), ("speech", 0.3), ("silence", 1.5)), stt,
    )
    heard = one(events, CallerUtterance)
    assert isinstance(heard, CallerUtterance) and heard.text == "0.9 s of speech"
    assert stt.heard_s == [0.6, 0.9] and listener.decodes == 2


async def test_a_short_noise_is_never_transcribed() -> None:
    stt = TimedRecogniser(decode_s=0.25)
    listener, events = await listen(caller(("silence", 0.3), ("speech", 0.2), ("silence", 1.0)), stt)
    assert isinstance(one(events, CallerNoise), CallerNoise)
    assert not any(isinstance(e, (CallerStopped, CallerUtterance)) for e in events)
    assert listener.decodes == 0 and stt.heard_s == []


async def test_a_streaming_recogniser_hears_the_utterance_live() -> None:
    stt = TimedRecogniser(decode_s=0.02, streams=True)
    listener, events = await listen(caller(("silence", 0.3), ("speech", 1.0), ("silence", 1.0)), stt)
    heard = one(events, CallerUtterance)
    assert isinstance(heard, CallerUtterance) and heard.text == "1.0 s of speech"
    assert listener.decodes == 0 and stt.heard_s == [1.0]
    partials = [e for e in events if type(e).__name__ == "CallerPartial"]
    assert partials and events.index(partials[0]) < events.index(one(events, CallerStopped))  # type: ignore[arg-type]
