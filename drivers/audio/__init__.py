"""drivers/audio: resample, G.711, 20 ms framing, jitter buffer, pacing, level, WAV I/O.

Engine audio -> ``LinePlayout`` (crossfade, resample, level) -> ``StreamingAudioBuffer``
-> ``PacingClock`` ticking a ``FrameSender`` (codec, call record) -> modem; and the
modem's bytes -> ``LineCapture`` (decode, call record, resample) -> float32 at
``ENGINE_RATE`` for VAD and STT. ``LINE_RATE``, ``FRAME_MS`` and ``ENGINE_RATE``
are named here once.
"""

from drivers.audio.call_recorder import CallRecorder, repair_call_dir
from drivers.audio.capture import LineCapture
from drivers.audio.crossfade import SegmentCrossfader
from drivers.audio.framing import ENGINE_RATE, FRAME_MS, LINE_RATE, Framer, frame_samples
from drivers.audio.jitter_buffer import (
    BufferEvent,
    BufferState,
    BufferStats,
    Fill,
    Overflow,
    StreamingAudioBuffer,
)
from drivers.audio.level import LineLeveler, PeakLimiter
from drivers.audio.line_codec import LineCodec, LineDecoder
from drivers.audio.pacing import PacingClock, PacingStats
from drivers.audio.playout import FrameSender, LinePlayout
from drivers.audio.resample import ResampleQuality, StreamResampler
from drivers.audio.thread_priority import set_normal, set_realtime
from drivers.audio.wav_io import StreamingWavWriter, read_wav, repair_wav

__all__ = [
    "ENGINE_RATE",
    "FRAME_MS",
    "LINE_RATE",
    "BufferEvent",
    "BufferState",
    "BufferStats",
    "CallRecorder",
    "Fill",
    "FrameSender",
    "Framer",
    "LineCapture",
    "LineCodec",
    "LineDecoder",
    "LineLeveler",
    "LinePlayout",
    "Overflow",
    "PacingClock",
    "PacingStats",
    "PeakLimiter",
    "ResampleQuality",
    "SegmentCrossfader",
    "StreamResampler",
    "StreamingAudioBuffer",
    "StreamingWavWriter",
    "frame_samples",
    "read_wav",
    "repair_call_dir",
    "repair_wav",
    "set_normal",
    "set_realtime",
]
