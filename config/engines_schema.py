"""The ``engines`` section: which backends each engine chains, and their settings.

Each engine names a ``chain``: backends tried in order, the first healthy one
serves, the rest stand by as fallbacks. LLM backends are named instances
(``backends: {local: {kind: llama_cpp, ...}, cloud: {kind: openai_compatible, ...}}``)
so personas can pick their own chain by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from config.rhvoice_voices import check_offered, offered_voices
from config.section import EnvVarName, Section

LanguageCode = Annotated[
    str, Field(pattern=r"^[a-z]{2}$", json_schema_extra={"allowed": "a two-letter language code like en or ru"})
]
ModelSpec = Annotated[
    str,
    Field(min_length=1, json_schema_extra={"allowed": "'packaged:<name>' for a model shipped in a package, or a path"}),
]


def _unique(chain: list[str], what: str) -> None:
    seen = [name for index, name in enumerate(chain) if name in chain[:index]]
    if seen:
        raise ValueError(f"{what} names {seen[0]!r} twice; each backend appears once")


# -- VAD -------------------------------------------------------------------


class WebrtcVadConfig(Section):
    mode: int = Field(2, ge=0, le=3, json_schema_extra={"allowed": "0 (least aggressive) to 3 (most aggressive)"})


class SileroVadConfig(Section):
    model: ModelSpec = "packaged:silero-vad"


class VadConfig(Section):
    """The speech detector's model and thresholds; how long speech or silence must last is the call's to say."""

    REPLACED_KEYS: ClassVar[dict[str, str]] = {
        "min_silence_ms": "the caller's silence that ends their turn is call.endpoint_silence_ms",
        "min_speech_ms": "the caller's speech that stops the secretary is call.barge_in.min_speech_ms",
    }

    chain: list[Literal["silero", "webrtc"]] = Field(default_factory=lambda: ["silero", "webrtc"], min_length=1)
    start_threshold: float = Field(0.5, gt=0, lt=1)
    end_threshold: float = Field(0.35, gt=0, lt=1)
    speech_pad_ms: int = Field(100, ge=0, le=1000)
    silero: SileroVadConfig = Field(default_factory=SileroVadConfig)
    webrtc: WebrtcVadConfig = Field(default_factory=WebrtcVadConfig)
    turn_end_model: ModelSpec | None = Field(
        "packaged:smart-turn-v3",
        json_schema_extra={"allowed": "packaged:smart-turn-v3 (Smart Turn v3, which scripts/bootstrap takes out of the "
                                      "pipecat-ai wheel), an .onnx path, or null: no turn-end model (call.turn_end)"},
    )

    @model_validator(mode="after")
    def _check(self) -> VadConfig:
        _unique(list(self.chain), "chain")
        if self.end_threshold > self.start_threshold:
            raise ValueError("end_threshold must not be above start_threshold (speech would end as it starts)")
        return self


# -- STT -------------------------------------------------------------------


class FasterWhisperConfig(Section):
    model: ModelSpec = "packaged:whisper-base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: Literal["auto", "int8", "int8_float16", "float16", "float32"] = "auto"
    cpu_threads: int = Field(2, ge=1, le=64)
    beam_size: int = Field(1, ge=1, le=10)
    max_new_tokens: int = Field(96, ge=8, le=440)


class VoskConfig(Section):
    model: ModelSpec | None = Field(
        None, json_schema_extra={"allowed": "the path of a Vosk model directory (e.g. vosk-model-small-ru-0.22)"}
    )


def _cpu_whisper() -> FasterWhisperConfig:
    return FasterWhisperConfig(device="cpu", compute_type="int8")


class SttConfig(Section):
    """``faster-whisper-cpu`` is a second faster-whisper on the CPU: the GPU box's fallback when CUDA's whisper fails."""

    chain: list[Literal["faster-whisper", "faster-whisper-cpu", "vosk"]] = Field(
        default_factory=lambda: ["faster-whisper"], min_length=1
    )
    faster_whisper: FasterWhisperConfig = Field(default_factory=FasterWhisperConfig)
    faster_whisper_cpu: FasterWhisperConfig = Field(
        default_factory=_cpu_whisper,
        json_schema_extra={"allowed": "faster-whisper settings with device cpu (the packaged whisper-base by default)"},
    )
    vosk: VoskConfig = Field(default_factory=VoskConfig)

    @model_validator(mode="after")
    def _check(self) -> SttConfig:
        _unique(list(self.chain), "chain")
        if self.faster_whisper_cpu.device != "cpu":
            raise ValueError(
                f"faster_whisper_cpu.device is {self.faster_whisper_cpu.device!r}, but it is the CPU fallback: set it "
                "to cpu (put the GPU's whisper in faster_whisper, with device cuda)"
            )
        if "vosk" in self.chain and self.vosk.model is None:
            raise ValueError("chain uses vosk but vosk.model is not set (the path of a Vosk model directory)")
        return self


# -- LLM -------------------------------------------------------------------


class LlmBackendSection(Section):
    """What every LLM backend entry has: whether its model can hold a phone conversation."""

    conversational: bool | None = Field(
        None,
        json_schema_extra={"allowed": "true if this model can hold a phone conversation; null: its kind decides"},
    )

    @property
    def is_conversational(self) -> bool:
        return self.conversational is not False


class LlamaCppConfig(LlmBackendSection):
    kind: Literal["llama_cpp"]
    model: ModelSpec = "packaged:smollm2-135m"
    mode: Literal["server", "in_process"] = "server"
    n_ctx: int = Field(2048, ge=256, le=131072)
    n_threads: int = Field(2, ge=1, le=64)
    startup_timeout_s: float = Field(60.0, gt=0, le=600)

    @property
    def is_conversational(self) -> bool:
        if self.conversational is not None:
            return self.conversational
        return not self.model.startswith("packaged:")  # docs/engines.md: no packaged model can converse


class VllmConfig(LlmBackendSection):
    kind: Literal["vllm"]
    executable: str = Field(
        "vllm", min_length=1, json_schema_extra={"allowed": "the vllm command or its path in its own venv"}
    )
    model: str = Field("Qwen/Qwen2.5-7B-Instruct-AWQ", min_length=1)
    served_model_name: str | None = None
    gpu_memory_utilization: float = Field(0.5, gt=0, le=0.95)
    max_model_len: int = Field(4096, ge=256, le=131072)
    lora_adapters: dict[str, Path] = Field(
        default_factory=dict, json_schema_extra={"allowed": "a mapping of adapter name to its directory"}
    )
    max_loras: int = Field(4, ge=1, le=64)
    max_lora_rank: int = Field(64, ge=1, le=512)
    extra_args: list[str] = Field(default_factory=list)
    startup_timeout_s: float = Field(600.0, gt=0, le=3600)


class OpenAICompatibleConfig(LlmBackendSection):
    kind: Literal["openai_compatible"]
    provider: Literal["openai", "deepseek", "openrouter", "gemini", "custom"] = "custom"
    base_url: str | None = Field(
        None, json_schema_extra={"allowed": "the API base URL (…/v1); required for provider 'custom'"}
    )
    model: str = Field(min_length=1)
    api_key_env: EnvVarName | None = None

    @model_validator(mode="after")
    def _check(self) -> OpenAICompatibleConfig:
        if self.provider == "custom" and not self.base_url:
            raise ValueError("base_url is required when provider is 'custom'")
        return self


class AnthropicConfig(LlmBackendSection):
    kind: Literal["anthropic"]
    model: str = Field("claude-sonnet-4-5", min_length=1)
    base_url: str = "https://api.anthropic.com"
    api_key_env: EnvVarName = "ANTHROPIC_API_KEY"


LlmBackendConfig = Annotated[
    LlamaCppConfig | VllmConfig | OpenAICompatibleConfig | AnthropicConfig, Field(discriminator="kind")
]


def _default_llm_backends() -> dict[str, LlmBackendConfig]:
    return {"local": LlamaCppConfig(kind="llama_cpp")}


class LlmConfig(Section):
    chain: list[str] = Field(default_factory=lambda: ["local"], min_length=1)
    first_token_timeout_s: float = Field(3.0, gt=0, le=120)
    max_tokens: int = Field(200, ge=1, le=8192)
    temperature: float = Field(0.6, ge=0, le=2)
    backends: dict[str, LlmBackendConfig] = Field(default_factory=_default_llm_backends)

    @model_validator(mode="after")
    def _check(self) -> LlmConfig:
        _unique(self.chain, "chain")
        unknown = [name for name in self.chain if name not in self.backends]
        if unknown:
            raise ValueError(
                f"chain names {unknown[0]!r}, which is not defined under backends "
                f"(defined: {', '.join(sorted(self.backends)) or 'none'})"
            )
        return self


# -- TTS -------------------------------------------------------------------


class PiperConfig(Section):
    voices: dict[LanguageCode, ModelSpec] = Field(
        default_factory=lambda: {"en": "packaged:joe-us"},
        json_schema_extra={"allowed": "a mapping of language to voice (.onnx path, its directory, or packaged:joe-us)"},
    )
    in_worker: bool = Field(False, json_schema_extra={"allowed": "true to run Piper in its own worker process"})
    threads: int = Field(1, ge=0, le=64)
    speaker_id: int | None = Field(None, ge=0)
    length_scale: float | None = Field(None, gt=0, le=5)
    noise_scale: float | None = Field(None, ge=0, le=2)
    noise_w: float | None = Field(None, ge=0, le=2)


class EspeakConfig(Section):
    voices: dict[LanguageCode, str] = Field(default_factory=lambda: {"en": "en-us", "ru": "ru"})
    rate_wpm: int = Field(160, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)


class RhvoiceConfig(Section):
    """RHVoice (Debian non-free): only voices licensed for commercial use (config/rhvoice_voices.py) may be named."""

    voices: dict[LanguageCode, str] = Field(
        default_factory=lambda: {"ru": "irina"},
        json_schema_extra={
            "allowed": "a mapping of language to an RHVoice voice licensed for commercial use: "
            + ", ".join(offered_voices())
        },
    )
    quality: Literal["min", "standard", "max"] = Field(
        "min", json_schema_extra={"allowed": "min (16 kHz, fastest), standard or max (24 kHz)"}
    )
    rate: float = Field(0.0, ge=-1, le=1, json_schema_extra={"allowed": "-1 (slowest) to 1 (fastest), 0 = the voice's own"})
    pitch: float = Field(0.0, ge=-1, le=1, json_schema_extra={"allowed": "-1 (lowest) to 1 (highest), 0 = the voice's own"})
    volume: float = Field(0.0, ge=-1, le=1, json_schema_extra={"allowed": "-1 (quietest) to 1 (loudest), 0 = the voice's own"})

    @field_validator("voices")
    @classmethod
    def _licensed(cls, voices: dict[str, str]) -> dict[str, str]:
        return {language: check_offered(name, language) for language, name in voices.items()}


Preset = Literal["warm", "calm", "energetic", "natural", "neutral"]


class XttsConfig(Section):
    python: Path = Field(
        Path("/opt/secretary/xtts-venv/bin/python"),
        json_schema_extra={"allowed": "the python of the XTTS worker's own venv (torch+CUDA+coqui-tts)"},
    )
    model_dir: Path = Field(
        Path("xtts_v2"), json_schema_extra={"allowed": "the XTTS v2 checkpoint directory (relative: under models_dir)"}
    )
    voices: dict[str, list[Path]] = Field(
        default_factory=dict,
        json_schema_extra={"allowed": "a mapping of voice name to its 3+ reference WAV files or a directory of them"},
    )
    default_voice: str = ""
    languages: list[LanguageCode] = Field(default_factory=lambda: ["en", "ru"], min_length=1)
    default_preset: Preset = "natural"
    device: str = Field("cuda", pattern=r"^(cpu|cuda(:[0-9]+)?)$", json_schema_extra={"allowed": "cuda, cuda:N or cpu"})
    gpu_memory_fraction: float = Field(0.3, gt=0, le=0.95)
    latents_cache_dir: Path = Path("xtts_latents")
    stream_chunk_size: int = Field(20, ge=5, le=200)
    start_timeout_s: float = Field(180.0, gt=0, le=1800)


class TtsConfig(Section):
    chain: list[Literal["xtts", "piper", "rhvoice", "espeak"]] = Field(
        default_factory=lambda: ["piper", "rhvoice", "espeak"], min_length=1
    )
    piper: PiperConfig = Field(default_factory=PiperConfig)
    rhvoice: RhvoiceConfig = Field(default_factory=RhvoiceConfig)
    espeak: EspeakConfig = Field(default_factory=EspeakConfig)
    xtts: XttsConfig = Field(default_factory=XttsConfig)

    @model_validator(mode="after")
    def _check(self) -> TtsConfig:
        _unique(list(self.chain), "chain")
        return self


class EnginesConfig(Section):
    models_dir: Path | None = Field(
        None, json_schema_extra={"allowed": "a directory for assembled models, or null for <data_dir>/models"}
    )
    retry_initial_s: float = Field(10.0, gt=0, le=3600)
    retry_max_s: float = Field(300.0, gt=0, le=86_400)
    load_timeout_s: float = Field(300.0, gt=0, le=3600)
    vad: VadConfig = Field(default_factory=VadConfig)
    stt: SttConfig = Field(default_factory=SttConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
