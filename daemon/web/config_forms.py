"""HTML forms generated from the typed config schema, and form posts written back into the YAML.

``build_form`` walks a section of ``SecretaryConfig`` generically: every field
becomes a widget chosen from its type (``FieldKind``), a nested section
becomes a subsection, and a mapping of sections (personas, LLM backends,
Telegram bots) becomes one subsection per existing entry. ``apply_form``
walks the same tree, converts the posted strings back to typed values and
writes only what changed into the round-trip YAML mapping, keeping the
owner's comments and key order. Validation of the result is left to the
loader, so the web page reports exactly the daemon's errors. Fields listed in
``settings.program_fields`` are shown read-only and a post that changes one is
refused; the secret rules (``settings.secret_binding``) need the config after
the change and are applied when it is saved.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Annotated, Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.tokens import CommentToken

from config.errors import ConfigIssue, describe_field, describe_input, describe_type
from config.schema import SecretaryConfig
from daemon.web.settings.program_fields import locked_message, locked_reason

FieldKind = Literal["text", "textarea", "integer", "number", "checkbox", "select", "lines", "mapping", "yaml", "env"]

SECTIONS: tuple[str, ...] = ("personas", "engines", "channels", "modem", "call", "audio", "mqtt", "web", "log")

PRESENT_PREFIX = "present:"  # hidden marker posted with every checkbox on the page
SECRET_PREFIX = "secret:"  # write-only secret input of an ``env`` field

_LONG_TEXT_FIELDS = frozenset({"system_prompt", "greeting", "goodbye"})
_TRUE_WORDS = frozenset({"on", "true", "1", "yes"})


@dataclass(frozen=True)
class FormField:
    path: str
    name: str
    kind: FieldKind
    value: str | bool
    choices: tuple[str, ...] = ()
    help: str = ""
    nullable: bool = False
    secret_set: bool | None = None
    locked: str = ""  # why the page shows it read-only (a program the daemon starts...); "" when editable


@dataclass(frozen=True)
class FormSection:
    path: str
    title: str
    fields: tuple[FormField, ...]
    sections: tuple[FormSection, ...]


def present_key(path: str) -> str:
    """The form key of a checkbox's presence marker."""
    return PRESENT_PREFIX + path


def secret_key(path: str) -> str:
    """The form key of an ``env`` field's write-only secret input."""
    return SECRET_PREFIX + path


# -- reading the schema ------------------------------------------------------


class _Unconvertible(ValueError):
    """A posted string that cannot become a value of its field's type."""


@dataclass(frozen=True)
class _Shape:
    kind: str  # a FieldKind, or "section" / "sections" for nested models
    nullable: bool
    base: Any  # the annotation without Annotated and None
    item: Any = None  # lines: the item type; mapping: the value type
    item_help: str = ""  # what an item (lines) or a value (mapping) may be
    max_length: int | None = None


@dataclass(frozen=True)
class _Leaf:
    field: FormField
    keys: tuple[str, ...]
    shape: _Shape
    current: Any


@dataclass
class _Node:
    keys: tuple[str, ...]
    title: str
    leaves: list[_Leaf] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    def all_leaves(self) -> Iterable[_Leaf]:
        yield from self.leaves
        for child in self.children:
            yield from child.all_leaves()


@dataclass
class _Plan:
    """What apply_form needs besides the leaves to write minimal, well-placed YAML."""

    # Entries of mappings of sections (personas.gulya): a mapping entry replaces rather than merges,
    # so one absent from the file is copied whole before one of its fields changes.
    entries: dict[tuple[str, ...], BaseModel] = field(default_factory=dict)
    # The schema's key order of each model mapping: new keys are inserted in this order.
    orders: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)


def _strip(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(annotation without Annotated/None, its constraint metadata, whether None is allowed)."""
    metadata: list[Any] = []
    nullable = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            continue
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(annotation)
            members = [a for a in args if a is not type(None)]
            nullable = nullable or len(members) < len(args)
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata, nullable


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    """The model classes ``annotation`` is (one model or a union of models), else []."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [_strip(a)[0] for a in typing.get_args(annotation) if a is not type(None)]
    else:
        members = [annotation]
    if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
        return members
    return []


def _is_scalar(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Literal:
        return True
    return annotation in (str, int, float) or (isinstance(annotation, type) and issubclass(annotation, PurePath))


def _is_text(annotation: Any) -> bool:
    """Whether values of this type are written as plain text (so never YAML-parsed)."""
    if typing.get_origin(annotation) is Literal:
        return all(isinstance(v, str) for v in typing.get_args(annotation))
    return annotation is str or (isinstance(annotation, type) and issubclass(annotation, PurePath))


def _shape(name: str, info: FieldInfo) -> _Shape:
    base, metadata, nullable = _strip(info.annotation)
    metadata = [*info.metadata, *metadata]
    max_length = next((m.max_length for m in metadata if isinstance(m, annotated_types.MaxLen)), None)
    origin = typing.get_origin(base)
    args = typing.get_args(base)
    if base is str and name.endswith("_env"):
        return _Shape("env", nullable, base)
    if base is bool:
        return _Shape("select" if nullable else "checkbox", nullable, base)
    if base is int or base is float:
        return _Shape("integer" if base is int else "number", nullable, base)
    if base is str:
        return _Shape("text", nullable, base, max_length=max_length)
    if origin is Literal or (isinstance(base, type) and issubclass(base, PurePath)):
        return _Shape("select" if origin is Literal else "text", nullable, base)
    if origin in (list, tuple, set, frozenset) and args and _is_scalar(_strip(args[0])[0]):
        return _Shape("lines", nullable, base, item=_strip(args[0])[0], item_help=describe_type(args[0]))
    if origin is dict and len(args) == 2:
        value_type = _strip(args[1])[0]
        if _models_of(value_type) and not nullable:
            return _Shape("sections", nullable, base)
        if _is_scalar(value_type) or value_type is bool:
            return _Shape("mapping", nullable, base, item=value_type, item_help=describe_type(args[1]))
    if isinstance(base, type) and issubclass(base, BaseModel) and not nullable:
        return _Shape("section", nullable, base)
    return _Shape("yaml", nullable, base)


def _choices(shape: _Shape) -> dict[str, Any]:
    """A select's option texts and the values they stand for."""
    if shape.base is bool:
        return {"": None, "true": True, "false": False}
    options = {str(value): value for value in typing.get_args(shape.base)}
    return {"": None, **options} if shape.nullable else options


def _widget(name: str, shape: _Shape, value: Any) -> FieldKind:
    if shape.kind != "text" or shape.base is not str:
        return typing.cast(FieldKind, shape.kind)
    if name in _LONG_TEXT_FIELDS or (shape.max_length or 0) > 200:
        return "textarea"
    if shape.max_length is None and isinstance(value, str) and ("\n" in value or len(value) > 80):
        return "textarea"
    return "text"


# -- rendering values --------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as plain JSON-like data (models dumped, paths as text), for comparing and dumping."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _render_item(value: Any, text_type: bool) -> str:
    text = str(_plain(value))
    if text_type and (text != text.strip() or text[:1] in ("'", '"')):
        return json.dumps(text, ensure_ascii=False)  # a JSON string is YAML too; parsed back by _parse_item
    return text


def _render(kind: FieldKind, shape: _Shape, value: Any) -> str | bool:
    if kind == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if kind == "select" and shape.base is bool:
        return "true" if value else "false"
    if kind == "number" and float(value).is_integer():
        return str(int(value))  # 10, as the owner wrote it, not 10.0
    if kind == "lines":
        if not value and shape.nullable:
            return "[]"  # "" means null here, so an empty list is spelled out
        return "\n".join(_render_item(item, _is_text(shape.item)) for item in value)
    if kind == "mapping":
        if not value and shape.nullable:
            return "{}"
        return "\n".join(f"{k}: {_render_item(v, _is_text(shape.item))}" for k, v in value.items())
    if kind == "yaml":
        dumped = yaml.safe_dump(_plain(value), allow_unicode=True, sort_keys=False, default_flow_style=False)
        return dumped.removesuffix("\n...\n").rstrip("\n")
    return str(_plain(value))


def _label(key: str) -> str:
    return key.replace("_", " ")


# -- walking a section -------------------------------------------------------


def _walk_model(model: BaseModel, keys: tuple[str, ...], title: str, plan: _Plan,
                secret_is_set: Callable[[str], bool]) -> _Node:
    node = _Node(keys, title)
    fields = type(model).model_fields
    plan.orders[keys] = tuple(fields)
    for name, info in fields.items():
        value = getattr(model, name)
        shape = _shape(name, info)
        child_keys = (*keys, name)
        if shape.kind == "section":
            node.children.append(_walk_model(value, child_keys, _label(name), plan, secret_is_set))
        elif shape.kind == "sections":
            node.children.append(_walk_entries(value, child_keys, _label(name), plan, secret_is_set))
        else:
            node.leaves.append(_leaf(child_keys, info, shape, value, secret_is_set))
    return node


def _walk_entries(entries: Mapping[str, BaseModel], keys: tuple[str, ...], title: str, plan: _Plan,
                  secret_is_set: Callable[[str], bool]) -> _Node:
    node = _Node(keys, title)
    for key, entry in entries.items():
        entry_keys = (*keys, str(key))
        plan.entries[entry_keys] = entry
        node.children.append(_walk_model(entry, entry_keys, str(key), plan, secret_is_set))
    return node


def _leaf(keys: tuple[str, ...], info: FieldInfo, shape: _Shape, value: Any,
          secret_is_set: Callable[[str], bool]) -> _Leaf:
    name = keys[-1]
    kind = _widget(name, shape, value)
    form_field = FormField(
        path=".".join(keys),
        name=name,
        kind=kind,
        value=_render(kind, shape, value),
        choices=tuple(_choices(shape)) if kind == "select" else (),
        help=describe_field(info),
        nullable=shape.nullable,
        secret_set=bool(value and secret_is_set(value)) if kind == "env" else None,
        locked=locked_reason(keys) or "",
    )
    return _Leaf(form_field, keys, shape, value)


def _walk_section(settings: SecretaryConfig, section: str,
                  secret_is_set: Callable[[str], bool]) -> tuple[_Node, _Plan]:
    if section not in SECTIONS:
        raise ValueError(f"unknown config section {section!r}; one of {', '.join(SECTIONS)}")
    plan = _Plan(orders={(): tuple(SecretaryConfig.model_fields)})
    shape = _shape(section, SecretaryConfig.model_fields[section])
    value = getattr(settings, section)
    if shape.kind == "sections":
        return _walk_entries(value, (section,), _label(section), plan, secret_is_set), plan
    return _walk_model(value, (section,), _label(section), plan, secret_is_set), plan


def _to_form(node: _Node) -> FormSection:
    return FormSection(
        path=".".join(node.keys),
        title=node.title,
        fields=tuple(leaf.field for leaf in node.leaves),
        sections=tuple(_to_form(child) for child in node.children),
    )


def build_form(settings: SecretaryConfig, section: str, secret_is_set: Callable[[str], bool]) -> FormSection:
    """The form of one top-level section (one of SECTIONS) with the current values filled in."""
    node, _ = _walk_section(settings, section, secret_is_set)
    return _to_form(node)


# -- converting posted strings -----------------------------------------------


def _number(text: str, kind: str, allowed: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        if kind == "number":
            try:
                value = float(text)
            except ValueError:
                pass
            else:
                if math.isfinite(value):
                    return value
    raise _Unconvertible(f"must be {allowed}, got {describe_input(text)}")


def _parse_item(text: str, item_type: Any, allowed: str) -> Any:
    """One line of a lines or mapping field as a value of ``item_type``."""
    if _is_text(item_type):
        return _load_yaml(text) if text[:1] in ("'", '"') else text
    if item_type is int or item_type is float:
        return _number(text, "integer" if item_type is int else "number", allowed)
    return _load_yaml(text)


def _load_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1})" if mark else ""
        raise _Unconvertible(f"is not valid YAML: {exc.problem or exc}{where}") from None
    except yaml.YAMLError as exc:
        raise _Unconvertible(f"is not valid YAML: {exc}") from None


def _lines(text: str, shape: _Shape) -> list[Any] | None:
    stripped = text.strip()
    if shape.nullable and not stripped:
        return None
    if stripped == "[]":
        return []
    items: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append(_parse_item(line.strip(), shape.item, shape.item_help))
            except _Unconvertible as exc:
                raise _Unconvertible(f"line {number}: {exc}") from None
    return items


def _mapping(text: str, shape: _Shape) -> dict[str, Any] | None:
    stripped = text.strip()
    if shape.nullable and not stripped:
        return None
    if stripped == "{}":
        return {}
    result: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, raw = line.partition(":")
        key = key.strip()
        if not sep or not key:
            raise _Unconvertible(f"line {number}: expected 'key: value', got {describe_input(line.strip())}")
        if key in result:
            raise _Unconvertible(f"line {number}: {key!r} is given twice")
        try:
            result[key] = _parse_item(raw.strip(), shape.item, shape.item_help)
        except _Unconvertible as exc:
            raise _Unconvertible(f"line {number} ({key}): {exc}") from None
    return result


def _convert(leaf: _Leaf, raw: str) -> Any:
    """The posted text of one field as a value of its type; raises _Unconvertible."""
    kind, shape = leaf.field.kind, leaf.shape
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if kind in ("text", "textarea", "env", "integer", "number", "select") and shape.nullable and not text.strip():
        return None
    if kind != "textarea":
        text = text.strip()
    if kind in ("text", "textarea", "env"):
        return text
    if kind in ("integer", "number"):
        return _number(text, kind, leaf.field.help)
    if kind == "select":
        choices = _choices(shape)
        if text not in choices:
            raise _Unconvertible(f"must be {leaf.field.help}, got {describe_input(text)}")
        return choices[text]
    if kind == "lines":
        return _lines(text, shape)
    if kind == "mapping":
        return _mapping(text, shape)
    if kind == "yaml":
        return _load_yaml(text) if text.strip() else None
    raise AssertionError(f"unhandled kind {kind}")


# -- writing into the round-trip YAML ----------------------------------------


def _tail(container: Any, key: Any) -> tuple[dict[Any, Any], Any, int]:
    """Where ruamel keeps the comment after the last line of ``container[key]``: (ca.items, key, slot)."""
    value = container[key]
    if _is_block(value):
        inner = next(reversed(value)) if isinstance(value, CommentedMap) else len(value) - 1
        return _tail(value, inner)
    return container.ca.items, key, 0 if isinstance(container, CommentedSeq) else 2


def _split_comment(items: dict[Any, Any], item_key: Any, slot: int, keep_blank: bool) -> str:
    """Cut a comment token after its end-of-line part; return the lines below it (blank lines, comments)."""
    entry = items.get(item_key)
    token = entry[slot] if entry and len(entry) > slot else None
    if not isinstance(token, CommentToken):
        return ""
    first, _, rest = token.value.partition("\n")
    if not rest:
        return ""
    if first or (keep_blank and rest.startswith("\n")):
        token.value = first + "\n" + ("\n" if keep_blank and rest.startswith("\n") else "")
    else:
        entry[slot] = None
    return rest


def _take_trailing_comment(container: CommentedMap, key: Any, keep_blank: bool) -> str:
    """Detach the blank lines and comments below ``container[key]``: they introduce what follows it."""
    return _split_comment(*_tail(container, key), keep_blank)


def _give_trailing_comment(container: CommentedMap, key: Any, text: str) -> None:
    """Put lines detached by _take_trailing_comment below ``container[key]``."""
    items, item_key, slot = _tail(container, key)
    entry = items.setdefault(item_key, [None, None, None, None])
    token = entry[slot]
    if isinstance(token, CommentToken):
        token.value = token.value + ("" if token.value.endswith("\n") else "\n") + text
    else:
        entry[slot] = CommentToken("\n" + text, CommentMark(0), None)


def _is_block(value: Any) -> bool:
    return isinstance(value, (CommentedMap, CommentedSeq)) and bool(len(value)) and not value.fa.flow_style()


def _node(value: Any) -> Any:
    """Plain data as ruamel round-trip nodes (multi-line text as a literal block)."""
    if isinstance(value, Mapping):
        node = CommentedMap()
        for k, v in value.items():
            node[k] = _node(v)
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_node(v) for v in value)
        if all(not isinstance(v, (Mapping, list)) for v in value) and len(str(value)) <= 60:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


def _restyled(old: CommentedSeq, new: list[Any]) -> CommentedSeq:
    """``new`` as a sequence written in ``old``'s style (flow or block)."""
    if not len(old):
        return _node(new)  # an empty list is written [] whatever its style: choose afresh
    seq = CommentedSeq(_node(v) for v in new)
    if old.fa.flow_style():
        seq.fa.set_flow_style()
    else:
        seq.fa.set_block_style()
    return seq


def _insert(mapping: CommentedMap, key: str, value: Any, order: Sequence[str], root: bool) -> None:
    """Add a key where the schema orders it, keeping comments above the keys they introduce."""
    keys = list(mapping)
    position = len(keys)
    if key in order:
        rank = order.index(key)
        later = [i for i, k in enumerate(keys) if k in order and order.index(k) > rank]
        position = later[0] if later else len(keys)
    comment = _take_trailing_comment(mapping, keys[position - 1], keep_blank=root) if position else ""
    mapping.insert(position, key, value)
    if comment:
        _give_trailing_comment(mapping, key, comment)


def _assign(mapping: MutableMapping[str, Any], key: str, value: Any, order: Sequence[str] = (),
            root: bool = False) -> None:
    """Set ``mapping[key]``, changing as little of the round-trip structure as possible."""
    if not isinstance(mapping, CommentedMap):
        mapping[key] = value
        return
    if key not in mapping:
        _insert(mapping, key, _node(value), order, root)
        return
    old = mapping[key]
    # The lines below the old value (blank lines, comments on what follows) stay below the new one.
    below = _take_trailing_comment(mapping, key, keep_blank=False)
    if isinstance(value, Mapping) and isinstance(old, CommentedMap):
        for gone in [k for k in old if k not in value]:
            del old[gone]
        for k, v in value.items():
            if k not in old or _plain(old[k]) != _plain(v):
                _assign(old, k, v)
    elif isinstance(value, list) and isinstance(old, CommentedSeq):
        mapping[key] = _restyled(old, value)
    else:
        mapping[key] = _node(value)
    if below:
        _give_trailing_comment(mapping, key, below)


def _seed(plan: _Plan, keys: tuple[str, ...]) -> dict[str, Any]:
    """What a missing mapping starts as: a whole mapping entry's current content, else nothing."""
    entry = plan.entries.get(keys)
    return entry.model_dump(mode="json", exclude_defaults=True) if entry is not None else {}


def _ordered(value: Any, keys: tuple[str, ...], plan: _Plan) -> Any:
    """Plain nested mappings with their keys in schema order."""
    if not isinstance(value, dict):
        return value
    order = plan.orders.get(keys, ())
    ranked = sorted(value, key=lambda k: order.index(k) if k in order else len(order))
    return {k: _ordered(value[k], (*keys, k), plan) for k in ranked}


def _fresh(keys: tuple[str, ...], depth: int, value: Any, plan: _Plan) -> Any:
    """The whole value for the missing ``keys[depth]``, holding ``value`` at the end of ``keys``."""
    if depth == len(keys) - 1:
        return value
    root = _seed(plan, keys[: depth + 1])
    cursor = root
    for index in range(depth + 1, len(keys) - 1):
        below = cursor.get(keys[index])
        if not isinstance(below, dict):
            below = cursor[keys[index]] = _seed(plan, keys[: index + 1])
        cursor = below
    cursor[keys[-1]] = value
    return _ordered(root, keys[: depth + 1], plan)


def _write(data: MutableMapping[str, Any], keys: tuple[str, ...], value: Any, plan: _Plan) -> None:
    """Set the value at ``keys``, creating what is missing on the way in one piece."""
    cursor = data
    for depth, key in enumerate(keys):
        if depth == len(keys) - 1 or not isinstance(cursor.get(key), MutableMapping):
            order = plan.orders.get(keys[:depth], ())
            _assign(cursor, key, _fresh(keys, depth, value, plan), order, root=cursor is data)
            return
        cursor = cursor[key]


# -- applying a post ---------------------------------------------------------


def _secret(leaf: _Leaf, form: Mapping[str, str], name: Any) -> tuple[str, str] | ConfigIssue | None:
    secret = form.get(secret_key(leaf.field.path), "").strip()
    if not secret:
        return None
    if "\n" in secret or "\r" in secret or "\0" in secret:
        return ConfigIssue(leaf.field.path, "the secret must be a single line")
    if not isinstance(name, str) or not name:
        return ConfigIssue(leaf.field.path, "name the environment variable that holds the secret")
    return name, secret


def typed_secrets(form: Mapping[str, str]) -> set[str]:
    """The paths of the ``env`` fields whose secret this post carries (typed, not blank)."""
    return {key.removeprefix(SECRET_PREFIX) for key, value in form.items()
            if key.startswith(SECRET_PREFIX) and value.strip()}


def apply_form(data: MutableMapping[str, Any], section: str, form: Mapping[str, str],
               settings: SecretaryConfig) -> tuple[dict[str, str], list[ConfigIssue]]:
    """Write the posted values of one section that differ from ``settings`` into ``data``.

    Returns (secrets to store, keyed by environment variable name; issues of values
    that could not be converted to their field's type, of changes to locked fields
    and of two different secrets typed for one variable). Fields absent from the
    post are left alone; a checkbox counts only when its presence marker was posted.
    """
    node, plan = _walk_section(settings, section, lambda _: False)
    secrets: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for leaf in node.all_leaves():
        path = leaf.field.path
        if leaf.field.kind == "checkbox":
            if present_key(path) not in form:
                continue
            value: Any = form.get(path, "").strip().lower() in _TRUE_WORDS
        elif path in form:
            try:
                value = _convert(leaf, form[path])
            except _Unconvertible as exc:
                issues.append(ConfigIssue(path, str(exc)))
                continue
        else:
            value = leaf.current
        if leaf.field.kind == "env":
            secret = _secret(leaf, form, value)
            if isinstance(secret, ConfigIssue):
                issues.append(secret)
            elif secret is not None and secrets.get(secret[0], secret[1]) != secret[1]:
                issues.append(ConfigIssue(path, f"another field of this form typed a different secret for {secret[0]}"))
            elif secret is not None:
                secrets[secret[0]] = secret[1]
        if _plain(value) != _plain(leaf.current) and leaf.field.locked:
            issues.append(ConfigIssue(path, locked_message(leaf.field.locked)))
        elif _plain(value) != _plain(leaf.current):
            _write(data, leaf.keys, value, plan)
    return secrets, issues


def field_errors(issues: Iterable[ConfigIssue], fields: Iterable[str] = ()) -> dict[str, list[str]]:
    """Messages by key path ("" for the whole file), for showing next to the form's fields.

    An issue below one of ``fields`` (``...users[0]`` under the lines field
    ``...users``) is filed under that field, naming the item. Issues at a
    section's path stay under that path.
    """
    known = sorted(set(fields), key=len, reverse=True)
    result: dict[str, list[str]] = {}
    for issue in issues:
        path, message = issue.path, issue.message
        owner = next((f for f in known if path.startswith((f + ".", f + "["))), None)
        if owner is not None:
            rest = path[len(owner):].lstrip(".")
            rest = re.sub(r"^\[(\d+)\]", lambda m: f"item {int(m.group(1)) + 1}", rest)
            path, message = owner, f"{rest}: {message}"
        result.setdefault(path, []).append(message)
    return result
