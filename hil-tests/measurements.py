"""Numbers the cases measure (latencies, recovery times), listed together at the end of the run."""

from __future__ import annotations

from typing import Protocol


class Measure(Protocol):
    def __call__(self, what: str, value: float, unit: str = "ms", limit: float | None = None) -> None: ...


def measurement_line(test: str, what: str, value: float, unit: str, limit: float | None) -> str:
    shown = f"{value:.0f}" if unit == "ms" else f"{value:.2f}"
    bound = "" if limit is None else f" (limit {limit:.0f} {unit})" if unit == "ms" else f" (limit {limit:.2f} {unit})"
    return f"{test}: {what} {shown} {unit}{bound}"
