"""Build an STT backend from its config kind and settings.

The config names each backend of the STT chain by kind (``faster-whisper``,
``vosk``) with that kind's settings dataclass; ``build_stt_backend`` makes
the (not yet loaded) backend. ``models_dir`` is where packaged models are
assembled (``<data_dir>/models``). Heavy libraries are imported only when a
backend loads, so building (and config checking) stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from engines.stt.faster_whisper_backend import FasterWhisperBackend, FasterWhisperSettings
from engines.stt.interface import SttBackend
from engines.stt.vosk_backend import VoskBackend, VoskSettings

SttSettings = FasterWhisperSettings | VoskSettings

STT_SETTINGS: dict[str, type[FasterWhisperSettings] | type[VoskSettings]] = {
    "faster-whisper": FasterWhisperSettings,
    "vosk": VoskSettings,
}


def build_stt_backend(kind: str, settings: SttSettings | None, models_dir: Path) -> SttBackend:
    """A backend of ``kind`` with ``settings`` (None: that kind's defaults)."""
    expected = STT_SETTINGS.get(kind)
    if expected is None:
        raise ValueError(f"unknown STT backend kind {kind!r} (known: {', '.join(STT_SETTINGS)})")
    if settings is None:
        settings = expected()
    if not isinstance(settings, expected):
        raise TypeError(f"STT backend {kind} takes {expected.__name__}, not {type(settings).__name__}")
    if isinstance(settings, FasterWhisperSettings):
        return FasterWhisperBackend(settings, models_dir)
    return VoskBackend(settings)
