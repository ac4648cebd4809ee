"""faster-whisper (CTranslate2) speech to text, in segment mode.

Whisper is not a streaming recogniser: it reads a whole window of audio and
writes its text. So this backend collects the utterance (cheap: 64 KB per
second of float32, which whisper reads as it is), and when the audio stream
ends it decodes it in a worker thread
(``iterate_in_thread``; CTranslate2 releases the GIL, the event loop keeps
time). Decoding is tuned for a phone loop, where a bounded reply time beats
the last bit of accuracy: greedy search (beam 1), one temperature (0.0, no
fallback ladder that re-decodes hard audio up to six times), no conditioning
on previous text, no timestamps, and a cap on new tokens per 30 s window so
noise or a repetition loop cannot run long. The language comes from the
request (the persona); None lets whisper detect it, which costs an extra pass.

Audio longer than one 30 s window yields an ``SttPartial`` per finished window;
closing the stream stops the worker after the window it is decoding.
``device="auto"`` picks CUDA only when CTranslate2 sees a CUDA device.
Nothing here contacts a model hub: the model is a local directory (or the
pip-packaged whisper-base, see ``packaged_whisper``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.audio_format import DTYPE, SAMPLE_RATE, Samples
from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.stt.interface import SttBackend, SttEvent, SttFinal, SttPartial, SttSegment, checked_chunk, warm_up_noise
from engines.stt.packaged_whisper import WHISPER_BASE_SPEC, resolve_whisper_model
from engines.thread_stream import iterate_in_thread

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

# faster-whisper imports huggingface_hub; this box must never reach for a model hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEVICES = ("auto", "cpu", "cuda")
TEMPERATURE = 0.0
WARM_UP_SECONDS = 1.0
# whisper's decoder holds 448 positions; the prompt (sot, language, task, notimestamps) takes 4
MAX_NEW_TOKENS_LIMIT = 440
CLOSE_WAIT_S = 30.0

log = logging.getLogger("secretary.engines.stt")


@dataclass(frozen=True)
class FasterWhisperSettings:
    """How to load and run faster-whisper (the fixed decoding choices are in the module docstring)."""

    model: str = WHISPER_BASE_SPEC
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 2
    beam_size: int = 1
    max_new_tokens: int = 96
    keep_free_bytes: int = 0  # a packaged model is not staged if that would leave less free (the calls' recordings)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"faster-whisper device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.cpu_threads < 1:
            raise ValueError(f"faster-whisper cpu_threads must be >= 1, not {self.cpu_threads}")
        if self.beam_size < 1:
            raise ValueError(f"faster-whisper beam_size must be >= 1, not {self.beam_size}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(f"faster-whisper max_new_tokens must be 1..{MAX_NEW_TOKENS_LIMIT}, not {self.max_new_tokens}")
        if not self.model:
            raise ValueError("faster-whisper model must name a model directory or packaged:whisper-base")


def pick_device(requested: str, compute_type: str) -> tuple[str, str]:
    """Resolve ``auto`` device and compute type: cuda+float16 if a GPU is seen, else cpu+int8."""
    import ctranslate2

    gpus = ctranslate2.get_cuda_device_count()
    if requested == "cuda" and gpus == 0:
        raise BackendUnavailable("faster-whisper device is cuda but CTranslate2 sees no CUDA device")
    device = requested if requested != "auto" else ("cuda" if gpus > 0 else "cpu")
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


class FasterWhisperBackend(SttBackend):
    name = "faster-whisper"

    def __init__(self, settings: FasterWhisperSettings, models_dir: Path) -> None:
        self.settings = settings
        self._models_dir = models_dir
        self._model: WhisperModel | None = None
        self._model_dir: Path | None = None
        self._device = settings.device
        self._compute_type = settings.compute_type
        self._languages: frozenset[str] = frozenset()
        self._idle = threading.Condition()
        self._decoding = 0

    @property
    def device(self) -> str:
        return self._device

    @property
    def model(self) -> str:
        return str(self._model_dir) if self._model_dir is not None else self.settings.model

    @property
    def compute_type(self) -> str:
        return self._compute_type

    async def load(self) -> None:
        await asyncio.to_thread(self._load_blocking)

    def _load_blocking(self) -> None:
        model_dir = resolve_whisper_model(
            self.settings.model, self._models_dir, keep_free_bytes=self.settings.keep_free_bytes
        )
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise BackendUnavailable(f"faster-whisper is not installed ({exc})") from exc
        device, compute_type = pick_device(self.settings.device, self.settings.compute_type)
        try:
            model = WhisperModel(
                str(model_dir),
                device=device,
                compute_type=compute_type,
                cpu_threads=self.settings.cpu_threads,
                num_workers=1,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise BackendError(f"faster-whisper could not load {model_dir} on {device}/{compute_type}: {exc}") from exc
        self._model, self._model_dir = model, model_dir
        self._device, self._compute_type = device, compute_type
        self._languages = frozenset(model.supported_languages)

    async def warm_up(self) -> None:
        """Decode ~1 s of quiet noise: the first real request then finds every buffer allocated."""
        async for _ in self.transcribe(_once(warm_up_noise(WARM_UP_SECONDS)), "en" if "en" in self._languages else None):
            pass

    async def close(self) -> None:
        """Drop the model once no decode uses it; its weights are freed off the loop.

        A decode thread is a daemon: if it held the last reference, CTranslate2
        could tear the model down in it while the interpreter exits, which
        aborts the process ("terminate called without an active exception").
        So close waits (up to ``CLOSE_WAIT_S``) for running decodes to finish
        their window and frees the model in an executor thread, and decode
        threads hold the backend only weakly once their decode is over.
        """
        model, self._model = self._model, None
        if model is not None:
            last_reference = [model]
            del model
            await asyncio.to_thread(self._free_when_idle, last_reference)

    def _free_when_idle(self, last_reference: list[WhisperModel]) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._decoding == 0, timeout=CLOSE_WAIT_S):
                log.warning("faster-whisper closed while a decode still runs (%d)", self._decoding)
        last_reference.clear()

    def _require_model(self) -> WhisperModel:
        if self._model is None:
            raise BackendError("faster-whisper is not loaded")
        return self._model

    async def transcribe(self, audio: AsyncIterator[np.ndarray], language: str | None) -> AsyncIterator[SttEvent]:
        self._require_model()
        if language is not None and language not in self._languages:
            raise RequestError(f"faster-whisper model {self.model} does not know language {language!r}")
        chunks = [checked_chunk(chunk) async for chunk in audio]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=DTYPE)
        audio_s = len(samples) / SAMPLE_RATE
        started = time.monotonic()
        if len(samples) == 0:
            yield SttFinal("", language or "", 0.0, 0.0, ())
            return

        detected = language or ""
        segments: list[SttSegment] = []
        held: SttSegment | None = None
        # the worker thread (a daemon) must not keep the backend or model alive
        # once its decode is done: it only holds a weak reference between jobs
        backend = weakref.ref(self)
        decoding = iterate_in_thread(lambda stop: _decode_job(backend, samples, language, stop), name="stt-whisper")
        async with contextlib.aclosing(decoding):
            async for item in decoding:
                if isinstance(item, str):
                    detected = item
                    continue
                if held is not None:
                    segments.append(held)
                    yield SttPartial(_join([*segments, item]))
                held = item
        if held is not None:
            segments.append(held)
        yield SttFinal(
            text=_join(segments),
            language=detected,
            audio_s=audio_s,
            processing_s=time.monotonic() - started,
            segments=tuple(segments),
        )

    def _decode(self, samples: Samples, language: str | None, stop: threading.Event) -> Iterator[str | SttSegment]:
        """Worker thread: yield the language, then one ``SttSegment`` per decoded window."""
        with self._idle:
            model = self._require_model()
            self._decoding += 1
        try:
            yield from self._decode_with(model, samples, language, stop)
        finally:
            del model
            with self._idle:
                self._decoding -= 1
                self._idle.notify_all()

    def _decode_with(self, model: WhisperModel, samples: Samples, language: str | None, stop: threading.Event) -> Iterator[str | SttSegment]:
        windows, info = model.transcribe(
            samples,
            language=language,
            beam_size=self.settings.beam_size,
            best_of=1,
            temperature=TEMPERATURE,
            condition_on_previous_text=False,
            without_timestamps=True,
            max_new_tokens=self.settings.max_new_tokens,
            vad_filter=False,
        )
        yield info.language
        for window in windows:
            text = window.text.strip()
            if text:
                yield SttSegment(round(window.start, 3), round(window.end, 3), text)
            if stop.is_set():
                return


def _decode_job(backend: weakref.ref[FasterWhisperBackend], samples: Samples, language: str | None, stop: threading.Event) -> Iterator[str | SttSegment]:
    strong = backend()
    if strong is None:
        raise BackendError("faster-whisper was closed")
    yield from strong._decode(samples, language, stop)


def _join(segments: list[SttSegment]) -> str:
    return " ".join(s.text for s in segments if s.text)


async def _once(chunk: np.ndarray) -> AsyncIterator[np.ndarray]:
    yield chunk
