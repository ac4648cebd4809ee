"""A recording as the box hears it over a phone call: 8 kHz, G.711 on the wire, back up to the engines' rate.

The same pieces the call path uses (``drivers/audio``): a ``StreamResampler`` takes the recording to
``LINE_RATE``, the line codec (A-law, as Russian and European networks carry it, or mu-law) encodes
and the ``LineCapture`` decodes the wire bytes in 20 ms frames and resamples them to ``ENGINE_RATE``
float32, exactly what the call's listener hands to STT.
"""

from __future__ import annotations

import numpy as np

from drivers.audio.capture import LineCapture
from drivers.audio.framing import ENGINE_RATE, LINE_RATE, frame_samples
from drivers.audio.line_codec import LineCodec
from drivers.audio.pcm import Float32Array, float_to_int16
from drivers.audio.resample import StreamResampler


def to_line(pcm: np.ndarray, rate: int) -> np.ndarray:
    """int16 ``pcm`` at ``rate`` -> int16 at the line rate (8 kHz), rounded as a line card would."""
    down = StreamResampler(rate, LINE_RATE)
    return float_to_int16(np.concatenate([down.process(pcm), down.flush()]))


def phone_call(pcm: np.ndarray, rate: int, codec: LineCodec | str = LineCodec.ALAW) -> Float32Array:
    """What STT hears of ``pcm`` (int16 at ``rate``) said over a call: float32 at ``ENGINE_RATE``."""
    line = to_line(pcm, rate)
    wire = LineCodec(codec).encode(line)
    capture = LineCapture(codec, line_rate=LINE_RATE, out_rate=ENGINE_RATE)
    step = frame_samples() * LineCodec(codec).bytes_per_sample
    heard = [capture.feed(wire[at : at + step]) for at in range(0, len(wire), step)]
    heard.append(capture.flush())
    return np.concatenate(heard).astype(np.float32, copy=False)
