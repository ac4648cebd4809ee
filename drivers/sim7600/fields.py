"""Splitting AT parameter lists: ``4,1,4,0,0,"+7916,123",145`` -> fields.

Quoted strings may contain commas; a field remembers whether it was quoted
(``+CREG: 2,"1A2B"`` differs from ``+CREG: 2,1``).  Malformed input (an
unterminated quote) never raises: the rest of the text becomes the last field.
"""

from __future__ import annotations

from typing import NamedTuple


class Param(NamedTuple):
    value: str
    quoted: bool


def split_params(text: str) -> list[Param]:
    params: list[Param] = []
    i = 0
    n = len(text)
    if not text.strip():
        return params
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                params.append(Param(text[i + 1 :], True))
                return params
            params.append(Param(text[i + 1 : close], True))
            comma = text.find(",", close + 1)
            if comma < 0:
                return params
            i = comma + 1
        else:
            comma = text.find(",", i)
            if comma < 0:
                params.append(Param(text[i:].strip(), False))
                return params
            params.append(Param(text[i:comma].strip(), False))
            i = comma + 1


def values(text: str) -> list[str]:
    return [p.value for p in split_params(text)]


def to_int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return int(value)
    except ValueError:
        return None


def param_int(params: list[Param], index: int) -> int | None:
    if index >= len(params):
        return None
    return to_int(params[index].value)


def param_str(params: list[Param], index: int) -> str | None:
    if index >= len(params):
        return None
    return params[index].value


def quote(value: str) -> str:
    """Quote a string parameter for a command (the modem has no escape for '"')."""
    if '"' in value or "\r" in value or "\n" in value:
        raise ValueError(f"cannot put {value!r} in an AT string parameter")
    return f'"{value}"'


__all__ = ["Param", "param_int", "param_str", "quote", "split_params", "to_int", "values"]
