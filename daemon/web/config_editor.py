"""Editing the config file from the web page without losing the owner's comments or a working file.

``ConfigEditor`` loads the file as round-trip YAML (comments, key order and
quoting kept) next to its validated ``LoadedConfig``, and saves an edited
mapping only after the daemon's own loader accepts the new text and the
caller's ``check`` of the new settings finds nothing (the page's secret
rules): the secrets first, then a ``.bak`` copy of the current file, then the
new text by an atomic replace. A secret for a variable that the daemon's
environment sets is refused: the environment wins, so it would never be used. ``write_secrets`` updates ``KEY=value`` lines of the 0600
secrets file that ``config.secrets`` reads.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.representer import RoundTripRepresenter

from config.errors import ConfigError, ConfigIssue
from config.loader import LoadedConfig, parse_config_text
from config.schema import SecretaryConfig
from config.yaml_source import parse_yaml

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_SECRETS: Mapping[str, str] = MappingProxyType({})
_DEFAULT_INDENT = (2, 4, 2)  # mapping, sequence, offset: "key:\n  - item", as config/example.yaml
NO_SECRETS_FILE = "set secrets_file to a 0600 env file to store secrets from the web page"
SettingsCheck = Callable[[SecretaryConfig], list[ConfigIssue]]


def shadowed_message(name: str) -> str:
    return (f"{name} is set in the daemon's environment, which wins over the secrets file, so the secret typed "
            "for it would not be used: name another variable, or change it where the environment is set")


class _Representer(RoundTripRepresenter):
    """Writes null as ``null`` (ruamel's default is an empty value), as the project's YAML does."""


_Representer.add_representer(
    type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
)


def _guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) used by a YAML text, for writing it back alike."""
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    parent: int | None = None  # indentation of the last "key:" line that opens a block
    for line in text.splitlines():
        content = line.strip()
        if not content or content.startswith("#"):
            continue
        column = len(line) - len(line.lstrip(" "))
        if parent is not None and (column > parent or (column == parent and content.startswith("- "))):
            if content.startswith("- ") and offset is None:
                offset = column - parent
                sequence = offset + len(content) - len(content[1:].lstrip(" "))
            elif not content.startswith("- ") and mapping is None:
                mapping = column - parent
        body = content.split(" #", 1)[0].rstrip()
        parent = column if body.endswith(":") and not body.startswith("- ") else None
        if mapping is not None and offset is not None:
            break
    default_mapping, default_sequence, default_offset = _DEFAULT_INDENT
    mapping = mapping or default_mapping
    if offset is None or sequence is None:
        return mapping, max(default_sequence, mapping), default_offset
    return mapping, max(sequence, offset + 2), offset


def _write_atomic(path: Path, data: bytes, mode: int, owner: os.stat_result | None) -> None:
    """Replace ``path`` with ``data`` in one step: temp file in its directory, fsync, rename, fsync dir."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(handle.fileno(), owner.st_uid, owner.st_gid)
                except PermissionError:
                    pass  # not root: the file becomes ours, with the same mode
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _defined_name(line: str) -> tuple[str, bool] | None:
    """(name, has ``export``) of an env file line that assigns a variable, else None."""
    content = line.strip()
    if not content or content.startswith("#"):
        return None
    exported = content.startswith("export ")
    name, sep, _ = content.removeprefix("export ").lstrip().partition("=")
    return (name.strip(), exported) if sep else None


def _env_value(value: str) -> str:
    quoted = shlex.quote(value)
    return value if quoted == value else quoted


def write_secrets(path: Path, values: Mapping[str, str]) -> None:
    """Set ``KEY=value`` lines in the env file at ``path``, keeping its other lines; the file stays 0600.

    The file is created if missing (its directory must exist). Raises ValueError
    for a name that is not an environment variable name or a value with a line
    break; the message never contains the value.
    """
    for name, value in values.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"the value of {name} must be a single line")
    target = Path(os.path.realpath(path))
    info = _stat(target)
    lines = target.read_text(encoding="utf-8").splitlines() if info is not None else []
    pending = dict(values)
    out: list[str] = []
    for line in lines:
        defined = _defined_name(line)
        if defined is not None and defined[0] in values:
            name, exported = defined
            out.append(f"{'export ' if exported else ''}{name}={_env_value(values[name])}")
            pending.pop(name, None)
        else:
            out.append(line)
    out.extend(f"{name}={_env_value(value)}" for name, value in pending.items())
    _write_atomic(target, ("\n".join(out) + "\n").encode("utf-8"), 0o600, info)


class ConfigEditor:
    """Reads, edits, validates and atomically writes the config file; keeps the previous one as a backup."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self._environ = environ
        self._indent = _DEFAULT_INDENT

    @property
    def backup_path(self) -> Path:
        target = self._target()
        return target.with_name(target.name + ".bak")

    def _target(self) -> Path:
        """The file actually written: a symlinked config is edited where it lives."""
        return Path(os.path.realpath(self.path))

    def _yaml(self) -> YAML:
        document = YAML(typ="rt")
        document.Representer = _Representer
        document.preserve_quotes = True
        document.width = 4096  # never re-wrap the owner's long lines
        mapping, sequence, offset = self._indent
        document.indent(mapping=mapping, sequence=sequence, offset=offset)
        return document

    def _read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(str(self.path), [ConfigIssue("", "file not found")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(self.path), [ConfigIssue("", f"cannot be read: {exc}")]) from None

    def load(self) -> tuple[Any, LoadedConfig]:
        """(round-trip data to edit, the validated config); raises ConfigError if the file is invalid."""
        text = self._read()
        loaded = parse_config_text(text, str(self.path), self._environ)
        self._indent = _guess_indent(text)
        data = self._yaml().load(text)
        return (CommentedMap() if data is None else data), loaded

    def dump(self, data: Any) -> str:
        """The text ``data`` would be saved as."""
        out = io.StringIO()
        self._yaml().dump(data, out)
        return out.getvalue()

    def save(self, data: Any, secrets: Mapping[str, str] = _NO_SECRETS, check: SettingsCheck | None = None) -> LoadedConfig:
        """Validate ``data`` as the daemon would and, only if valid, write it (and ``secrets``).

        Raises ConfigError (line numbers of the new text) and writes nothing when
        the new text is invalid, when ``check`` of the new settings returns issues,
        when there are secrets but no secrets_file, or when the environment sets
        one of the secrets' variables.
        """
        source = str(self.path)
        text = self.dump(data)
        process_environ = os.environ if self._environ is None else self._environ
        shadowed = [ConfigIssue("", shadowed_message(name)) for name in sorted(secrets) if name in process_environ]
        if shadowed:
            raise ConfigError(source, shadowed)
        environ = {**process_environ, **secrets}
        creating = self._secrets_file_to_create(data) if secrets else None
        try:
            loaded: LoadedConfig | None = parse_config_text(text, source, environ)
        except ConfigError as exc:
            # The one complaint that writing the secrets cures: their file does not exist yet.
            if creating is None or any(issue.path != "secrets_file" for issue in exc.issues):
                raise
            loaded = None
        if check is not None:
            refused = check(loaded.settings if loaded is not None else self._settings_only(text))
            if refused:
                raise ConfigError(source, refused)
        if secrets:
            secrets_file = creating if loaded is None else loaded.settings.secrets_file
            if secrets_file is None:
                raise ConfigError(source, [ConfigIssue("secrets_file", NO_SECRETS_FILE)])
            try:
                write_secrets(secrets_file, secrets)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                issue = ConfigIssue("secrets_file", f"cannot store the secrets: {reason}")
                raise ConfigError(source, [issue]) from None
        if loaded is None:
            loaded = parse_config_text(text, source, environ)
        try:
            self._replace(text)
        except OSError as exc:
            raise ConfigError(source, [ConfigIssue("", f"cannot be written: {exc.strerror or exc}")]) from None
        return loaded

    @staticmethod
    def _settings_only(text: str) -> SecretaryConfig:
        """The settings of a text whose one problem is a secrets file yet to be created."""
        data, _, _ = parse_yaml(text)
        return SecretaryConfig.model_validate(data or {})

    @staticmethod
    def _secrets_file_to_create(data: Any) -> Path | None:
        named = data.get("secrets_file") if isinstance(data, Mapping) else None
        if isinstance(named, str) and named and not os.path.lexists(named):
            return Path(named)
        return None

    def _replace(self, text: str) -> None:
        target = self._target()
        info = _stat(target)
        mode = stat.S_IMODE(info.st_mode) if info is not None else 0o644
        if info is not None:
            _write_atomic(self.backup_path, target.read_bytes(), mode, info)
        _write_atomic(target, text.encode("utf-8"), mode, info)
