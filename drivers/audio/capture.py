"""Inbound chain: line bytes -> decode -> call record -> resample to float32 at the engine rate for STT/VAD."""

from __future__ import annotations

from drivers.audio.call_recorder import CallRecorder
from drivers.audio.framing import ENGINE_RATE, LINE_RATE
from drivers.audio.line_codec import LineCodec, LineDecoder
from drivers.audio.pcm import Float32Array, Int16Array
from drivers.audio.resample import ResampleQuality, StreamResampler


class LineCapture:
    """Turns the caller's line audio into float32 at ``out_rate`` (``ENGINE_RATE``: what VAD and STT take).

    Decoded 8 kHz samples also go to the recorder's caller track, if given.
    The resampler works in float32, so its output is the engines' format as it
    stands: no conversion back to int16 on the way.
    """

    def __init__(
        self,
        codec: LineCodec | str,
        *,
        line_rate: int = LINE_RATE,
        out_rate: int = ENGINE_RATE,
        quality: ResampleQuality | str = ResampleQuality.MEDIUM,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.decoder = LineDecoder(codec)
        self.resampler = StreamResampler(line_rate, out_rate, quality)
        self.recorder = recorder

    def feed(self, data: bytes | bytearray | memoryview) -> Float32Array:
        """Decode wire bytes of any length; returns the audio ready at ``out_rate``."""
        return self.feed_samples(self.decoder.decode(data))

    def feed_samples(self, samples: Int16Array) -> Float32Array:
        """Same as ``feed`` for already decoded line samples."""
        if self.recorder is not None and samples.size:
            self.recorder.write_caller(samples)
        return self.resampler.process(samples)

    def flush(self) -> Float32Array:
        """End of call: the resampler's held-back tail."""
        self.decoder.reset()
        return self.resampler.flush()
