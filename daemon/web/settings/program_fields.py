"""Config fields the web page shows but never changes: programs the daemon starts, and files of secrets.

A web session that could rename ``engines.tts.xtts.python`` or add to a vLLM
backend's ``extra_args`` would make the daemon run a program of its choosing;
one that could point ``mqtt.credentials_file`` elsewhere would choose which
secrets the daemon reads; ``mqtt.topic_prefix`` is named by the broker's ACL,
which only root can rewrite. These fields are edited in the file on the box.
``LOCKED_FIELDS`` is the one list: the form renders them read-only and
``apply_form`` refuses a post that changes one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

ANY = "*"  # one entry of a mapping (an LLM backend's name)

_PROGRAM = "names a program the daemon starts"
LOCKED_FIELDS: Mapping[tuple[str, ...], str] = MappingProxyType({
    ("engines", "llm", "backends", ANY, "executable"): _PROGRAM,
    ("engines", "llm", "backends", ANY, "extra_args"): "arguments of a program the daemon starts",
    ("engines", "tts", "xtts", "python"): "the interpreter the XTTS worker runs in",
    ("mqtt", "credentials_file"): "a file the daemon reads secrets from",
    # The broker's ACL names every topic under it: a new prefix needs `secretary mqtt users` as root too.
    ("mqtt", "topic_prefix"): "the broker's ACL names it; after editing it run `secretary mqtt users`",
})


def _matches(pattern: tuple[str, ...], keys: Sequence[str]) -> bool:
    return len(pattern) == len(keys) and all(p in (ANY, k) for p, k in zip(pattern, keys, strict=True))


def locked_reason(keys: Sequence[str]) -> str | None:
    """Why the field at ``keys`` is not editable from the web page, or None when it is."""
    return next((reason for pattern, reason in LOCKED_FIELDS.items() if _matches(pattern, keys)), None)


def locked_message(reason: str) -> str:
    """The refusal of a post that changes a locked field."""
    return f"not editable from the web page ({reason}): edit the config file on the box"
