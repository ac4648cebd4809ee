"""Build a VAD backend from its config kind (``silero``, ``webrtc``) and settings."""

from __future__ import annotations

from engines.vad.interface import VadBackend
from engines.vad.silero_backend import SileroBackend, SileroSettings
from engines.vad.webrtc_backend import WebRtcBackend, WebRtcSettings

VadSettings = SileroSettings | WebRtcSettings

VAD_SETTINGS: dict[str, type[SileroSettings] | type[WebRtcSettings]] = {
    "silero": SileroSettings,
    "webrtc": WebRtcSettings,
}


def build_vad_backend(kind: str, settings: VadSettings | None = None) -> VadBackend:
    """A (not yet loaded) backend of ``kind`` with ``settings`` (None: that kind's defaults)."""
    expected = VAD_SETTINGS.get(kind)
    if expected is None:
        raise ValueError(f"unknown VAD backend kind {kind!r} (known: {', '.join(VAD_SETTINGS)})")
    if settings is None:
        settings = expected()
    if not isinstance(settings, expected):
        raise TypeError(f"VAD backend {kind} takes {expected.__name__}, not {type(settings).__name__}")
    if isinstance(settings, SileroSettings):
        return SileroBackend(settings)
    return WebRtcBackend(settings)
