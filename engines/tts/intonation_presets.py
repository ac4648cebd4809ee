"""Intonation presets: named sets of XTTS sampling knobs (warm, calm, energetic, natural, neutral).

XTTS v2 speaks differently with different GPT sampling settings: lower
temperature and top-k/top-p give a steadier, flatter delivery; higher ones a
livelier, less predictable one; ``speed`` stretches the decoded latents. A
persona picks a preset by name instead of tuning five numbers. Piper and
espeak-ng take only the preset's ``speed``.

Every preset is validated when it is built (a config typo fails at start, not
mid-call); asking for a preset that does not exist raises ``UnknownPreset``
naming the ones that do. Config may add presets or override built-in ones.
Stdlib only: the XTTS worker process imports this.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields


class PresetError(ValueError):
    """A preset's values are out of range or malformed."""


class UnknownPreset(PresetError):
    """A request named a preset that is not defined."""


_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.05, 1.5),
    "speed": (0.5, 2.0),
    "repetition_penalty": (1.0, 20.0),
    "top_k": (1, 500),
    "top_p": (0.05, 1.0),
    "length_penalty": (0.1, 10.0),
}


@dataclass(frozen=True)
class IntonationPreset:
    name: str
    temperature: float
    speed: float
    repetition_penalty: float
    top_k: int
    top_p: float
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise PresetError(f"preset name {self.name!r} must be a non-empty word (letters, digits, - or _)")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool):
            raise PresetError(f"preset {self.name!r}: top_k must be an integer, got {self.top_k!r}")
        for field_name, (low, high) in _RANGES.items():
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PresetError(f"preset {self.name!r}: {field_name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise PresetError(f"preset {self.name!r}: {field_name}={value} is outside [{low:g}, {high:g}]")

    def xtts_kwargs(self) -> dict[str, float | int]:
        """Keyword arguments for ``Xtts.inference_stream``."""
        return {
            "temperature": float(self.temperature),
            "speed": float(self.speed),
            "repetition_penalty": float(self.repetition_penalty),
            "top_k": int(self.top_k),
            "top_p": float(self.top_p),
            "length_penalty": float(self.length_penalty),
        }

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, name: str, values: Mapping[str, object], base: IntonationPreset | None = None) -> IntonationPreset:
        """A preset from config values; missing knobs come from ``base`` (an override) or are an error."""
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = set(values) - known
        if unknown:
            raise PresetError(f"preset {name!r}: unknown settings {sorted(unknown)} (known: {sorted(known)})")
        merged: dict[str, object] = {} if base is None else {k: v for k, v in asdict(base).items() if k != "name"}
        merged.update(values)
        missing = sorted(known - set(merged) - {"length_penalty"})
        if missing:
            raise PresetError(f"preset {name!r}: missing settings {missing}")
        try:
            return cls(name=name, **merged)  # type: ignore[arg-type]
        except TypeError as exc:
            raise PresetError(f"preset {name!r}: {exc}") from None


BUILTIN_PRESETS: dict[str, IntonationPreset] = {
    p.name: p
    for p in (
        # XTTS v2's own defaults: lively but the GPT may wander.
        IntonationPreset("natural", temperature=0.75, speed=1.0, repetition_penalty=10.0, top_k=50, top_p=0.85),
        # Flat, predictable: announcements, numbers, addresses.
        IntonationPreset("neutral", temperature=0.5, speed=1.0, repetition_penalty=5.0, top_k=30, top_p=0.75),
        # Friendly and a touch slower.
        IntonationPreset("warm", temperature=0.7, speed=0.95, repetition_penalty=7.0, top_k=50, top_p=0.8),
        # Slow and steady: an upset caller, an apology.
        IntonationPreset("calm", temperature=0.55, speed=0.9, repetition_penalty=8.0, top_k=30, top_p=0.7),
        # Quicker and more varied.
        IntonationPreset("energetic", temperature=0.85, speed=1.1, repetition_penalty=6.0, top_k=80, top_p=0.9),
    )
}

DEFAULT_PRESET = "natural"


class PresetBook:
    """The presets one deployment knows: the built-ins plus config additions/overrides."""

    def __init__(self, custom: Mapping[str, Mapping[str, object]] | None = None, default: str = DEFAULT_PRESET) -> None:
        presets = dict(BUILTIN_PRESETS)
        for name, values in (custom or {}).items():
            if not isinstance(values, Mapping):
                raise PresetError(f"preset {name!r}: expected a mapping of settings, got {type(values).__name__}")
            presets[name] = IntonationPreset.from_mapping(name, values, base=presets.get(name))
        self._presets = presets
        if default not in presets:
            raise UnknownPreset(f"default preset {default!r} is not defined (known: {', '.join(sorted(presets))})")
        self.default = default

    def get(self, name: str | None) -> IntonationPreset:
        """The named preset (``None`` = the default); unknown names raise ``UnknownPreset``."""
        if name is None:
            return self._presets[self.default]
        try:
            return self._presets[name]
        except KeyError:
            raise UnknownPreset(
                f"unknown intonation preset {name!r} (known: {', '.join(sorted(self._presets))})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._presets

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._presets))

    def names(self) -> list[str]:
        return sorted(self._presets)


def builtin_speed(name: str | None) -> float:
    """The speed of a built-in preset (1.0 for ``None`` or a preset only XTTS knows)."""
    preset = BUILTIN_PRESETS.get(name or DEFAULT_PRESET)
    return preset.speed if preset is not None else 1.0
