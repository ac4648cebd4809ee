"""Debian espeak-ng as the last-resort voice (robotic, but it speaks Russian and never needs a model).

Each sentence is one ``espeak-ng --stdout`` subprocess (10–30 ms): the text goes
in on stdin (so no text can be mistaken for an option), a WAV comes back on
stdout and is cut into one chunk per sentence. Subprocesses are asyncio ones:
nothing blocks the loop, every run has a timeout, and a cancelled stream kills
its process. The voice per language and the rate come from settings; a
preset's speed scales the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator

import numpy as np

from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend, warmup_text
from engines.tts.intonation_presets import builtin_speed
from engines.tts.sentences import split_sentences
from engines.tts.settings import EspeakSettings
from engines.tts.wav_bytes import WavError, parse_wav_pcm16


class EspeakBackend(TtsBackend):
    name = "espeak"

    def __init__(self, settings: EspeakSettings) -> None:
        self._settings = settings
        self._executable: str | None = None
        self._version = ""

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._settings.voices)

    @property
    def model(self) -> str:
        voices = ", ".join(f"{k}={v}" for k, v in sorted(self._settings.voices.items()))
        return f"{self._version or 'espeak-ng'} ({voices})"

    async def load(self) -> None:
        executable = shutil.which(self._settings.executable)
        if executable is None:
            raise BackendUnavailable(f"{self._settings.executable!r} is not installed (apt install espeak-ng)")
        self._executable = executable
        output = await self._run(["--version"], b"")
        self._version = output.decode("utf-8", "replace").split("  Data at")[0].strip()
        for language, voice in sorted(self._settings.voices.items()):
            try:
                await self._speak("a", voice, self._settings.rate_wpm)
            except BackendError as exc:
                raise BackendUnavailable(f"espeak-ng voice {voice!r} for {language!r} does not work: {exc}") from None

    async def warm_up(self) -> None:
        for language in sorted(self.languages):
            async for _ in self.synthesize(SynthesisRequest(warmup_text(language), language)):
                pass

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        voice = self._settings.voices.get(request.language)
        if voice is None:
            raise RequestError(
                f"espeak-ng has no voice for language {request.language!r} (voices: {', '.join(sorted(self.languages))})"
            )
        rate = max(80, min(450, round(self._settings.rate_wpm * builtin_speed(request.preset))))
        for sentence in split_sentences(request.text):
            samples, sample_rate = await self._speak(sentence, voice, rate)
            yield AudioChunk(samples=samples, sample_rate=sample_rate, text=sentence)

    async def _speak(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, int]:
        args = ["-v", voice, "-s", str(rate), "-p", str(self._settings.pitch), "-b", "1", "--stdout"]
        wav = await self._run(args, text.encode("utf-8"))
        try:
            return parse_wav_pcm16(wav)
        except WavError as exc:
            raise BackendError(f"espeak-ng returned no usable audio for {text[:40]!r}: {exc}") from None

    async def _run(self, args: list[str], stdin: bytes) -> bytes:
        if self._executable is None:
            raise BackendError("espeak-ng backend is not loaded")
        try:
            process = await asyncio.create_subprocess_exec(
                self._executable,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise BackendError(f"cannot run {self._executable}: {exc}") from exc
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                out, err = await process.communicate(stdin)
        except TimeoutError:
            raise BackendError(f"espeak-ng did not finish within {self._settings.timeout_s:g} s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode != 0:
            message = err.decode("utf-8", "replace").strip() or f"exit code {process.returncode}"
            raise BackendError(f"espeak-ng failed: {message}")
        return out
