"""Build an LLM backend from its kind and settings (what the daemon's config names).

Kinds: ``llama_cpp`` (``LlamaCppSettings.mode`` picks server or in-process),
``vllm``, ``openai_compatible`` (provider presets openai, deepseek,
openrouter, gemini, custom) and ``anthropic``. Building does no I/O; the
chain's ``load`` does.
"""

from __future__ import annotations

from pathlib import Path

from engines.fallback_chain import BackendSlot
from engines.llm.anthropic_messages_backend import AnthropicMessagesBackend
from engines.llm.interface import LlmBackend
from engines.llm.llama_cpp_backend import LlamaCppInProcessBackend, LlamaCppServerBackend
from engines.llm.openai_compatible_backend import OpenAiCompatibleBackend
from engines.llm.settings import (
    AnthropicSettings,
    LlamaCppSettings,
    LlmSettings,
    OpenAiCompatibleSettings,
    VllmSettings,
)
from engines.llm.vllm_backend import VllmBackend

KINDS: dict[str, type[LlmSettings]] = {
    "llama_cpp": LlamaCppSettings,
    "vllm": VllmSettings,
    "openai_compatible": OpenAiCompatibleSettings,
    "anthropic": AnthropicSettings,
}


def build_llm_backend(kind: str, settings: LlmSettings, models_dir: Path) -> LlmBackend:
    expected = KINDS.get(kind)
    if expected is None:
        raise ValueError(f"unknown LLM backend kind {kind!r} (known: {', '.join(KINDS)})")
    if not isinstance(settings, expected):
        raise TypeError(f"LLM backend kind {kind!r} needs {expected.__name__}, not {type(settings).__name__}")
    if isinstance(settings, LlamaCppSettings):
        if settings.mode == "in_process":
            return LlamaCppInProcessBackend(settings, models_dir)
        return LlamaCppServerBackend(settings, models_dir)
    if isinstance(settings, VllmSettings):
        return VllmBackend(settings, models_dir)
    if isinstance(settings, OpenAiCompatibleSettings):
        return OpenAiCompatibleBackend(settings)
    return AnthropicMessagesBackend(settings)


def llm_slot(label: str, kind: str, settings: LlmSettings, models_dir: Path) -> BackendSlot[LlmBackend]:
    """A chain slot that builds a fresh backend each time the chain (re)loads it."""
    build_llm_backend(kind, settings, models_dir)  # reject a wrong kind/settings pair now, not at load
    return BackendSlot(label, lambda: build_llm_backend(kind, settings, models_dir))
