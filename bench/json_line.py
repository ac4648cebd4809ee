"""The one line of JSON every bench ends with: its figures, floats rounded, NaN written as null."""

from __future__ import annotations

import json
import math
from typing import Any


def rounded(value: Any, digits: int) -> Any:
    """``value`` with every float rounded to ``digits`` (NaN: None), through dicts and lists."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def print_json_line(summary: dict[str, Any], digits: int) -> None:
    print(json.dumps(rounded(summary, digits), separators=(",", ":"), ensure_ascii=False))
