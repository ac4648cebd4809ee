"""Coqui XTTS v2 as it runs inside the worker process (``--backend xtts``).

``load`` imports torch and coqui-tts (the maintained ``coqui-tts`` fork) lazily,
checks the device, caps this process's share of GPU memory
(``torch.cuda.set_per_process_memory_fraction``: vLLM shares the card), loads
the checkpoint (``config.json``, ``model.pth``, ``vocab.json``) and prepares
every configured voice's conditioning latents: from the on-disk cache when the
voice's reference samples are unchanged, else computed once with
``get_conditioning_latents`` and cached.

``stream`` cuts the text into sentences within the model's per-language
character limit and runs ``inference_stream`` on each with the request's
intonation preset, yielding every decoded chunk as it arrives (first audio
after ~``stream_chunk_size`` GPT tokens) and closing each sentence with an
empty chunk that carries its text. ``stop`` is checked between chunks.

A voice is a name in ``XttsSettings.voices`` (its reference WAVs) or one of the
checkpoint's built-in studio speakers.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engines.backend import BackendError, BackendUnavailable
from engines.fallback_chain import RequestError
from engines.tts.interface import AudioChunk, SynthesisRequest
from engines.tts.intonation_presets import PresetBook, PresetError
from engines.tts.sentences import split_sentences
from engines.tts.settings import XttsSettings
from engines.tts.speaker_latents_cache import SpeakerLatents, SpeakerLatentsCache, file_sha256

log = logging.getLogger("secretary.engines.tts.xtts")

CHECKPOINT_FILES = ("config.json", "model.pth", "vocab.json")
SAMPLE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})
DEFAULT_CHAR_LIMIT = 250


def expand_reference_samples(name: str, entries: Sequence[str], min_count: int) -> list[Path]:
    """The sample files of a voice: files as listed, directories expanded to their audio files (sorted)."""
    samples: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            samples.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES and p.is_file()))
        elif path.is_file():
            samples.append(path)
        else:
            raise BackendUnavailable(f"XTTS voice {name!r}: reference sample {path} does not exist")
    if len(samples) < min_count:
        raise BackendUnavailable(
            f"XTTS voice {name!r} has {len(samples)} reference sample(s), needs at least {min_count}"
        )
    return samples


def model_identity(model_dir: Path) -> str:
    """What makes two checkpoints give different latents: the config's bytes and the weights' size."""
    weights = model_dir / "model.pth"
    return f"{file_sha256(model_dir / 'config.json')[:16]}:{weights.stat().st_size}"


class XttsInference:
    def __init__(self, settings: XttsSettings) -> None:
        self._settings = settings
        self._model: Any = None
        self._torch: Any = None
        self._voices: dict[str, tuple[Any, Any]] = {}
        self._presets = PresetBook(settings.presets, settings.default_preset)
        self._sample_rate = 24000

    def load(self) -> dict[str, Any]:
        settings = self._settings
        try:
            import torch
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except Exception as exc:  # noqa: BLE001 - ImportError or a broken torch/torchaudio install
            raise BackendUnavailable(
                f"coqui-tts (XTTS) is not importable by {sys.executable}: {type(exc).__name__}: {exc}"
            ) from None
        self._torch = torch
        device = torch.device(settings.device)
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable(f"CUDA is not available to torch {torch.__version__} in {sys.executable}")
            if settings.gpu_memory_fraction is not None:
                torch.cuda.set_per_process_memory_fraction(settings.gpu_memory_fraction, device.index or 0)
        model_dir = Path(settings.model_dir)
        missing = [name for name in CHECKPOINT_FILES if not (model_dir / name).is_file()]
        if missing:
            raise BackendUnavailable(f"XTTS v2 checkpoint in {model_dir} lacks {', '.join(missing)}")
        config = XttsConfig()
        config.load_json(str(model_dir / "config.json"))
        unsupported = [lang for lang in settings.languages if lang not in config.languages]
        if unsupported:
            raise BackendError(f"XTTS checkpoint does not support languages {unsupported} (it has {config.languages})")
        model = Xtts.init_from_config(config)
        model.load_checkpoint(config, checkpoint_dir=str(model_dir), eval=True, use_deepspeed=settings.use_deepspeed)
        model.to(device)
        self._model = model
        self._sample_rate = int(getattr(config.audio, "output_sample_rate", 24000))

        cache = SpeakerLatentsCache(Path(settings.latents_cache_dir))
        salt = model_identity(model_dir)
        origins: dict[str, str] = {}
        for name, entries in settings.voices.items():
            samples = expand_reference_samples(name, entries, settings.min_reference_samples)
            latents, cached = cache.get_or_compute(samples, self._compute_latents, salt=salt, voice=name)
            self._voices[name] = (
                torch.from_numpy(latents.gpt_cond_latent).to(device),
                torch.from_numpy(latents.speaker_embedding).to(device),
            )
            origins[name] = "cache" if cached else "computed"
            log.info("XTTS voice %r: latents %s from %d samples", name, origins[name], len(samples))
        if not self._voices and not self._builtin_speakers():
            raise BackendUnavailable("no XTTS voice: configure xtts.voices (3+ reference samples each)")
        if settings.voice == "" and not self._voices:
            log.info("no configured voice: using built-in speaker %r", self._builtin_speakers()[0])
        return {
            "languages": list(settings.languages),
            "device": str(device),
            "model": f"XTTS v2 ({model_dir.name})",
            "sample_rate": self._sample_rate,
            "voices": sorted(self._voices),
            "latents": origins,
        }

    def _compute_latents(self, samples: list[Path]) -> SpeakerLatents:
        model, config = self._model, self._model.config
        gpt_cond_latent, speaker_embedding = model.get_conditioning_latents(
            audio_path=[str(p) for p in samples],
            gpt_cond_len=config.gpt_cond_len,
            gpt_cond_chunk_len=config.gpt_cond_chunk_len,
            max_ref_length=config.max_ref_len,
            sound_norm_refs=config.sound_norm_refs,
        )
        return SpeakerLatents(
            gpt_cond_latent=gpt_cond_latent.detach().float().cpu().numpy(),
            speaker_embedding=speaker_embedding.detach().float().cpu().numpy(),
        )

    def _builtin_speakers(self) -> list[str]:
        manager = getattr(self._model, "speaker_manager", None)
        return sorted(manager.speakers) if manager is not None else []

    def _voice(self, name: str | None) -> tuple[Any, Any]:
        wanted = name or self._settings.voice
        if wanted in self._voices:
            return self._voices[wanted]
        builtin = self._builtin_speakers()
        if not wanted and builtin:
            wanted = builtin[0]
        if wanted in builtin:
            speaker = self._model.speaker_manager.speakers[wanted]
            device = self._model.device
            return speaker["gpt_cond_latent"].to(device), speaker["speaker_embedding"].to(device)
        known = sorted(self._voices) + builtin
        raise RequestError(f"XTTS has no voice {wanted!r} (configured: {', '.join(known) or 'none'})")

    def stream(self, request: SynthesisRequest, stop: threading.Event) -> Iterator[AudioChunk]:
        if self._model is None:
            raise BackendError("XTTS is not loaded")
        if request.language not in self._settings.languages:
            raise RequestError(f"XTTS is not configured for {request.language!r} ({', '.join(self._settings.languages)})")
        try:
            preset = self._presets.get(request.preset)
        except PresetError as exc:
            raise RequestError(str(exc)) from None
        gpt_cond_latent, speaker_embedding = self._voice(request.voice)
        limit = int(getattr(self._model.tokenizer, "char_limits", {}).get(request.language, DEFAULT_CHAR_LIMIT))
        rate = self._sample_rate
        for sentence in split_sentences(request.text, max_chars=max(20, limit)):
            if stop.is_set():
                return
            chunks = self._model.inference_stream(
                sentence,
                request.language,
                gpt_cond_latent,
                speaker_embedding,
                stream_chunk_size=self._settings.stream_chunk_size,
                enable_text_splitting=False,
                **preset.xtts_kwargs(),
            )
            try:
                for wav in chunks:
                    if stop.is_set():
                        return
                    yield AudioChunk.from_float(wav.detach().float().cpu().numpy(), rate)
            finally:
                chunks.close()
            yield AudioChunk(np.zeros(0, dtype=np.int16), rate, text=sentence)

    def close(self) -> None:
        self._model = None
        self._voices = {}
        torch = self._torch
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
