"""The one line of JSON every bench ends with: its figures (floats rounded, NaN as null) and the machine they came from."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from pathlib import Path
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


def machine() -> dict[str, Any]:
    """The machine a bench ran on: its cores (all and usable), CPU model, Python and the 1-minute load."""
    model = ""
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)), "cpu": model or platform.processor(),
        "python": platform.python_version(), "loadavg_1m": os.getloadavg()[0],
    }
