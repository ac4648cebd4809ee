"""Frozen settings of each LLM backend kind (the daemon maps YAML onto these).

A backend that needs a key names the variable that holds it (``api_key_env``).
The daemon resolves that name through its secrets loader (the process
environment, then the 0600 secrets file) and hands the value in ``api_key``,
which never appears in a repr; without it the backend reads the variable from
the process environment at load.

llama.cpp's prompt-processing threads default to ``n_threads`` here, not to
every core as llama-cpp-python would: on the 2-core box, with STT and TTS
busy, a prefill that wants both cores stalls for seconds (measured: time to
first token 2-7 s with 2 prefill threads vs 50-150 ms with 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

LlamaCppMode = Literal["server", "in_process"]
OpenAiProvider = Literal["openai", "deepseek", "openrouter", "gemini", "custom"]


def _positive(owner: str, **values: float | int | None) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(f"{owner}.{name} must be positive, not {value}")


def _frozen_map(value: Mapping[str, str | Path]) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


@dataclass(frozen=True)
class LlamaCppSettings:
    model: str = "packaged:smollm2-135m"
    mode: LlamaCppMode = "server"
    n_ctx: int = 2048
    n_threads: int = 2
    n_threads_batch: int | None = None
    chat_format: str | None = None
    python: str | None = None
    default_max_tokens: int = 256
    startup_timeout_s: float = 60.0
    connect_timeout_s: float = 2.0
    idle_timeout_s: float = 30.0
    ready_wait_s: float = 10.0
    max_restarts: int = 5
    restart_backoff_initial_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    stop_timeout_s: float = 5.0
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("server", "in_process"):
            raise ValueError(f"llama_cpp.mode must be 'server' or 'in_process', not {self.mode!r}")
        _positive(
            "llama_cpp", n_ctx=self.n_ctx, n_threads=self.n_threads, n_threads_batch=self.n_threads_batch,
            default_max_tokens=self.default_max_tokens,
            startup_timeout_s=self.startup_timeout_s, connect_timeout_s=self.connect_timeout_s,
            idle_timeout_s=self.idle_timeout_s, ready_wait_s=self.ready_wait_s, stop_timeout_s=self.stop_timeout_s,
            restart_backoff_initial_s=self.restart_backoff_initial_s, restart_backoff_max_s=self.restart_backoff_max_s,
        )
        if self.max_restarts < 0:
            raise ValueError("llama_cpp.max_restarts must not be negative")
        object.__setattr__(self, "extra_args", tuple(self.extra_args))

    @property
    def prefill_threads(self) -> int:
        """Threads for prompt processing; llama.cpp's own default (every core) is not used (see module doc)."""
        return self.n_threads_batch or self.n_threads


@dataclass(frozen=True)
class VllmSettings:
    executable: str = "vllm"
    model: str = "Qwen/Qwen2.5-7B-Instruct-AWQ"
    served_model_name: str | None = None
    gpu_memory_utilization: float = 0.5
    max_model_len: int = 4096
    enable_lora: bool = True
    lora_adapters: Mapping[str, str | Path] = field(default_factory=dict)
    max_loras: int = 4
    max_lora_rank: int = 64
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    default_max_tokens: int = 256
    startup_timeout_s: float = 600.0
    connect_timeout_s: float = 2.0
    idle_timeout_s: float = 30.0
    ready_wait_s: float = 10.0
    max_restarts: int = 5
    restart_backoff_initial_s: float = 2.0
    restart_backoff_max_s: float = 60.0
    stop_timeout_s: float = 8.0

    def __post_init__(self) -> None:
        if not 0.0 < self.gpu_memory_utilization <= 0.95:
            raise ValueError(f"vllm.gpu_memory_utilization must be within (0, 0.95], not {self.gpu_memory_utilization}")
        _positive(
            "vllm", max_model_len=self.max_model_len, max_loras=self.max_loras, max_lora_rank=self.max_lora_rank,
            default_max_tokens=self.default_max_tokens, startup_timeout_s=self.startup_timeout_s,
            connect_timeout_s=self.connect_timeout_s, idle_timeout_s=self.idle_timeout_s, ready_wait_s=self.ready_wait_s,
            restart_backoff_initial_s=self.restart_backoff_initial_s, restart_backoff_max_s=self.restart_backoff_max_s,
            stop_timeout_s=self.stop_timeout_s,
        )
        if self.max_restarts < 0:
            raise ValueError("vllm.max_restarts must not be negative")
        if self.lora_adapters and not self.enable_lora:
            raise ValueError("vllm.lora_adapters are set but enable_lora is false")
        for name in self.lora_adapters:
            if not name or "=" in name or " " in name:
                raise ValueError(f"vllm adapter name {name!r} must be non-empty without '=' or spaces")
        object.__setattr__(self, "lora_adapters", _frozen_map(self.lora_adapters))
        object.__setattr__(self, "env", _frozen_map(self.env))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model


@dataclass(frozen=True)
class OpenAiCompatibleSettings:
    provider: OpenAiProvider = "custom"
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)  # resolved by the daemon; None: read api_key_env
    headers: Mapping[str, str] = field(default_factory=dict)
    include_usage: bool = True
    default_max_tokens: int | None = None
    probe_at_load: bool = False
    connect_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.provider not in ("openai", "deepseek", "openrouter", "gemini", "custom"):
            raise ValueError(f"openai_compatible.provider {self.provider!r} is not one of openai, deepseek, openrouter, gemini, custom")
        if self.provider == "custom" and not self.base_url:
            raise ValueError("openai_compatible.base_url is required when provider is 'custom'")
        _positive(
            "openai_compatible", default_max_tokens=self.default_max_tokens,
            connect_timeout_s=self.connect_timeout_s, idle_timeout_s=self.idle_timeout_s,
        )
        object.__setattr__(self, "headers", _frozen_map(self.headers))


@dataclass(frozen=True)
class AnthropicSettings:
    model: str = "claude-sonnet-4-5"
    base_url: str = "https://api.anthropic.com"
    api_key_env: str = "ANTHROPIC_API_KEY"
    api_key: str | None = field(default=None, repr=False)  # resolved by the daemon; None: read api_key_env
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = 1024
    connect_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("anthropic.model must not be empty")
        if not self.api_key_env:
            raise ValueError("anthropic.api_key_env must name an environment variable")
        _positive(
            "anthropic", default_max_tokens=self.default_max_tokens,
            connect_timeout_s=self.connect_timeout_s, idle_timeout_s=self.idle_timeout_s,
        )


LlmSettings = LlamaCppSettings | VllmSettings | OpenAiCompatibleSettings | AnthropicSettings


def resolve_under(models_dir: Path, value: str | Path) -> str:
    """``value`` as an absolute path when it is a relative path that exists under ``models_dir``."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = models_dir / path
    return str(candidate) if candidate.exists() else str(value)
