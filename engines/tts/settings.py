"""Typed, frozen settings of each TTS backend kind (config/ maps YAML onto these).

Relative paths (voice models, XTTS checkpoint, reference samples, latents
cache) are resolved against the models directory the factory is given.
Each class validates itself on construction, so a bad value fails at start
with the field's name. The worker-process kinds also carry ``WorkerSettings``.

Stdlib only: the worker process rebuilds ``PiperSettings``/``XttsSettings``
from the JSON of its ``load`` message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGED_PREFIX = "packaged:"


class SettingsError(ValueError):
    """A TTS setting is invalid."""


def _positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(f"{owner}.{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{owner}.{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _languages_map(owner: str, name: str, value: Mapping[str, Any]) -> None:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{owner}.{name} must be a mapping of language -> voice")
    for language, voice in value.items():
        if not isinstance(language, str) or not language:
            raise SettingsError(f"{owner}.{name}: language keys must be non-empty strings, got {language!r}")
        if not isinstance(voice, str) or not voice:
            raise SettingsError(f"{owner}.{name}[{language!r}] must be a non-empty string, got {voice!r}")


def resolve_path(spec: str, models_dir: Path) -> Path:
    """``spec`` as a path: absolute stays, ``~`` expands, relative is under ``models_dir``."""
    path = Path(spec).expanduser()
    return path if path.is_absolute() else models_dir / path


@dataclass(frozen=True)
class WorkerSettings:
    """How a backend's worker process is run (kinds "piper-worker" and "xtts")."""

    python: str = ""
    start_timeout_s: float = 180.0
    chunk_timeout_s: float = 30.0
    cancel_timeout_s: float = 5.0
    stop_timeout_s: float = 5.0
    env: Mapping[str, str] = field(default_factory=dict)
    stderr_tail_lines: int = 40

    def __post_init__(self) -> None:
        for name in ("start_timeout_s", "chunk_timeout_s", "cancel_timeout_s", "stop_timeout_s"):
            _positive("worker", name, getattr(self, name))
        if not isinstance(self.env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()):
            raise SettingsError("worker.env must map strings to strings")
        if not isinstance(self.stderr_tail_lines, int) or self.stderr_tail_lines < 1:
            raise SettingsError(f"worker.stderr_tail_lines must be a positive int, got {self.stderr_tail_lines!r}")


@dataclass(frozen=True)
class PiperSettings:
    """Piper (ONNX, CPU). ``voices`` maps a language to a voice: "packaged:<name>" or a .onnx path."""

    voices: Mapping[str, str] = field(default_factory=lambda: {"en": "packaged:joe-us"})
    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w: float | None = None
    speaker_id: int | None = None
    threads: int = 1
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    def __post_init__(self) -> None:
        _languages_map("piper", "voices", self.voices)
        if not self.voices:
            raise SettingsError("piper.voices is empty: name at least one language -> voice")
        if self.length_scale is not None:
            _positive("piper", "length_scale", self.length_scale)
        for name in ("noise_scale", "noise_w"):  # 0 = no randomness
            value = getattr(self, name)
            if value is not None:
                _positive("piper", name, value, allow_zero=True)
        if self.speaker_id is not None and (not isinstance(self.speaker_id, int) or self.speaker_id < 0):
            raise SettingsError(f"piper.speaker_id must be a non-negative int or null, got {self.speaker_id!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise SettingsError(f"piper.threads must be an int >= 0 (0 = onnxruntime's default), got {self.threads!r}")

    def as_json(self) -> dict[str, Any]:
        """Everything but ``worker``: what the worker process needs to load Piper."""
        return {
            "voices": dict(self.voices),
            "length_scale": self.length_scale,
            "noise_scale": self.noise_scale,
            "noise_w": self.noise_w,
            "speaker_id": self.speaker_id,
            "threads": self.threads,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PiperSettings:
        return cls(**{k: v for k, v in data.items()})

    def resolved(self, models_dir: Path) -> PiperSettings:
        """A copy whose voice file paths are absolute (packaged voices stay as they are)."""
        voices = {
            language: spec if spec.startswith(PACKAGED_PREFIX) else str(resolve_path(spec, models_dir))
            for language, spec in self.voices.items()
        }
        return PiperSettings(
            voices=voices,
            length_scale=self.length_scale,
            noise_scale=self.noise_scale,
            noise_w=self.noise_w,
            speaker_id=self.speaker_id,
            threads=self.threads,
            worker=self.worker,
        )


@dataclass(frozen=True)
class EspeakSettings:
    """Debian espeak-ng as the last-resort voice. ``voices`` maps a language to an espeak-ng voice name."""

    executable: str = "espeak-ng"
    voices: Mapping[str, str] = field(default_factory=lambda: {"en": "en-us", "ru": "ru"})
    rate_wpm: int = 160
    pitch: int = 50
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _languages_map("espeak", "voices", self.voices)
        if not self.voices:
            raise SettingsError("espeak.voices is empty")
        if not isinstance(self.rate_wpm, int) or not 80 <= self.rate_wpm <= 450:
            raise SettingsError(f"espeak.rate_wpm must be an int in [80, 450], got {self.rate_wpm!r}")
        if not isinstance(self.pitch, int) or not 0 <= self.pitch <= 99:
            raise SettingsError(f"espeak.pitch must be an int in [0, 99], got {self.pitch!r}")
        _positive("espeak", "timeout_s", self.timeout_s)


RHVOICE_QUALITIES = ("min", "standard", "max")


@dataclass(frozen=True)
class RhvoiceSettings:
    """RHVoice (Debian non-free ``librhvoice5`` + ``rhvoice-russian``) through its C library.

    ``voices`` maps a language to its default voice id (``"irina"``);
    ``offered`` are the voice ids a request may name (a persona's voice); empty
    means only those of ``voices``. Which voices may be offered at all is the
    config's licence check (config/rhvoice_voices.py), not this class's.
    ``rate``/``pitch``/``volume`` are RHVoice's absolute values in [-1, 1]
    (0 = the voice's default); ``quality`` "min" speaks at 16 kHz.
    """

    voices: Mapping[str, str] = field(default_factory=lambda: {"ru": "irina"})
    offered: tuple[str, ...] = ()
    quality: str = "min"
    rate: float = 0.0
    pitch: float = 0.0
    volume: float = 0.0

    def __post_init__(self) -> None:
        _languages_map("rhvoice", "voices", self.voices)
        if not self.voices:
            raise SettingsError("rhvoice.voices is empty: name at least one language -> voice")
        if isinstance(self.offered, str) or not all(isinstance(v, str) and v for v in self.offered):
            raise SettingsError(f"rhvoice.offered must be a tuple of voice ids, got {self.offered!r}")
        if self.quality not in RHVOICE_QUALITIES:
            raise SettingsError(f"rhvoice.quality must be one of {', '.join(RHVOICE_QUALITIES)}, got {self.quality!r}")
        for name in ("rate", "pitch", "volume"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
                raise SettingsError(f"rhvoice.{name} must be a number in [-1, 1] (0 = the voice's default), got {value!r}")

    @property
    def voice_ids(self) -> frozenset[str]:
        """Every voice id this backend may speak with (lowercase)."""
        return frozenset(v.lower() for v in (*self.voices.values(), *self.offered))


@dataclass(frozen=True)
class XttsSettings:
    """Coqui XTTS v2 in its own worker process (its own venv with torch + CUDA + coqui-tts).

    ``voices`` maps a voice name to its reference samples: WAV files and/or
    directories (every .wav inside), at least ``min_reference_samples`` each.
    """

    model_dir: str = "xtts_v2"
    voices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_voice: str = ""
    languages: tuple[str, ...] = ("en", "ru")
    default_preset: str = "natural"
    presets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    device: str = "cuda"
    gpu_memory_fraction: float | None = 0.3
    latents_cache_dir: str = "xtts_latents"
    stream_chunk_size: int = 20
    min_reference_samples: int = 3
    use_deepspeed: bool = False
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    def __post_init__(self) -> None:
        if not isinstance(self.voices, Mapping):
            raise SettingsError("xtts.voices must map a voice name to a list of reference samples")
        for name, samples in self.voices.items():
            if not isinstance(name, str) or not name:
                raise SettingsError(f"xtts.voices: voice names must be non-empty strings, got {name!r}")
            if isinstance(samples, str) or not all(isinstance(s, str) and s for s in samples):
                raise SettingsError(f"xtts.voices[{name!r}] must be a list of sample paths")
        if self.default_voice and self.default_voice not in self.voices:
            raise SettingsError(f"xtts.default_voice {self.default_voice!r} is not one of xtts.voices ({sorted(self.voices)})")
        if not self.languages or not all(isinstance(lang, str) and lang for lang in self.languages):
            raise SettingsError("xtts.languages must list at least one language code")
        if not self.device or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise SettingsError(f"xtts.device must be 'cuda', 'cuda:N' or 'cpu', got {self.device!r}")
        if self.gpu_memory_fraction is not None:
            _positive("xtts", "gpu_memory_fraction", self.gpu_memory_fraction)
            if self.gpu_memory_fraction > 1:
                raise SettingsError(f"xtts.gpu_memory_fraction must be in (0, 1], got {self.gpu_memory_fraction}")
        if not isinstance(self.stream_chunk_size, int) or not 1 <= self.stream_chunk_size <= 200:
            raise SettingsError(f"xtts.stream_chunk_size must be an int in [1, 200], got {self.stream_chunk_size!r}")
        if not isinstance(self.min_reference_samples, int) or self.min_reference_samples < 1:
            raise SettingsError(f"xtts.min_reference_samples must be a positive int, got {self.min_reference_samples!r}")

    @property
    def voice(self) -> str:
        """The default voice's name ("" when no voice is configured)."""
        return self.default_voice or next(iter(self.voices), "")

    def as_json(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir,
            "voices": {name: list(samples) for name, samples in self.voices.items()},
            "default_voice": self.default_voice,
            "languages": list(self.languages),
            "default_preset": self.default_preset,
            "presets": {name: dict(values) for name, values in self.presets.items()},
            "device": self.device,
            "gpu_memory_fraction": self.gpu_memory_fraction,
            "latents_cache_dir": self.latents_cache_dir,
            "stream_chunk_size": self.stream_chunk_size,
            "min_reference_samples": self.min_reference_samples,
            "use_deepspeed": self.use_deepspeed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> XttsSettings:
        values = dict(data)
        values["voices"] = {name: tuple(samples) for name, samples in values.get("voices", {}).items()}
        values["languages"] = tuple(values.get("languages", ("en", "ru")))
        return cls(**values)

    def resolved(self, models_dir: Path) -> XttsSettings:
        """A copy whose paths are absolute (what the worker gets)."""
        return XttsSettings(
            **{
                **{k: getattr(self, k) for k in self.__dataclass_fields__},
                "model_dir": str(resolve_path(self.model_dir, models_dir)),
                "latents_cache_dir": str(resolve_path(self.latents_cache_dir, models_dir)),
                "voices": {
                    name: tuple(str(resolve_path(s, models_dir)) for s in samples)
                    for name, samples in self.voices.items()
                },
            }
        )
