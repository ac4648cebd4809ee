"""Build a TTS backend from its kind name and typed settings.

Kinds: ``piper`` (in-process), ``piper-worker`` (Piper in a worker process, the
same machinery XTTS uses), ``rhvoice`` (Debian non-free RHVoice through its C
library), ``espeak`` (Debian espeak-ng) and ``xtts`` (Coqui
XTTS v2 in its own venv's worker process). The settings object must be the
kind's dataclass; a mismatch or an unknown kind is a ``ValueError`` that says
which one was expected.
"""

from __future__ import annotations

from pathlib import Path

from engines.tts.espeak_backend import EspeakBackend
from engines.tts.interface import TtsBackend
from engines.tts.piper_backend import PiperBackend
from engines.tts.rhvoice_backend import RhvoiceBackend
from engines.tts.settings import EspeakSettings, PiperSettings, RhvoiceSettings, WorkerSettings, XttsSettings
from engines.tts.worker_client import WorkerTtsBackend
from engines.tts.xtts_backend import XttsBackend

TtsSettings = PiperSettings | EspeakSettings | RhvoiceSettings | XttsSettings

SETTINGS_FOR_KIND: dict[str, type] = {
    "piper": PiperSettings,
    "piper-worker": PiperSettings,
    "espeak": EspeakSettings,
    "rhvoice": RhvoiceSettings,
    "xtts": XttsSettings,
}

__all__ = [
    "SETTINGS_FOR_KIND",
    "EspeakSettings",
    "PiperSettings",
    "RhvoiceSettings",
    "TtsSettings",
    "WorkerSettings",
    "XttsSettings",
    "build_tts_backend",
]


def build_tts_backend(kind: str, settings: TtsSettings, models_dir: Path) -> TtsBackend:
    """A new, not yet loaded backend of ``kind``."""
    expected = SETTINGS_FOR_KIND.get(kind)
    if expected is None:
        raise ValueError(f"unknown TTS backend kind {kind!r} (known: {', '.join(sorted(SETTINGS_FOR_KIND))})")
    if not isinstance(settings, expected):
        raise ValueError(f"TTS backend {kind!r} needs {expected.__name__}, got {type(settings).__name__}")
    if kind == "piper":
        assert isinstance(settings, PiperSettings)
        return PiperBackend(settings, models_dir)
    if kind == "piper-worker":
        assert isinstance(settings, PiperSettings)
        resolved = settings.resolved(models_dir)
        return WorkerTtsBackend(
            name="piper-worker",
            worker_backend="piper",
            settings_json=resolved.as_json(),
            languages=frozenset(settings.voices),
            worker=settings.worker,
            device="cpu",
            model=", ".join(f"{k}={Path(v).stem if not v.startswith('packaged:') else v}" for k, v in sorted(resolved.voices.items())),
        )
    if kind == "espeak":
        assert isinstance(settings, EspeakSettings)
        return EspeakBackend(settings)
    if kind == "rhvoice":
        assert isinstance(settings, RhvoiceSettings)
        return RhvoiceBackend(settings)
    assert isinstance(settings, XttsSettings)
    return XttsBackend(settings, models_dir)
