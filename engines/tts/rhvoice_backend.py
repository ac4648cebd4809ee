"""RHVoice as a TTS backend: Debian's Russian voices through ``libRHVoice.so.5``, streamed while it synthesises.

The library is loaded and the engine built in a worker thread; each request is
spoken sentence by sentence on a thread of its own (``stream_pushed`` in engines/thread_stream.py) with an
engine of its own from the pool (two requests at once do not wait for each other): the
library hands int16 chunks to the ``play_speech`` callback as it computes them
(about 0.1 s of audio each, at 16 kHz with ``quality: min``), and they go to
the loop as they come, so the first audio leaves after a few milliseconds.
Closing the stream (barge-in, a cancelled reply) makes the callback return 0,
which stops the synthesis within one chunk. Each sentence's last chunk carries
its text, as the interface asks.

The voice: a request naming one of the offered voices (a persona's) gets it;
a request naming another RHVoice voice is refused (``RequestError``); any other
name (a cloned XTTS voice this backend stands in for) and no name get the
language's configured voice. A preset's speed becomes RHVoice's relative rate;
the settings' rate/pitch/volume its absolute ones. Chunks keep the library's
rate: the playout resamples to the line once.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np

from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.thread_stream import stream_pushed
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend, warmup_text
from engines.tts.intonation_presets import builtin_speed
from engines.tts.rhvoice_library import (
    DATA_DIR,
    INSTALL_HINT,
    EnginePool,
    RhvoiceEngine,
    RhvoiceLibraryError,
    SynthParams,
    write_config,
)
from engines.tts.sentences import split_sentences
from engines.tts.settings import RhvoiceSettings


class RhvoiceBackend(TtsBackend):
    name = "rhvoice"

    def __init__(self, settings: RhvoiceSettings, data_dir: Path = DATA_DIR) -> None:
        self._settings = settings
        self._data_dir = data_dir
        self._engines: EnginePool | None = None
        self._config_dir: tempfile.TemporaryDirectory[str] | None = None
        self._names: dict[str, str] = {}  # voice id -> the library's name ("irina" -> "Irina")
        self._version = ""

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._settings.voices)

    @property
    def model(self) -> str:
        voices = ", ".join(f"{k}={v}" for k, v in sorted(self._settings.voices.items()))
        return f"RHVoice {self._version or ''} quality={self._settings.quality} ({voices})".replace("  ", " ")

    @property
    def device(self) -> str:
        return "cpu"

    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        config_dir = tempfile.TemporaryDirectory(prefix="secretary-rhvoice-")
        try:
            write_config(Path(config_dir.name), self._settings.quality)
            engines = EnginePool(Path(config_dir.name), self._data_dir)
        except RhvoiceLibraryError as exc:
            config_dir.cleanup()
            raise BackendUnavailable(str(exc)) from None
        names = {voice.name.lower(): voice.name for voice in engines.voices()}
        missing = sorted(self._settings.voice_ids - set(names))
        if missing:
            engines.close()
            config_dir.cleanup()
            raise BackendUnavailable(
                f"RHVoice voice(s) {', '.join(missing)} not installed (installed: {', '.join(sorted(names)) or 'none'}); "
                + INSTALL_HINT
            )
        self._engines, self._config_dir, self._names, self._version = engines, config_dir, names, engines.version

    async def warm_up(self) -> None:
        """A sentence in each language, a word in every other voice: the library loads a voice's data on first use."""
        for language in sorted(self.languages):
            async for _ in self.synthesize(SynthesisRequest(warmup_text(language), language)):
                pass
        defaults = {v.lower() for v in self._settings.voices.values()}
        for voice in sorted(self._settings.voice_ids - defaults):
            if voice in self._names:
                language = next(iter(sorted(self.languages)))
                async for _ in self.synthesize(SynthesisRequest("Да.", language, voice=voice)):
                    pass

    def voice_for(self, request: SynthesisRequest) -> str:
        """The library's name of the voice that speaks ``request`` (``RequestError`` when it cannot be served)."""
        default = self._settings.voices.get(request.language)
        if default is None:
            raise RequestError(
                f"RHVoice has no voice for language {request.language!r} (voices: {', '.join(sorted(self.languages))})"
            )
        wanted = (request.voice or "").lower()
        if wanted and wanted in self._settings.voice_ids:
            chosen = wanted
        elif wanted and wanted in self._names:
            offered = ", ".join(sorted(self._settings.voice_ids))
            raise RequestError(f"RHVoice voice {request.voice!r} is not offered by this box (offered: {offered})")
        else:
            chosen = default.lower()
        return self._names.get(chosen, chosen)

    def synth_params(self, request: SynthesisRequest) -> SynthParams:
        return SynthParams(
            voice=self.voice_for(request),
            absolute_rate=self._settings.rate,
            absolute_pitch=self._settings.pitch,
            absolute_volume=self._settings.volume,
            relative_rate=builtin_speed(request.preset),
        )

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        engines = self._engines
        if engines is None:
            raise BackendError("RHVoice backend is not loaded")
        params = self.synth_params(request)
        sentences = split_sentences(request.text)

        def produce(deliver: Callable[[AudioChunk], bool]) -> None:
            with engines.borrow() as engine:
                speak_all(engine, deliver)

        def speak_all(engine: RhvoiceEngine, deliver: Callable[[AudioChunk], bool]) -> None:
            for sentence in sentences:
                pending: list[AudioChunk] = []

                def on_audio(samples: np.ndarray, rate: int) -> bool:
                    if pending and not deliver(pending.pop()):
                        return False
                    pending.append(AudioChunk(samples=samples, sample_rate=rate))
                    return True

                if not engine.speak(sentence, params, on_audio):
                    return
                if pending:
                    last = pending.pop()
                    if not deliver(AudioChunk(samples=last.samples, sample_rate=last.sample_rate, text=sentence)):
                        return

        try:
            async for chunk in stream_pushed(produce, name="rhvoice-tts"):
                yield chunk
        except RhvoiceLibraryError as exc:
            raise BackendError(str(exc)) from exc

    async def close(self) -> None:
        engines, config_dir = self._engines, self._config_dir
        self._engines, self._config_dir = None, None
        if engines is not None:
            await asyncio.to_thread(engines.close)  # waits for sentences still being spoken
        if config_dir is not None:
            config_dir.cleanup()
