"""A GSM line that echoes the box's own voice: the caller channel = echo of what was sent + noise + the caller.

Used by bench/barge_in_echo.py and tests/daemon/call/test_barge_in_echo.py. ``run_case`` plays one reply
over the line, tick by tick as the call's line does (one 20 ms frame sent, one heard), and feeds the
caller track -- A-law on the wire, decoded and resampled by the line's own ``LineCapture`` -- to the
call's real ``CallerListener`` on a Silero ``SpeechDetector`` with the config's default thresholds and
barge-in onset. When the listener reports speech during the reply the box stops sending (one faded
frame, ``call.barge_in.fade_ms``, then silence), so the echo stops too. The echo is the sent audio,
delayed, attenuated and band-passed (300-3400 Hz, the hybrid and codecs), made from the frames as they
are sent, never precomputed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np

from config.call_schema import CallConfig
from config.engines_schema import VadConfig
from daemon.call.listener import CallerListener, CallerSpeechStarted, ListenerEvent
from daemon.engine_host.engine_wiring import detector_settings
from drivers.audio.capture import LineCapture
from drivers.audio.framing import ENGINE_RATE, LINE_RATE
from drivers.audio.line_codec import LineCodec
from engines.vad.echo_gate import EchoGate
from engines.vad.silero_backend import SileroBackend
from engines.vad.speech_detector import SpeechDetector
from tests.support import real_speech
from tests.support.phone_band import to_line

FRAME = LINE_RATE // 50  # 20 ms at the line rate
TICK_MS = 20
REPLY_DBFS = -18.0
CODEC = LineCodec.ALAW


@dataclass(frozen=True)
class Case:
    level_db: float
    delay_ms: int
    reply: np.ndarray  # int16 at LINE_RATE: what the box would send if nobody interrupts
    caller: np.ndarray | None  # int16 at LINE_RATE, trimmed to its speech; None: nobody talks
    onset_tick: int  # the caller's clip starts at the start of this tick
    seed: int

    @property
    def onset_ms(self) -> float:
        """The caller's speech onset (ms of the call): the clip's first 10 ms within 35 dB of its peak."""
        assert self.caller is not None
        ten = LINE_RATE // 100
        n = len(self.caller) // ten
        rms = np.sqrt(np.mean(self.caller[: n * ten].astype(np.float64).reshape(n, ten) ** 2, axis=1))
        first = int(np.flatnonzero(rms > rms.max() * 10 ** (-35 / 20))[0])
        return self.onset_tick * TICK_MS + first * 10


@dataclass
class Outcome:
    stopped_tick: int | None  # the tick whose caller frame made the listener report speech during the reply
    cpu_ms: list[float]  # the listener's work per 20 ms frame (VAD, gate)


def active_rms_dbfs(pcm: np.ndarray) -> float:
    """RMS over the 20 ms frames within 30 dB of the loudest (speech, not the pauses), in dBFS."""
    x = pcm.astype(np.float64) / 32768
    n = len(x) // FRAME
    e = np.mean(x[: n * FRAME].reshape(n, FRAME) ** 2, axis=1)
    active = e[e > e.max() * 1e-3]
    return 10 * float(np.log10(np.mean(active)))


def at_level(pcm: np.ndarray, dbfs: float) -> np.ndarray:
    gain = 10 ** ((dbfs - active_rms_dbfs(pcm)) / 20)
    return np.clip(np.round(pcm.astype(np.float64) * gain), -32768, 32767).astype(np.int16)


def line_clip(clip: real_speech.SpeechClip) -> np.ndarray:
    pcm, rate = real_speech.load_audio(clip)
    pcm = real_speech.trimmed(pcm, rate)
    return pcm if rate == LINE_RATE else to_line(pcm, rate)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink (1/f power) noise, limited to the phone band."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / LINE_RATE)
    shape = np.where((f >= 100) & (f <= 3600), 1 / np.sqrt(np.maximum(f, 1.0)), 0.0)
    noise = np.fft.irfft(spectrum * shape, n)
    return noise / np.sqrt(np.mean(noise**2))


def echo_path_fir(taps: int = 63) -> np.ndarray:
    """A 300-3400 Hz band-pass (windowed sinc): the hybrid and the network's codecs shape the echo."""
    m = np.arange(taps) - (taps - 1) / 2
    def lowpass(fc: float) -> np.ndarray:
        return 2 * fc / LINE_RATE * np.sinc(2 * fc / LINE_RATE * m)
    h = (lowpass(3400) - lowpass(300)) * np.hamming(taps)
    return h


ECHO_FIR = echo_path_fir()


class EchoLine:
    """The caller channel: echo of what was sent (delay, gain, band-pass) + noise + the caller's speech."""

    def __init__(self, case: Case, noise_dbfs: float, rng: np.random.Generator, total_ticks: int) -> None:
        self.gain = 10 ** (case.level_db / 20)
        self.delay = case.delay_ms * LINE_RATE // 1000
        self.sent = np.zeros(self.delay + len(ECHO_FIR) + total_ticks * FRAME)  # the sent audio, as floats
        self.at = self.delay + len(ECHO_FIR)  # where the next sent frame goes
        self.noise = pink_noise(total_ticks * FRAME, rng) * 32768 * 10 ** (noise_dbfs / 20)
        self.caller = np.zeros(total_ticks * FRAME)
        if case.caller is not None:
            start = case.onset_tick * FRAME
            self.caller[start : start + len(case.caller)] = case.caller[: len(self.caller) - start]

    def tick(self, k: int, sent_frame: np.ndarray) -> np.ndarray:
        """The caller track's frame ``k`` (int16), the box having sent ``sent_frame`` in the same tick."""
        self.sent[self.at : self.at + FRAME] = sent_frame
        self.at += FRAME
        end = self.at - self.delay
        window = self.sent[end - FRAME - len(ECHO_FIR) + 1 : end]
        echo = np.convolve(window, ECHO_FIR, mode="valid") * self.gain
        mix = echo + self.noise[k * FRAME : (k + 1) * FRAME] + self.caller[k * FRAME : (k + 1) * FRAME]
        return np.clip(np.round(mix), -32768, 32767).astype(np.int16)


async def run_case(case: Case, backend: SileroBackend, gate: EchoGate | None, noise_dbfs: float) -> Outcome:
    """One reply over the echoing line, heard by the call's listener (with ``gate``, told of every frame sent)."""
    call = CallConfig()
    settings = detector_settings(VadConfig())
    settings = replace(settings, min_speech_ms=call.barge_in.min_speech_ms, min_silence_ms=call.endpoint_silence_ms)
    detector = SpeechDetector(backend.open(ENGINE_RATE), settings)
    heard: list[int] = []
    tick_now = [0]

    def emit(event: ListenerEvent) -> None:
        if isinstance(event, CallerSpeechStarted):
            heard.append(tick_now[0])

    listener = CallerListener(detector, None, "en", emit, min_utterance_ms=call.min_utterance_ms, early_stt_ms=None,
                              echo_gate=gate)
    reply_ticks = len(case.reply) // FRAME
    total = reply_ticks + 50  # the echo tail and a second of the caller after the reply
    line = EchoLine(case, noise_dbfs, np.random.default_rng(case.seed), total)
    capture = LineCapture(CODEC)
    fade_ticks = max(1, round(call.barge_in.fade_ms / TICK_MS))
    cpu: list[float] = []
    stopped: list[int] = []

    async def caller_audio() -> AsyncIterator[np.ndarray]:
        for k in range(total):
            if k < reply_ticks and not stopped:
                frame = case.reply[k * FRAME : (k + 1) * FRAME]
            elif stopped and k < stopped[0] + 1 + fade_ticks and k < reply_ticks:
                ramp = np.linspace(1, 0, FRAME, endpoint=False)  # the faded frame after a cut
                frame = (case.reply[k * FRAME : (k + 1) * FRAME] * ramp).astype(np.int16)
            else:
                frame = np.zeros(FRAME, dtype=np.int16)
            if gate is not None:
                gate.sent(frame)
            chunk = capture.feed(CODEC.encode(line.tick(k, frame)))
            tick_now[0] = k
            t0 = time.perf_counter()
            yield chunk
            cpu.append((time.perf_counter() - t0) * 1000)  # the listener's work on this frame (VAD, gate)
            if heard and not stopped and k < reply_ticks:
                stopped.append(heard[0])

    await listener.run(caller_audio())
    during = [t for t in heard if t < reply_ticks]
    return Outcome(during[0] if during else None, cpu)
