"""Benchmark of drivers/audio: resample and G.711 timings, pipeline CPU, 20 ms pacing jitter.

Prints readable figures, then ONE line of JSON with the same figures. Never fails
on time. The pacing part plays ``--seconds`` of audio in real time through the
whole outbound chain (playout -> jitter buffer -> pacing clock -> A-law -> sink,
with call recording and the inbound capture chain ticking alongside), once idle
and once while ``--load-threads`` threads run real inference in a loop, then
with those threads at nice +10, then with the loop thread SCHED_FIFO (if
allowed) set up the way the daemon does it for ``audio.realtime_priority``
(``daemon.runtime.loop_priority``: executor workers and threads the loop starts stay
SCHED_OTHER). ``--load stt`` (the default): each load thread transcribes the
bundled English caller recordings (8 kHz, 3.6 to 6 s each, upsampled to 16 kHz)
one after the other with faster-whisper, the packaged whisper-base int8 on CPU
with ``cpu_threads=1``, through the STT engine's own backend (model assembled
from the pip packages into ``--models-dir`` or a temp dir; nothing downloaded).
``--load mlp``: a numpy MLP forward pass in a loop (BLAS, GIL released, one BLAS
thread each). If STT cannot load, the bench says why and falls back to the MLP.
Pipeline CPU is measured on a virtual clock (pure work per second of audio)
and, in each real-time run, as the loop thread's CPU next to a bare 20 ms
asyncio timer loop (this machine's wake-up cost).

    .venv/bin/python bench/bench_audio.py [--seconds 60] [--load stt|mlp] [--load-threads 2]
                                          [--models-dir DIR] [--quick]
"""

from __future__ import annotations

import os

# one BLAS thread per load thread, so "two threads burn CPU" means two cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Self  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.audio import ENGINE_RATE, g711  # noqa: E402
from drivers.audio.call_recorder import CallRecorder  # noqa: E402
from drivers.audio.capture import LineCapture  # noqa: E402
from drivers.audio.jitter_buffer import StreamingAudioBuffer  # noqa: E402
from drivers.audio.line_codec import LineCodec  # noqa: E402
from drivers.audio.pacing import PacingClock  # noqa: E402
from drivers.audio.pcm import float_to_int16  # noqa: E402
from drivers.audio.playout import FrameSender, LinePlayout  # noqa: E402
from drivers.audio.resample import StreamResampler  # noqa: E402
from drivers.audio.thread_priority import set_normal  # noqa: E402
from drivers.audio.wav_io import read_wav  # noqa: E402

TTS_RATE = 22050
FRAME = 160


def speechlike(rate: int, seconds: float, seed: int) -> np.ndarray:
    """Band-limited noise with a syllable envelope (stand-in for TTS output)."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    lp = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
    x = lp - np.convolve(lp, np.ones(64) / 64, mode="same")
    x *= 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * np.arange(n) / rate) ** 2
    return (0.1 * x / max(1e-9, float(np.std(x)))).astype(np.float32)


def best_of(fn: Any, repeat: int) -> float:
    """Best wall time of ``repeat`` runs, seconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# --- resampling and codecs --------------------------------------------------------------


def bench_resample(seconds: float, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for in_rate, out_rate in [(24000, 8000), (22050, 8000), (16000, 8000), (8000, 16000)]:
        x = speechlike(in_rate, seconds, seed=in_rate)
        chunk = in_rate // 50  # 20 ms
        for quality in ("sinc_best", "sinc_medium", "sinc_fastest"):
            def one_shot(in_rate: int = in_rate, out_rate: int = out_rate, q: str = quality,
                         x: np.ndarray = x) -> None:
                r = StreamResampler(in_rate, out_rate, q)
                r.process(x)
                r.flush()

            def streamed(in_rate: int = in_rate, out_rate: int = out_rate, q: str = quality,
                         x: np.ndarray = x, chunk: int = chunk) -> None:
                r = StreamResampler(in_rate, out_rate, q)
                for i in range(0, x.size, chunk):
                    r.process(x[i : i + chunk])
                r.flush()

            key = f"{in_rate}->{out_rate}/{quality}"
            whole = best_of(one_shot, repeat) / seconds * 1e3
            stream = best_of(streamed, repeat) / seconds * 1e3
            out[key] = {
                "one_shot_ms_per_s": round(whole, 3),
                "stream_20ms_ms_per_s": round(stream, 3),
                "stream_x_realtime": round(1e3 / stream, 1),
            }
            print(f"resample {key:28s} one-shot {whole:7.3f} ms/s   20 ms chunks {stream:7.3f} ms/s"
                  f"   ({1e3 / stream:7.0f}x real time)")
    return out


def bench_codecs(repeat: int) -> dict[str, Any]:
    x = float_to_int16(speechlike(8000, 1.0, seed=1))
    frame = x[:FRAME]
    a, u = g711.alaw_encode(x), g711.ulaw_encode(x)
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "alaw_encode": (lambda: g711.alaw_encode(x), lambda: g711.alaw_encode(frame)),
        "alaw_decode": (lambda: g711.alaw_decode(a), lambda: g711.alaw_decode(a[:FRAME])),
        "ulaw_encode": (lambda: g711.ulaw_encode(x), lambda: g711.ulaw_encode(frame)),
        "ulaw_decode": (lambda: g711.ulaw_decode(u), lambda: g711.ulaw_decode(u[:FRAME])),
    }
    out: dict[str, Any] = {}
    for name, (whole, per_frame) in cases.items():
        per_s = best_of(whole, repeat) * 1e6
        per_f = best_of(lambda f=per_frame: [f() for _ in range(100)], repeat) / 100 * 1e6
        out[name] = {"us_per_s": round(per_s, 2), "us_per_frame": round(per_f, 2)}
        print(f"codec    {name:12s} {per_s:8.2f} us per 1 s of 8 kHz audio, {per_f:6.2f} us per 20 ms frame")
    build = best_of(lambda: (g711._build_alaw_encode(), g711._build_ulaw_encode()), repeat) * 1e3
    out["table_build_ms"] = round(build, 2)
    print(f"codec    encode tables (2 x 65,536 entries) built in {build:.2f} ms")
    return out


def bench_resample_encode_throughput(seconds: float) -> float:
    """22.05 kHz TTS -> 8 kHz (sinc_medium, 20 ms chunks) -> A-law, in x real time."""
    x = speechlike(TTS_RATE, seconds, seed=7)
    chunk = TTS_RATE // 50

    def run() -> None:
        r = StreamResampler(TTS_RATE, 8000, "sinc_medium")
        for i in range(0, x.size, chunk):
            g711.alaw_encode(float_to_int16(r.process(x[i : i + chunk])))

    t = best_of(run, 3)
    xrt = seconds / t
    print(f"resample 22.05k->8k + A-law encode: {xrt:.0f}x real time")
    return xrt


# --- the paced real-time run ----------------------------------------------------------


class _LoadThreads:
    """Load threads started on ``with`` entry and stopped (``_stop`` set, joined) on exit."""

    _stop: threading.Event
    _threads: list[threading.Thread]

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


class MlpLoad(_LoadThreads):
    """Threads running a small MLP forward pass in a loop (GIL released inside BLAS).

    ``nice`` > 0 lowers the threads' own scheduling priority (Linux per-thread nice),
    as a daemon can do for its inference workers.
    """

    def __init__(self, threads: int, nice: int = 0) -> None:
        self._stop = threading.Event()
        self._nice = nice
        self._threads = [threading.Thread(target=self._burn, args=(i,), daemon=True) for i in range(threads)]
        self.passes = 0

    def _burn(self, seed: int) -> None:
        if self._nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        rng = np.random.default_rng(seed)
        w1 = rng.standard_normal((512, 1536), dtype=np.float32) * 0.03
        w2 = rng.standard_normal((1536, 512), dtype=np.float32) * 0.03
        x = rng.standard_normal((96, 512), dtype=np.float32)
        while not self._stop.is_set():
            h = np.tanh(x @ w1)
            x = np.tanh(h @ w2)
            self.passes += 1



class SttLoad:
    """Threads each transcribing speech in a loop with faster-whisper (one model per thread).

    The backends are loaded once (``load``) and reused by every run; each run
    (``running``) starts one thread per backend, each with its own event loop
    awaiting ``FasterWhisperBackend.transcribe``, which decodes in a worker
    thread that the load thread starts (so it inherits the load thread's nice
    and scheduling policy, never the paced loop's).
    """

    def __init__(self, threads: int, models_dir: Path) -> None:
        from engines.stt.faster_whisper_backend import FasterWhisperBackend, FasterWhisperSettings

        settings = FasterWhisperSettings(device="cpu", compute_type="int8", cpu_threads=1)
        self.backends = [FasterWhisperBackend(settings, models_dir) for _ in range(threads)]
        self.clips = caller_speech_16k()
        self.first_text = ""

    def load(self) -> float:
        """Assemble the packaged model (once), load and warm up one backend per thread; seconds taken."""
        started = time.monotonic()

        async def load_all() -> None:
            for backend in self.backends:  # one after the other: the first assembles the model
                await backend.load()
                await backend.warm_up()

        asyncio.run(load_all())
        return time.monotonic() - started

    def close(self) -> None:
        async def close_all() -> None:
            for backend in self.backends:
                await backend.close()

        asyncio.run(close_all())

    def describe(self) -> str:
        b = self.backends[0]
        return (f"{len(self.backends)} threads x faster-whisper {Path(b.model).name} {b.device}/{b.compute_type} "
                f"cpu_threads=1 transcribing {len(self.clips)} caller clips in a loop")

    def running(self, nice: int = 0) -> _SttRun:
        return _SttRun(self, nice)


class _SttRun(_LoadThreads):
    def __init__(self, load: SttLoad, nice: int) -> None:
        self._load = load
        self._nice = nice
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._burn, args=(i,), name=f"stt-load-{i}", daemon=True)
                         for i in range(len(load.backends))]
        self.transcriptions = 0
        self.audio_s = 0.0
        self.decode_s = 0.0
        self.errors: list[str] = []

    def _burn(self, index: int) -> None:
        if self._nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        try:
            asyncio.run(self._transcribe_loop(index))
        except Exception as exc:  # noqa: BLE001 - reported, the bench goes on
            self.errors.append(f"{type(exc).__name__}: {exc}")

    async def _transcribe_loop(self, index: int) -> None:
        from engines.stt.interface import SttFinal

        backend = self._load.backends[index]
        clips = self._load.clips
        k = index
        while not self._stop.is_set():
            pcm = clips[k % len(clips)]
            k += 1
            t = time.monotonic()
            async for event in backend.transcribe(_once(pcm), "en"):
                if isinstance(event, SttFinal):
                    self.transcriptions += 1
                    self.audio_s += event.audio_s
                    self.decode_s += time.monotonic() - t
                    if not self._load.first_text:
                        self._load.first_text = event.text


    def summary(self) -> dict[str, Any]:
        return {
            "transcriptions": self.transcriptions,
            "audio_s_transcribed": round(self.audio_s, 1),
            "decode_rtf": round(self.decode_s / self.audio_s, 3) if self.audio_s else None,
            "errors": self.errors[:3],
        }


async def _once(pcm: np.ndarray) -> Any:
    yield pcm


def caller_speech_16k() -> list[np.ndarray]:
    """The bundled English caller lines (real speech, 8 kHz) at the engine rate, float32 as the line capture makes them."""
    from daemon.tools.demo_caller import caller_script

    clips: list[np.ndarray] = []
    for line in caller_script("en"):
        if line.seconds < 3.0:
            continue
        pcm, rate = read_wav(line.wav)
        r = StreamResampler(rate, ENGINE_RATE, "sinc_medium")
        clips.append(np.concatenate([r.process(pcm), r.flush()]))
    return clips or [speechlike(ENGINE_RATE, 4.0, seed=5)]


def percentiles(values_ms: np.ndarray) -> dict[str, float]:
    if values_ms.size == 0:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    p50, p95, p99 = np.percentile(values_ms, [50, 95, 99])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3),
            "p99_ms": round(float(p99), 3), "max_ms": round(float(values_ms.max()), 3)}


class LineChain:
    """Both directions of one call: TTS producer -> playout -> buffer; tick = send + capture."""

    def __init__(self, seconds: float, workdir: Path, quality: str = "sinc_medium") -> None:
        self.seconds = seconds
        self.sentences = [speechlike(TTS_RATE, d, seed=i) for i, d in enumerate([2.1, 3.4, 1.7, 2.8, 3.9, 2.3])]
        self.buffer = StreamingAudioBuffer(capacity_ms=2000, preroll_ms=100)
        self.playout = LinePlayout(self.buffer, quality=quality)
        self.recorder = CallRecorder(workdir)
        self._sink = os.open(os.devnull, os.O_WRONLY)
        self.sender = FrameSender(self.buffer, LineCodec.ALAW, self._write, self.recorder)
        self.capture = LineCapture(LineCodec.ALAW, quality=quality, recorder=self.recorder)
        self.inbound = LineCodec.ALAW.encode(float_to_int16(speechlike(8000, 0.02, seed=99)))

    def _write(self, data: bytes) -> None:
        os.write(self._sink, data)

    def tick(self) -> None:
        self.sender()
        self.capture.feed(self.inbound)  # the inbound direction works on the same loop

    async def produce(self) -> None:
        rng = np.random.default_rng(3)
        played = 0.0
        i = 0
        while played < self.seconds + 1.0:
            sentence = self.sentences[i % len(self.sentences)]
            if i:
                self.playout.new_segment()
            pos = 0
            while pos < sentence.size:
                n = int(rng.integers(TTS_RATE // 20, TTS_RATE // 3))  # 50..333 ms chunks
                if not await self.playout.feed(sentence[pos : pos + n], TTS_RATE):
                    return
                pos += n
            played += sentence.size / TTS_RATE
            i += 1
        await self.playout.end()

    async def play(self, clock: PacingClock, frames: int) -> None:
        producer = asyncio.create_task(self.produce(), name="bench-producer")
        try:
            await clock.run(frames)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            self.recorder.close()
            os.close(self._sink)


async def pipeline_cpu_offline(seconds: float, workdir: Path, quality: str) -> float:
    """CPU ms per second of audio of the whole chain, clocked by virtual time (no waiting)."""
    chain = LineChain(seconds, workdir, quality)
    now = [0.0]

    async def sleep_until(deadline: float) -> None:
        now[0] = max(now[0], deadline)
        await asyncio.sleep(0)

    clock = PacingClock(chain.tick, clock=lambda: now[0], sleep_until=sleep_until)
    cpu0 = time.thread_time()
    await chain.play(clock, int(seconds * 50))
    return (time.thread_time() - cpu0) / seconds * 1e3


async def bare_timer_cpu(seconds: float) -> float:
    """Loop-thread CPU % of a bare 20 ms asyncio.sleep loop: this machine's wake-up cost."""
    cpu0 = time.thread_time()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for k in range(1, int(seconds * 50) + 1):
        await asyncio.sleep(max(0.0, t0 + k * 0.02 - loop.time()))
    return (time.thread_time() - cpu0) / seconds * 100


async def paced_run(seconds: float, workdir: Path) -> dict[str, Any]:
    """Play ``seconds`` of synthesized speech in real time through the whole line chain."""
    frames = int(seconds * 50)
    chain = LineChain(seconds, workdir)
    buffer = chain.buffer
    deadlines = np.empty(frames)
    sent = np.empty(frames)
    count = 0

    def observe(deadline: float, sent_at: float) -> None:
        nonlocal count
        if count < frames:
            deadlines[count], sent[count] = deadline, sent_at
        count += 1

    clock = PacingClock(chain.tick, on_frame=observe)
    cpu0 = time.thread_time()
    await chain.play(clock, frames)
    cpu = time.thread_time() - cpu0

    lateness_ms = (sent - deadlines) * 1e3
    tenth = max(1, frames // 10)
    jitter_ms = np.abs(lateness_ms)
    interval_dev_ms = np.abs(np.diff(sent) * 1e3 - 20.0)
    result = {
        "frames": frames,
        "jitter": percentiles(jitter_ms),
        "interval_deviation": percentiles(interval_dev_ms),
        "mean_lateness_ms": round(float(lateness_ms.mean()), 3),
        # mean lateness over the last tenth of the run minus over the first tenth
        "drift_ms": round(float(lateness_ms[-tenth:].mean() - lateness_ms[:tenth].mean()), 3),
        "underruns": buffer.stats.underruns,
        "gap_frames": buffer.stats.gap_frames,
        "overruns": buffer.stats.overruns,
        "late_frames": clock.stats.late_frames,
        "resyncs": clock.stats.resyncs,
        "loop_thread_cpu_pct": round(cpu / seconds * 100, 3),
    }
    return result


def report_paced(label: str, r: dict[str, Any]) -> None:
    j, d = r["jitter"], r["interval_deviation"]
    print(f"pacing   {label:7s} |sent - deadline| p50 {j['p50_ms']:.3f}  p95 {j['p95_ms']:.3f}  "
          f"p99 {j['p99_ms']:.3f}  max {j['max_ms']:.3f} ms over {r['frames']} frames")
    print(f"pacing   {label:7s} |interval - 20 ms| p50 {d['p50_ms']:.3f}  p99 {d['p99_ms']:.3f}  "
          f"max {d['max_ms']:.3f} ms; drift {r['drift_ms']:+.3f} ms; underruns {r['underruns']}, "
          f"late frames {r['late_frames']}, resyncs {r['resyncs']}")
    print(f"pacing   {label:7s} whole pipeline on the loop thread: {r['loop_thread_cpu_pct']:.3f} % of a core")


async def paced_run_realtime(seconds: float, workdir: Path, priority: int) -> dict[str, Any]:
    """``paced_run`` with the loop thread set up as the daemon does for ``audio.realtime_priority``."""
    from daemon.runtime.loop_priority import apply_loop_priority

    realtime = apply_loop_priority(priority)
    try:
        result = await paced_run(seconds, workdir)
    finally:
        set_normal()
    result["loop_realtime"] = realtime
    return result


def run_loaded(kind: str, stt: SttLoad | None, threads: int, nice: int,
               run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``run`` while the load burns CPU; adds what the load did to the result."""
    if stt is not None:
        with stt.running(nice=nice) as active:
            time.sleep(0.5)
            result = run()
        result["load_kind"] = kind
        result["load_work"] = active.summary()
        return result
    with MlpLoad(threads, nice=nice) as mlp:
        time.sleep(0.5)
        result = run()
    result["load_kind"] = kind
    result["load_work"] = {"mlp_passes": mlp.passes}
    return result


def work_line(r: dict[str, Any]) -> str:
    w = r["load_work"]
    if "transcriptions" in w:
        rtf = f", decode RTF {w['decode_rtf']:.3f}" if w["decode_rtf"] is not None else ""
        errors = f", errors: {'; '.join(w['errors'])}" if w["errors"] else ""
        return f"{w['transcriptions']} transcriptions, {w['audio_s_transcribed']:.0f} s of speech{rtf}{errors}"
    return f"{w['mlp_passes']} MLP passes"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="real-time playback per pacing run (default 60)")
    ap.add_argument("--load", choices=("stt", "mlp"), default="stt",
                    help="what the load threads run: faster-whisper STT in a loop (default) or a numpy MLP")
    ap.add_argument("--load-threads", type=int, default=2, help="CPU-burning threads in the loaded run")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="where the packaged whisper-base is assembled (default: a temp dir)")
    ap.add_argument("--rt-priority", type=int, default=10, help="SCHED_FIFO priority of the rt-loop run (default 10)")
    ap.add_argument("--quick", action="store_true", help="short runs (5 s pacing, fewer repeats)")
    args = ap.parse_args(argv)
    seconds = 5.0 if args.quick else args.seconds
    repeat = 2 if args.quick else 5

    print(f"drivers/audio benchmark  (python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs)")
    resample = bench_resample(2.0 if args.quick else 10.0, repeat)
    codecs = bench_codecs(repeat)
    xrt = bench_resample_encode_throughput(10.0)

    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        offline: dict[str, float] = {}
        for quality in ("sinc_medium", "sinc_fastest"):
            ms = asyncio.run(pipeline_cpu_offline(min(seconds, 30.0), Path(tmp) / quality, quality))
            offline[quality] = ms
            print(f"pipeline whole chain, {quality} (playout 22.05k->8k + level + buffer + A-law + "
                  f"2 WAV tracks + capture 8k->16k), virtual clock: {ms:.2f} ms CPU per s of audio "
                  f"= {ms / 10:.3f} % of a core")
        offline_ms = offline["sinc_medium"]
        bare = asyncio.run(bare_timer_cpu(min(seconds, 10.0)))
        print(f"baseline bare 20 ms asyncio timer loop on this machine: {bare:.3f} % of a core")
        idle = asyncio.run(paced_run(seconds, Path(tmp) / "idle"))
        report_paced("idle", idle)

        load_kind = args.load
        stt: SttLoad | None = None
        stt_info: dict[str, Any] = {}
        if load_kind == "stt":
            try:
                stt = SttLoad(args.load_threads, args.models_dir or Path(tmp) / "models")
                stt_info["load_s"] = round(stt.load(), 2)
            except Exception as exc:  # noqa: BLE001 - never fail: fall back to the MLP
                stt_info["unavailable"] = f"{type(exc).__name__}: {exc}"
                if stt is not None:
                    with contextlib.suppress(Exception):
                        stt.close()
                print(f"load     faster-whisper unavailable ({stt_info['unavailable']}); using the numpy MLP")
                stt, load_kind = None, "mlp"
            else:
                stt_info["model"] = stt.describe()
                print(f"load     {stt.describe()}; {args.load_threads} models loaded and warmed up in "
                      f"{stt_info['load_s']:.1f} s")
        if stt is None:
            description = f"{args.load_threads} threads x numpy MLP forward, one BLAS thread each"
        else:
            description = stt.describe()

        try:
            loaded = run_loaded(load_kind, stt, args.load_threads, 0,
                                lambda: asyncio.run(paced_run(seconds, Path(tmp) / "loaded")))
            loaded["load"] = f"{description} ({work_line(loaded)})"
            report_paced("loaded", loaded)
            print(f"load     {work_line(loaded)}")
            if stt is not None and stt.first_text:
                print(f"load     whisper heard: {stt.first_text!r}")
                stt_info["first_text"] = stt.first_text
            loaded_nice = run_loaded(load_kind, stt, args.load_threads, 10,
                                     lambda: asyncio.run(paced_run(seconds, Path(tmp) / "loaded_nice")))
            loaded_nice["load"] = f"same, load threads at nice +10 ({work_line(loaded_nice)})"
            report_paced("nice10", loaded_nice)
            # the load threads start first, from this (normal) thread: they stay SCHED_OTHER
            loaded_rt = run_loaded(load_kind, stt, args.load_threads, 0, lambda: asyncio.run(
                paced_run_realtime(seconds, Path(tmp) / "loaded_rt", args.rt_priority)))
            granted = f"SCHED_FIFO {args.rt_priority}" if loaded_rt["loop_realtime"] else "SCHED_FIFO refused"
            loaded_rt["load"] = f"same load, loop thread {granted} ({work_line(loaded_rt)})"
            report_paced("rt-loop", loaded_rt)
            print(f"pacing   rt-loop loop thread {granted}")
        finally:
            if stt is not None:
                stt.close()

    summary = {
        "bench": "drivers/audio",
        "seconds_per_pacing_run": seconds,
        "resample": resample,
        "codec": codecs,
        "resample_alaw_x_realtime": round(xrt, 1),
        "pipeline_cpu_pct_of_core": round(offline_ms / 10, 3),
        "pipeline_cpu_pct_of_core_by_quality": {q: round(ms / 10, 3) for q, ms in offline.items()},
        "bare_20ms_timer_cpu_pct": round(bare, 3),
        "load_kind": load_kind,
        "load_threads": args.load_threads,
        "load_description": description,
        **({"stt": stt_info} if stt_info else {}),
        "pacing_idle": idle,
        "pacing_loaded": loaded,
        "pacing_loaded_nice10": loaded_nice,
        "pacing_loaded_rt_loop": loaded_rt,
        "targets": {"p99_jitter_ms": 2.0, "underruns": 0, "pipeline_cpu_pct": 1.0},
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
