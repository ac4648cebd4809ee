"""Which variable holds each LLM backend's API key, and a digest of the keys for reload decisions.

Light on purpose (config classes and the provider table only): the web
page's secret rules use ``llm_key_env`` without loading any engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from config.engines_schema import AnthropicConfig, LlamaCppConfig, LlmConfig, OpenAICompatibleConfig, VllmConfig
from engines.llm.provider_presets import key_env_of

LlmBackendConfig = LlamaCppConfig | VllmConfig | OpenAICompatibleConfig | AnthropicConfig
SecretLookup = Callable[[str], str | None]  # LoadedConfig.secret: a secret by its variable name


def llm_key_env(backend: LlmBackendConfig) -> str | None:
    """The variable that holds a backend's API key (a provider preset's when api_key_env is null), else None."""
    if isinstance(backend, OpenAICompatibleConfig):
        return key_env_of(backend.provider, backend.api_key_env)
    if isinstance(backend, AnthropicConfig):
        return backend.api_key_env
    return None


def llm_keys_digest(config: LlmConfig, secret: SecretLookup) -> str:
    """A digest of the chained backends' keys: a changed key restarts the LLM on reload, the key itself is not kept."""
    digest = hashlib.sha256()
    for name in config.chain:
        env = llm_key_env(config.backends[name])
        digest.update(f"{name}\0{env}\0{(secret(env) if env else None) or ''}\0".encode())
    return digest.hexdigest()
