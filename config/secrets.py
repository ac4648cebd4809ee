"""Secrets come from the environment or a private env file, never from YAML.

The env file holds ``KEY=value`` lines (``export`` prefix, comments, quotes
allowed).  It must not be readable by group or others: a file with mode 0644
is refused with the chmod that fixes it.  Variables in the process
environment win over the file.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Mapping
from pathlib import Path

from config.errors import ConfigIssue


class Secrets:
    """A read-only view of secret values that never prints them."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        value = self._values.get(name)
        return value if value else None

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)} set)"


def read_env_file(path: Path) -> tuple[dict[str, str], list[ConfigIssue]]:
    """Parse an env file; return the values and every problem found."""
    issues: list[ConfigIssue] = []
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}, [ConfigIssue("secrets_file", f"{path} does not exist")]
    except OSError as exc:
        return {}, [ConfigIssue("secrets_file", f"{path} cannot be read: {exc.strerror}")]
    if not stat.S_ISREG(info.st_mode):
        return {}, [ConfigIssue("secrets_file", f"{path} is not a regular file")]
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        return {}, [
            ConfigIssue(
                "secrets_file",
                f"{path} is readable by other users (mode {mode:04o}); run: chmod 600 {path}",
            )
        ]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [ConfigIssue("secrets_file", f"{path} cannot be read: {exc}")]
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            # Never echo the line: it may hold a secret.
            issues.append(ConfigIssue("secrets_file", f"{path} line {number}: expected NAME=value"))
            continue
        value = value.strip()
        if value[:1] in ("'", '"'):
            try:
                parts = shlex.split(value)
            except ValueError:
                issues.append(ConfigIssue("secrets_file", f"{path} line {number}: unbalanced quotes"))
                continue
            value = parts[0] if parts else ""
        values[name] = value
    return values, issues


def load_secrets(env_file: Path | None, environ: Mapping[str, str] | None = None) -> tuple[Secrets, list[ConfigIssue]]:
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    if env_file is not None:
        values, issues = read_env_file(env_file)
    values.update(environ)
    return Secrets(values), issues
