"""Load, merge and validate the configuration in one step.

``load_config`` returns a ``LoadedConfig`` or raises ``ConfigError`` listing
every problem at once, each with its key path, what is allowed and its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from config.errors import ConfigError, ConfigIssue, issues_from_validation
from config.schema import SecretaryConfig
from config.secrets import Secrets, load_secrets
from config.yaml_source import parse_yaml


@dataclass(frozen=True)
class LoadedConfig:
    settings: SecretaryConfig
    secrets: Secrets
    source: str

    def secret(self, env_name: str) -> str | None:
        return self.secrets.get(env_name)


def parse_config_text(text: str, source: str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    data, lines, issues = parse_yaml(text)
    if issues:
        raise ConfigError(source, issues)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", "the top level must be a mapping of keys (box_id: ..., mqtt: ...)", 1)])
    bad_keys = [key for key in data if not isinstance(key, str)]
    if bad_keys:
        raise ConfigError(source, [ConfigIssue("", f"keys must be text, got {bad_keys[0]!r}")])
    try:
        settings = SecretaryConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation(SecretaryConfig, exc, lines)) from None
    secrets, secret_issues = load_secrets(settings.secrets_file, environ)
    if secret_issues:
        raise ConfigError(source, [
            ConfigIssue(i.path, i.message, lines.get(("secrets_file",))) for i in secret_issues
        ])
    return LoadedConfig(settings, secrets, source)


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigIssue("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigIssue("", f"cannot be read: {exc}")]) from None
    return parse_config_text(text, str(path), environ)


def bundled_config_text(name: str = "default.yaml") -> str:
    """The text of a YAML file shipped inside the config package."""
    return resources.files("config").joinpath(name).read_text(encoding="utf-8")
