"""Load, merge and validate the configuration in one step.

``load_config`` returns a ``LoadedConfig`` or raises ``ConfigError`` listing
every problem at once, each with its key path, what is allowed and its line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from config.errors import ConfigError, ConfigIssue, issues_from_validation
from config.schema import SecretaryConfig
from config.secrets import Secrets, load_secrets, read_env_file
from config.yaml_source import parse_yaml


@dataclass(frozen=True)
class LoadedConfig:
    settings: SecretaryConfig
    secrets: Secrets
    source: str

    def secret(self, env_name: str) -> str | None:
        return self.secrets.get(env_name)


def _validated(text: str, source: str) -> tuple[SecretaryConfig, dict[tuple[str, ...], int]]:
    """The settings of a YAML text and the line of each key; no secrets read."""
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
        return SecretaryConfig.model_validate(data), lines
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation(SecretaryConfig, exc, lines)) from None


def load_settings(path: Path | str) -> SecretaryConfig:
    """A config file's settings alone, secrets not read (for ``secretary mqtt users``, which writes some)."""
    return _validated(_read(Path(path)), str(path))[0]


def parse_config_text(text: str, source: str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    settings, lines = _validated(text, source)
    issues: list[ConfigIssue] = []
    credentials = settings.mqtt.credentials_file
    if credentials is not None:  # the broker users' passwords (`secretary mqtt users`); the environment still wins
        found, problems = read_env_file(credentials)
        issues += [ConfigIssue("mqtt.credentials_file", i.message, lines.get(("mqtt", "credentials_file")))
                   for i in problems]
        environ = {**found, **(os.environ if environ is None else environ)}
    secrets, secret_issues = load_secrets(settings.secrets_file, environ)
    issues = [ConfigIssue(i.path, i.message, lines.get(("secrets_file",))) for i in secret_issues] + issues
    if issues:
        raise ConfigError(source, issues)
    return LoadedConfig(settings, secrets, source)


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    path = Path(path)
    return parse_config_text(_read(path), str(path), environ)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigIssue("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigIssue("", f"cannot be read: {exc}")]) from None


def bundled_config_text(name: str = "default.yaml") -> str:
    """The text of a YAML file shipped inside the config package."""
    return resources.files("config").joinpath(name).read_text(encoding="utf-8")
