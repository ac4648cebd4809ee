"""Phrases a persona says often (greeting, goodbye, fillers), synthesized once and kept at line rate.

The greeting must reach the caller within 100 ms of the call's audio coming
up, which no TTS can promise; so each phrase is synthesized when the TTS
engine is ready (and again when the persona or voice changes), resampled to
the 8 kHz line rate and kept in memory, and also on disk under
``<data_dir>/cache/speech`` so a restart does not wait for the TTS.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daemon.voices.persona_voice import PersonaVoice, spoken_at_rate
from drivers.audio import LINE_RATE, read_wav
from drivers.audio.pcm import float_to_int16
from drivers.audio.wav_io import StreamingWavWriter
from engines.tts.tts_engine import TtsEngine

log = logging.getLogger("secretary.call")

CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class CachedSpeech:
    text: str
    samples: np.ndarray  # int16 at the line rate
    sample_rate: int = LINE_RATE

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


class SpeechCache:
    def __init__(self, cache_dir: Path | None, engine_tag: str = "") -> None:
        self.cache_dir = cache_dir
        self.engine_tag = engine_tag  # changes when the TTS configuration changes
        self._memory: dict[str, CachedSpeech] = {}
        self._lock = asyncio.Lock()

    def key(self, voice: PersonaVoice, text: str) -> str:
        raw = f"{CACHE_VERSION}|{self.engine_tag}|{voice.cache_key()}|{text}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]

    def get(self, voice: PersonaVoice, text: str) -> CachedSpeech | None:
        return self._memory.get(self.key(voice, text))

    async def load(self, voice: PersonaVoice, text: str) -> CachedSpeech | None:
        """The phrase from memory or from disk (an earlier run made it), never synthesized: None if not there."""
        key = self.key(voice, text)
        async with self._lock:
            cached = self._memory.get(key)
            if cached is None:
                cached = await asyncio.to_thread(self._load, key, text)
                if cached is not None:
                    self._memory[key] = cached
            return cached

    async def ensure(self, tts: TtsEngine, voice: PersonaVoice, text: str) -> CachedSpeech:
        """The phrase at line rate: from memory, from disk, or synthesized now."""
        key = self.key(voice, text)
        async with self._lock:
            cached = self._memory.get(key)
            if cached is None:
                cached = await asyncio.to_thread(self._load, key, text)
            if cached is None:
                cached = await self._synthesize(tts, voice, text)
                await asyncio.to_thread(self._store, key, cached)
            self._memory[key] = cached
            return cached

    async def _synthesize(self, tts: TtsEngine, voice: PersonaVoice, text: str) -> CachedSpeech:
        parts = [part async for part in spoken_at_rate(tts, voice, text, LINE_RATE)]
        if not parts:
            raise ValueError(f"the TTS produced no audio for {text!r}")
        samples = float_to_int16(np.concatenate(parts))
        return CachedSpeech(text=text, samples=samples)

    def _path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.wav"

    def _load(self, key: str, text: str) -> CachedSpeech | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            samples, rate = read_wav(path)
        except (OSError, ValueError, EOFError) as exc:
            log.warning("speech cache: unreadable %s (%s); synthesizing again", path.name, exc)
            return None
        if rate != LINE_RATE or samples.size == 0:
            return None
        return CachedSpeech(text=text, samples=samples)

    def _store(self, key: str, speech: CachedSpeech) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            writer = StreamingWavWriter(partial, LINE_RATE)
            writer.write(speech.samples)
            writer.close()
            os.replace(partial, path)
        except OSError as exc:
            log.warning("speech cache: cannot store %s (%s); kept in memory only", path.name, exc)
