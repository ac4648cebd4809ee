"""The OpenAI-compatible providers the box knows by name: base URL, key variable and default model.

A table with no dependencies, so the web page's secret rules can ask which
variable holds a provider's key without loading the LLM client.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderPreset:
    base_url: str
    api_key_env: str | None
    default_model: str


PRESETS: dict[str, ProviderPreset] = {
    "openai": ProviderPreset("https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini"),
    "deepseek": ProviderPreset("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek-chat"),
    "openrouter": ProviderPreset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openai/gpt-4o-mini"),
    "gemini": ProviderPreset(
        "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY", "gemini-2.5-flash"
    ),
    "custom": ProviderPreset("", None, ""),
}


def key_env_of(provider: str, api_key_env: str | None) -> str | None:
    """The variable that holds a backend's key: its own ``api_key_env``, else its provider preset's."""
    return api_key_env or PRESETS[provider].api_key_env
