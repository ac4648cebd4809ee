"""Each secret is bound to its purpose: where it is sent and which variable holds it.

The web page never shows a stored secret, but without this rule a session
could send one elsewhere: point ``channels.remote.url`` at its own listener
and ``channels.remote.password_env`` at the Twilio token's variable, and the
bridge delivers the token as its password. So a save that changes where a
purpose's secret goes (a destination field) or which variable it uses (its
``*_env`` field) is refused unless the same post types that secret again;
the typed value is then stored under the (new) variable name. Purposes with
no stored secret, before or after, change freely.

``PURPOSES`` is the one list; ``rebinding_issues`` applies it to the config
before and after a save.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from config.errors import ConfigIssue
from config.schema import SecretaryConfig
from daemon.engine_host.llm_keys import llm_key_env
from daemon.web.settings.program_fields import ANY

Keys = tuple[str, ...]


@dataclass(frozen=True)
class SecretPurpose:
    """A secret's use: the field naming its variable, and the fields that decide who receives it."""

    what: str
    env: Keys  # the ``*_env`` field; ANY stands for each entry of a mapping
    destinations: tuple[Keys, ...] = ()  # the same ANY binds the same entry
    # Fields naming files of further secrets sent to the same destinations (none can be typed here).
    secret_files: tuple[Keys, ...] = ()
    # The variable used when the env field is null (an LLM provider preset's), from the field's owner.
    default_env: Callable[[Any], str | None] | None = None


PURPOSES: tuple[SecretPurpose, ...] = (
    SecretPurpose(
        "the MQTT broker's password", ("mqtt", "password_env"),
        (("mqtt", "url"), ("mqtt", "username")), secret_files=(("mqtt", "credentials_file"),),
    ),
    SecretPurpose(
        "the remote broker's password", ("channels", "remote", "password_env"),
        (("channels", "remote", "url"), ("channels", "remote", "username"), ("channels", "remote", "ca_file")),
    ),
    SecretPurpose(
        "the Telegram bot's token", ("channels", "telegram", "bots", ANY, "token_env"),
        (("channels", "telegram", "api_url"),),
    ),
    SecretPurpose("the Twilio account SID", ("channels", "twilio", "account_sid_env")),  # sent nowhere yet
    SecretPurpose("the Twilio auth token", ("channels", "twilio", "auth_token_env"), (("channels", "twilio", "public_url"),)),
    SecretPurpose("the SIM card's PIN", ("modem", "pin_env"), (("modem", "at_port"),)),
    SecretPurpose(
        "the LLM backend's API key", ("engines", "llm", "backends", ANY, "api_key_env"),
        (("engines", "llm", "backends", ANY, "base_url"), ("engines", "llm", "backends", ANY, "provider")),
        default_env=llm_key_env,
    ),
)


@dataclass(frozen=True)
class Binding:
    """One purpose's secret as a config has it: its variable, where it goes, its secret files."""

    purpose: SecretPurpose
    keys: Keys  # the env field's concrete keys
    env: str | None
    destinations: Mapping[str, Any]  # dotted path -> value
    secret_files: Mapping[str, Any]

    @property
    def path(self) -> str:
        return ".".join(self.keys)


_MISSING = object()


def _child(node: Any, key: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(key, _MISSING)
    if isinstance(node, BaseModel) and key in type(node).model_fields:
        return getattr(node, key)
    return _MISSING


def _expand(node: Any, pattern: Keys, done: Keys = ()) -> Iterator[tuple[Keys, Any, Any]]:
    """(concrete keys, the field's owner, its value) of every field ``pattern`` matches."""
    key, rest = pattern[0], pattern[1:]
    names = [str(k) for k in node] if key == ANY and isinstance(node, Mapping) else [key]
    for name in names:
        value = _child(node, name)
        if value is _MISSING:
            continue
        if rest:
            yield from _expand(value, rest, (*done, name))
        else:
            yield (*done, name), node, value


def _resolve(settings: SecretaryConfig, pattern: Keys, bound: Keys) -> tuple[str, Any]:
    """(dotted path, value) of a field of the same entry as ``bound``; value None when the entry lacks it."""
    keys = tuple(bound[i] if p == ANY else p for i, p in enumerate(pattern))
    node: Any = settings
    for key in keys:
        node = _child(node, key)
        if node is _MISSING:
            return ".".join(keys), None
    return ".".join(keys), node.model_dump(mode="json") if isinstance(node, BaseModel) else node


def bindings(settings: SecretaryConfig, purposes: Sequence[SecretPurpose] = PURPOSES) -> list[Binding]:
    """Every secret ``settings`` binds: one per purpose, or per entry (each Telegram bot, each LLM backend)."""
    found: list[Binding] = []
    for purpose in purposes:
        for keys, owner, env in _expand(settings, purpose.env):
            if env is None and purpose.default_env is not None:
                env = purpose.default_env(owner)
            found.append(Binding(
                purpose, keys, env,
                dict(_resolve(settings, d, keys) for d in purpose.destinations),
                dict(_resolve(settings, f, keys) for f in purpose.secret_files),
            ))
    return found


def _moved(before: Binding | None, after: Binding) -> list[str]:
    """The fields whose change moves the secret: its variable and its destinations."""
    if before is None:
        return [after.path, *after.destinations]
    changed = [after.path] if before.env != after.env else []
    return changed + [path for path, value in after.destinations.items() if before.destinations.get(path) != value]


def rebinding_issues(
    old: SecretaryConfig, new: SecretaryConfig, retyped: Collection[str], has_secret: Callable[[str], bool],
) -> list[ConfigIssue]:
    """Refusals of a save from ``old`` to ``new``: moved secrets that were not typed again.

    ``retyped``: the dotted paths of the ``*_env`` fields whose secret this post
    carries. ``has_secret(name)``: whether a secret is stored under that variable
    now (environment or secrets file).
    """
    before = {b.keys: b for b in bindings(old)}
    issues: list[ConfigIssue] = []
    for after in bindings(new):
        prior = before.get(after.keys)
        moved = _moved(prior, after)
        if not moved:
            continue
        files = sorted(path for path, value in after.secret_files.items() if value is not None)
        if files and any(path != after.path for path in moved):
            issues.append(ConfigIssue(moved[-1], (
                f"the secrets in {', '.join(files)} would go to the new place too, and they cannot be typed here: "
                "change it in the config file on the box"
            )))
            continue
        if after.path in retyped:
            continue
        names = {name for name in (after.env, prior.env if prior else None) if name}
        if any(has_secret(name) for name in sorted(names)):
            issues.append(ConfigIssue(after.path, (
                f"{', '.join(moved)} changed, which moves {after.purpose.what}: type the secret again in this field "
                "to save (a stored secret is never sent to a new place or used under another name)"
            )))
    return issues
