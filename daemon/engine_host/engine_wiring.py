"""From the ``engines`` config section to the four engine services.

Each engine's chain is a list of ``BackendSlot``: the backend's config name
and a builder that makes the (not yet loaded) backend from the typed config.
The engines' own settings dataclasses stay independent of the YAML schema;
this module is the one place that maps one onto the other. The cloud LLM
keys are resolved here through the daemon's secrets loader (``secret``: the
process environment, then the 0600 secrets file), so a key saved from the
web page is used after the reload that saving triggers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from config.engines_schema import (
    EnginesConfig,
    LlamaCppConfig,
    LlmConfig,
    OpenAICompatibleConfig,
    SttConfig,
    TtsConfig,
    VadConfig,
    VllmConfig,
)
from config.rhvoice_voices import offered_voices
from daemon.bus.connection import Bus
from daemon.engine_host.engine_service import ChainTiming, EngineService, StatusSink
from daemon.engine_host.llm_keys import LlmBackendConfig, SecretLookup, llm_key_env, llm_keys_digest
from engines.fallback_chain import BackendSlot, FallbackChain
from engines.llm.backend_factory import build_llm_backend
from engines.llm.interface import LlmBackend
from engines.llm.llm_engine import LlmEngine
from engines.llm.settings import AnthropicSettings, LlamaCppSettings, OpenAiCompatibleSettings, VllmSettings
from engines.stt.backend_factory import build_stt_backend
from engines.stt.faster_whisper_backend import FasterWhisperSettings
from engines.stt.interface import SttBackend
from engines.stt.stt_engine import SttEngine
from engines.stt.vosk_backend import VoskSettings
from engines.tts.backend_factory import build_tts_backend
from engines.tts.interface import TtsBackend
from engines.tts.settings import EspeakSettings, PiperSettings, RhvoiceSettings, WorkerSettings, XttsSettings
from engines.tts.tts_engine import TtsEngine
from engines.turn_end.smart_turn_backend import SmartTurnBackend, SmartTurnSettings
from engines.turn_end.turn_end_loader import TurnEndLoader
from engines.vad.backend_factory import build_vad_backend
from engines.vad.interface import VadBackend
from engines.vad.silero_backend import SileroSettings
from engines.vad.speech_detector import DetectorSettings
from engines.vad.vad_engine import VadEngine
from engines.vad.webrtc_backend import WebRtcSettings


def models_dir_of(engines: EnginesConfig, data_dir: Path) -> Path:
    return engines.models_dir if engines.models_dir is not None else data_dir / "models"


# -- VAD -------------------------------------------------------------------


def vad_slots(config: VadConfig) -> list[BackendSlot[VadBackend]]:
    def builder(kind: str) -> Callable[[], VadBackend]:
        if kind == "silero":
            return lambda: build_vad_backend("silero", SileroSettings(model=config.silero.model))
        return lambda: build_vad_backend("webrtc", WebRtcSettings(mode=config.webrtc.mode))

    return [BackendSlot(kind, builder(kind)) for kind in config.chain]


def turn_end_loader(config: VadConfig, on_status: StatusSink | None = None) -> TurnEndLoader:
    """The VAD engine's optional turn-end model (``engines.vad.turn_end_model``); ``relay`` feeds ``on_status``."""
    spec = config.turn_end_model
    build = None if spec is None else (lambda: SmartTurnBackend(SmartTurnSettings(model=spec)))
    return TurnEndLoader(build, on_status, off_reason="engines.vad.turn_end_model is null")


def vad_engine(config: VadConfig, on_status: StatusSink | None = None, **retry: float) -> VadEngine:
    """The VAD engine: its backend chain, detector thresholds and the turn-end model, one status sink for all."""
    turn_end = turn_end_loader(config, on_status)
    chain = FallbackChain("vad", vad_slots(config), turn_end.relay, **retry)
    return VadEngine(chain, detector_settings(config), turn_end)


def detector_settings(config: VadConfig) -> DetectorSettings:
    """The detector's model thresholds; a call sets its own speech and silence windows (``call`` section)."""
    return DetectorSettings(
        start_threshold=config.start_threshold,
        end_threshold=config.end_threshold,
        speech_pad_ms=config.speech_pad_ms,
    )


# -- STT -------------------------------------------------------------------


def stt_slots(config: SttConfig, models_dir: Path, keep_free_bytes: int = 0) -> list[BackendSlot[SttBackend]]:
    def builder(kind: str) -> Callable[[], SttBackend]:
        if kind in ("faster-whisper", "faster-whisper-cpu"):  # the second one: the CPU fallback of the GPU box
            fw = config.faster_whisper if kind == "faster-whisper" else config.faster_whisper_cpu
            settings: FasterWhisperSettings | VoskSettings = FasterWhisperSettings(
                model=fw.model,
                device=fw.device,
                compute_type=fw.compute_type,
                cpu_threads=fw.cpu_threads,
                beam_size=fw.beam_size,
                max_new_tokens=fw.max_new_tokens,
                keep_free_bytes=keep_free_bytes,
            )
        else:
            assert config.vosk.model is not None  # the schema requires it when vosk is chained
            settings = VoskSettings(model=config.vosk.model)
        backend_kind = "vosk" if kind == "vosk" else "faster-whisper"
        return lambda: build_stt_backend(backend_kind, settings, models_dir)

    return [BackendSlot(kind, builder(kind)) for kind in config.chain]


# -- LLM -------------------------------------------------------------------

LlmSettings = LlamaCppSettings | VllmSettings | OpenAiCompatibleSettings | AnthropicSettings


def _from_environment(name: str) -> str | None:
    return None  # the backend reads its variable from the process environment at load


def llm_settings(backend: LlmBackendConfig, secret: SecretLookup = _from_environment) -> LlmSettings:
    if isinstance(backend, LlamaCppConfig):
        return LlamaCppSettings(
            model=backend.model, mode=backend.mode, n_ctx=backend.n_ctx, n_threads=backend.n_threads,
            startup_timeout_s=backend.startup_timeout_s,
        )
    if isinstance(backend, VllmConfig):
        return VllmSettings(
            executable=backend.executable,
            model=backend.model,
            served_model_name=backend.served_model_name,
            gpu_memory_utilization=backend.gpu_memory_utilization,
            max_model_len=backend.max_model_len,
            lora_adapters=dict(backend.lora_adapters),
            max_loras=backend.max_loras,
            max_lora_rank=backend.max_lora_rank,
            extra_args=tuple(backend.extra_args),
            startup_timeout_s=backend.startup_timeout_s,
        )
    env = llm_key_env(backend)
    key = secret(env) if env else None
    if isinstance(backend, OpenAICompatibleConfig):
        return OpenAiCompatibleSettings(
            provider=backend.provider, model=backend.model, base_url=backend.base_url, api_key_env=backend.api_key_env,
            api_key=key,
        )
    return AnthropicSettings(model=backend.model, base_url=backend.base_url, api_key_env=backend.api_key_env, api_key=key)


def llm_slots(config: LlmConfig, models_dir: Path, secret: SecretLookup = _from_environment) -> list[BackendSlot[LlmBackend]]:
    """The chain's slots; ``secret`` resolves the API keys (default: each backend reads the process environment)."""
    def builder(name: str) -> Callable[[], LlmBackend]:
        backend = config.backends[name]
        settings = llm_settings(backend, secret)
        return lambda: build_llm_backend(backend.kind, settings, models_dir)

    return [BackendSlot(name, builder(name)) for name in config.chain]


# -- TTS -------------------------------------------------------------------


def tts_slots(config: TtsConfig, models_dir: Path) -> list[BackendSlot[TtsBackend]]:
    def builder(kind: str) -> Callable[[], TtsBackend]:
        settings: PiperSettings | EspeakSettings | RhvoiceSettings | XttsSettings
        if kind == "piper":
            piper = config.piper
            settings = PiperSettings(
                voices=dict(piper.voices),
                length_scale=piper.length_scale,
                noise_scale=piper.noise_scale,
                noise_w=piper.noise_w,
                speaker_id=piper.speaker_id,
                threads=piper.threads,
            )
            backend_kind = "piper-worker" if piper.in_worker else "piper"
        elif kind == "rhvoice":
            rhvoice = config.rhvoice
            settings = RhvoiceSettings(
                voices=dict(rhvoice.voices),
                offered=tuple(offered_voices()),
                quality=rhvoice.quality,
                rate=rhvoice.rate,
                pitch=rhvoice.pitch,
                volume=rhvoice.volume,
            )
            backend_kind = "rhvoice"
        elif kind == "espeak":
            espeak = config.espeak
            settings = EspeakSettings(voices=dict(espeak.voices), rate_wpm=espeak.rate_wpm, pitch=espeak.pitch)
            backend_kind = "espeak"
        else:
            xtts = config.xtts
            settings = XttsSettings(
                model_dir=str(xtts.model_dir),
                voices={name: tuple(str(p) for p in paths) for name, paths in xtts.voices.items()},
                default_voice=xtts.default_voice,
                languages=tuple(xtts.languages),
                default_preset=xtts.default_preset,
                device=xtts.device,
                gpu_memory_fraction=xtts.gpu_memory_fraction,
                latents_cache_dir=str(xtts.latents_cache_dir),
                stream_chunk_size=xtts.stream_chunk_size,
                worker=WorkerSettings(python=str(xtts.python), start_timeout_s=xtts.start_timeout_s),
            )
            backend_kind = "xtts"
        return lambda: build_tts_backend(backend_kind, settings, models_dir)

    return [BackendSlot(kind, builder(kind)) for kind in config.chain]


# -- services --------------------------------------------------------------


def engine_services(
    bus: Bus, engines: EnginesConfig, data_dir: Path, secret: SecretLookup = _from_environment,
    *, keep_free_mb: float = 0.0,
) -> list[EngineService]:  # type: ignore[type-arg]
    """The four engine services; ``secret`` (the daemon passes LoadedConfig.secret) resolves the LLM API keys.

    ``keep_free_mb`` (``call.min_free_mb``): a packaged model is never staged into the last of the disk.
    """
    models_dir = models_dir_of(engines, data_dir)
    keep_free = int(keep_free_mb * 2**20)
    timing = ChainTiming(engines.retry_initial_s, engines.retry_max_s, engines.load_timeout_s)
    vad, stt, llm, tts = engines.vad, engines.stt, engines.llm, engines.tts
    gate = asyncio.Semaphore(1)

    retry = asdict(timing)  # the chain keywords every engine takes

    def chain(engine: str, slots: list[BackendSlot], on_status: StatusSink) -> FallbackChain:  # type: ignore[type-arg]
        return FallbackChain(engine, slots, on_status, **retry)

    return [
        EngineService(
            "vad", bus,
            lambda on_status: vad_engine(vad, on_status, **retry),
            config=(vad, timing), load_gate=gate,
        ),
        EngineService(
            "stt", bus,
            lambda on_status: SttEngine(chain("stt", stt_slots(stt, models_dir, keep_free), on_status)),
            config=(stt, models_dir, timing, keep_free), load_gate=gate,
        ),
        EngineService(
            "llm", bus,
            lambda on_status: LlmEngine(
                llm_slots(llm, models_dir, secret), on_status, first_token_timeout_s=llm.first_token_timeout_s, **retry
            ),
            config=(llm, models_dir, timing, llm_keys_digest(llm, secret)), load_gate=gate,
        ),
        EngineService(
            "tts", bus,
            lambda on_status: TtsEngine(tts_slots(tts, models_dir), on_status=on_status, **retry),
            config=(tts, models_dir, timing), load_gate=gate,
        ),
    ]
