"""Telegram voice notes: PCM <-> OGG/Opus with PyAV.

Telegram shows a voice message (``sendVoice``) with a waveform and a play
button only when it is OGG with one Opus stream. ``pcm_to_voice_note`` and
``wav_to_voice_note`` make such a file (mono, 48 kHz, ~24 kbit/s, the VoIP
application mode; any input rate, e.g. 8 kHz call records, is resampled by
the encoder's resampler); ``voice_note_to_pcm`` decodes a voice note the
owner sent (or any container/codec FFmpeg reads) to mono float32.

All three are CPU work (tens of milliseconds per minute of audio): callers on
the event loop run them in a thread (``asyncio.to_thread``). Bad input
raises ``VoiceNoteError`` (a ``ValueError``); a missing file raises the usual
``FileNotFoundError``.
"""

from __future__ import annotations

import io
import wave
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import av.error
import numpy as np

from drivers.audio.wav_io import read_wav

VOICE_NOTE_RATE: Final = 48_000
VOICE_NOTE_BITRATE: Final = 24_000


class VoiceNoteError(ValueError):
    """The input is not audio that can be turned into (or read from) a voice note."""


def wav_to_voice_note(path: Path) -> tuple[bytes, float]:
    """Encode a mono PCM16 WAV (any rate) as an OGG/Opus voice note: (bytes, duration in seconds)."""
    try:
        samples, rate = read_wav(path)
    except (wave.Error, EOFError, ValueError) as error:
        raise VoiceNoteError(f"not an audio file: {path}: {error}") from error
    return pcm_to_voice_note(samples, rate)


def pcm_to_voice_note(samples: np.ndarray, rate: int) -> tuple[bytes, float]:
    """Encode mono samples (int16, or float in [-1, 1]) at ``rate`` Hz: (OGG/Opus bytes, duration in seconds)."""
    pcm = np.asarray(samples)
    if pcm.ndim != 1:
        raise VoiceNoteError(f"not an audio file: expected mono samples, got shape {pcm.shape}")
    if pcm.size == 0:
        raise VoiceNoteError("not an audio file: no samples")
    if rate <= 0:
        raise VoiceNoteError(f"not an audio file: sample rate {rate}")
    if pcm.dtype == np.int16:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    elif np.issubdtype(pcm.dtype, np.floating):
        clean = np.clip(np.nan_to_num(pcm, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(clean.reshape(1, -1), format="flt", layout="mono")
    else:
        raise VoiceNoteError(f"not an audio file: samples must be int16 or float, got {pcm.dtype}")
    frame.sample_rate = int(rate)
    frame.pts = 0
    frame.time_base = Fraction(1, int(rate))

    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream(
            "libopus", rate=VOICE_NOTE_RATE, options={"application": "voip"}, layout="mono", bit_rate=VOICE_NOTE_BITRATE
        )
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue(), pcm.size / rate


def voice_note_to_pcm(data: bytes, rate: int = 16_000) -> np.ndarray:
    """Decode a voice note (OGG/Opus, or anything FFmpeg reads) to mono float32 samples at ``rate`` Hz."""
    if not data:
        raise VoiceNoteError("not an audio file: empty input")
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.audio:
                raise VoiceNoteError("not an audio file: no audio stream")
            stream = container.streams.audio[0]
            for decoded in container.decode(stream):
                chunks.extend(frame.to_ndarray().reshape(-1) for frame in resampler.resample(decoded))
            chunks.extend(frame.to_ndarray().reshape(-1) for frame in resampler.resample(None))
    except av.error.FFmpegError as error:
        raise VoiceNoteError(f"not an audio file: {error}") from error
    if not chunks:
        raise VoiceNoteError("not an audio file: no audio samples")
    return np.concatenate(chunks).astype(np.float32, copy=False)
