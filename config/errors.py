"""Turning validation failures into messages a person can act on.

Each problem becomes a ``ConfigIssue``: the dotted key path, what is wrong and
what is allowed, e.g. ``modem.answer_after_rings: must be an integer from 0 to
10, got "two"``.  The description of what is allowed is derived from the
field's type and constraints, or taken from its ``allowed`` schema extra.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

# Keys people type when they try to put a secret in the YAML.
SECRET_LIKE_KEYS = {"password", "passwd", "token", "secret", "api_key", "apikey", "auth_token", "pin"}


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message}{where}"


class ConfigError(Exception):
    """Raised with every problem found, not just the first."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.issues)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  - {issue}" for issue in self.issues)])


def describe_input(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _number_range(kind: str, metadata: list[Any]) -> str:
    low = high = None
    low_text = high_text = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low, low_text = item.ge, "from"
        elif isinstance(item, annotated_types.Gt):
            low, low_text = item.gt, "greater than"
        elif isinstance(item, annotated_types.Le):
            high, high_text = item.le, "to"
        elif isinstance(item, annotated_types.Lt):
            high, high_text = item.lt, "below"
    if low is not None and high is not None:
        if low_text == "from" and high_text == "to":
            return f"{kind} from {low} to {high}"
        return f"{kind} {low_text} {low} and {high_text.replace('to', 'at most')} {high}"
    if low is not None:
        return f"{kind} {'of at least' if low_text == 'from' else low_text} {low}"
    if high is not None:
        return f"{kind} {'of at most' if high_text == 'to' else high_text} {high}"
    return kind


def describe_type(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A short English description of what a value of this type may be."""
    metadata = metadata or []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        for item in extra:
            if isinstance(item, FieldInfo):
                allowed = (item.json_schema_extra or {}).get("allowed") if isinstance(item.json_schema_extra, dict) else None
                if allowed:
                    return str(allowed)
                metadata = [*metadata, *item.metadata]
            else:
                metadata = [*metadata, item]
        return describe_type(base, metadata)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        text = " or ".join(describe_type(a, metadata) for a in parts)
        return f"{text}, or null" if len(parts) < len(typing.get_args(annotation)) else text
    if origin in (list, tuple, set, frozenset):
        return "a list"
    if origin is dict:
        return "a mapping"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return _number_range("an integer", metadata)
    if annotation is float:
        return _number_range("a number", metadata)
    if annotation is str:
        return "a text"
    if annotation is Path:
        return "a file system path"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping with keys " + ", ".join(annotation.model_fields)
    return getattr(annotation, "__name__", str(annotation))


def describe_field(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("allowed"):
        return str(extra["allowed"])
    return describe_type(field.annotation, list(field.metadata))


@dataclass
class _Located:
    """What a location in the config tree refers to."""

    model: type[BaseModel] | None  # the model that owns the last key, if any
    field: FieldInfo | None
    annotation: Any
    path: list[str | int]  # the location's real keys and indices (pydantic's type tags dropped)


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _tagged_members(annotation: Any) -> list[tuple[Any, type[BaseModel]]]:
    """(tag, model) for each member of a discriminated union: its single-value Literal field is the tag."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return []
    members = []
    for member in typing.get_args(annotation):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        for info in member.model_fields.values():
            args = typing.get_args(info.annotation)
            if typing.get_origin(info.annotation) is Literal and len(args) == 1:
                members.append((args[0], member))
                break
    return members


def _union_member_tagged(annotation: Any, tag: str | int) -> type[BaseModel] | None:
    """The member of a discriminated union whose tag is ``tag``."""
    return next((member for value, member in _tagged_members(annotation) if value == tag), None)


def locate(model: type[BaseModel], loc: tuple[str | int, ...]) -> _Located:
    """Walk a model's type tree along a pydantic error location."""
    owner: type[BaseModel] | None = model
    field: FieldInfo | None = None
    annotation: Any = model
    path: list[str | int] = []
    for index, part in enumerate(loc):
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            owner = annotation
            field = annotation.model_fields.get(str(part))
            path.append(part)
            if field is None:
                return _Located(owner, None, None, path)
            annotation = field.annotation
            continue
        member = _union_member_tagged(annotation, part)
        if member is not None:
            annotation = member  # a discriminated union's tag: not a key of the file
            continue
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is dict and len(args) == 2:
            path.append(part)
            if index + 1 < len(loc) and loc[index + 1] == "[key]":
                return _Located(None, None, args[0], path)  # the key itself is wrong
            annotation, field, owner = args[1], None, None
        elif origin in (list, tuple, set, frozenset) and args:
            path.append(part)
            annotation, field, owner = args[0], None, None
        else:
            # Type tags that pydantic adds for unions and validators end here.
            break
    return _Located(owner, field, annotation, path)


def _unknown_key_message(model: type[BaseModel] | None, key: str, secret_envs: dict[str, str]) -> str:
    if key.lower() in SECRET_LIKE_KEYS or key.lower().endswith(("_password", "_token", "_secret")):
        hint = ", ".join(f"{k} names the variable" for k in secret_envs) if secret_envs else ""
        where = f" ({hint})" if hint else ""
        return (
            "secrets must not be written in the YAML file; put the value in the environment "
            f"or the 0600 secrets_file{where}"
        )
    if model is None:
        return "unknown key"
    replaced_by = getattr(model, "REPLACED_KEYS", {}).get(key)
    if replaced_by is not None:
        return f"was removed: {replaced_by}; delete it here"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {hint}allowed keys: {', '.join(allowed)}"


def issues_from_validation(
    model: type[BaseModel], error: ValidationError, lines: dict[tuple[str | int, ...], int]
) -> list[ConfigIssue]:
    """Convert a pydantic ValidationError into readable issues, one per problem."""
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        located = locate(model, loc)
        real = located.path
        key_path = _dotted(real)
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            parent = locate(model, loc[:-1]).annotation
            parent = _unwrap_optional(parent)
            owner = parent if isinstance(parent, type) and issubclass(parent, BaseModel) else None
            secret_envs = {
                f"{_dotted([*loc[:-1], name])}": name
                for name in (owner.model_fields if owner else {})
                if name.endswith("_env")
            }
            message = _unknown_key_message(owner, str(loc[-1]), secret_envs)
        elif kind == "missing":
            allowed = describe_field(located.field) if located.field else describe_type(located.annotation)
            message = f"is required: {allowed}"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx") or {}
            field_name = str(ctx.get("discriminator", "kind")).strip("'")
            expected = ctx.get("expected_tags") or _union_tags(located.annotation)
            got = f", got {describe_input(ctx['tag'])}" if "tag" in ctx else " (missing)"
            message = f"{field_name} must be one of {expected}{got}"
        elif kind == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            if located.field is not None:
                allowed = describe_field(located.field)
            elif located.annotation is not None:
                allowed = describe_type(located.annotation)
            else:
                allowed = str(err["msg"]).lower()
            message = f"must be {allowed}, got {describe_input(value)}"
        dedupe = (key_path, message)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        issues.append(ConfigIssue(key_path, message, _line_for(lines, real)))
    return issues


def _union_tags(annotation: Any) -> str:
    return ", ".join(repr(tag) for tag, _ in _tagged_members(annotation))


def _dotted(parts: list[str | int] | tuple[str | int, ...]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def _line_for(lines: dict[tuple[str | int, ...], int], parts: list[str | int]) -> int | None:
    key = tuple(parts)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None
