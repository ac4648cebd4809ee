"""Benchmark of engines/stt and engines/vad on real speech: RTF, latency, per-frame cost, load, memory.

Speech is Piper's packaged English voice (deterministic), at 16 kHz and after
an 8 kHz telephone round trip back to 16 kHz. For faster-whisper (packaged
whisper-base, int8 on CPU) it prints the real-time factor (processing / audio)
and the final latency after the end of speech (last chunk handed over ->
SttFinal; whisper only starts decoding then), p50/p95 over ``--runs`` runs of
each clip, plus the event loop's worst lag while it decodes. Vosk (the
packaged Korean model on espeak-ng Korean) gets the same figures with the
audio fed in 20 ms chunks. For Silero and WebRTC VAD it prints microseconds
per frame at 8 and 16 kHz. For every model: load and warm-up seconds, and
resident memory (current VmRSS and peak ru_maxrss) after loading.

Prints readable figures, then ONE line of JSON with the same figures. Never
fails on time.

    .venv/bin/python bench/bench_stt_vad.py [--runs 5] [--models-dir DIR] [--cpu-threads 2] [--skip-vosk]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.stt.faster_whisper_backend import FasterWhisperBackend, FasterWhisperSettings  # noqa: E402
from engines.stt.interface import SttBackend, SttFinal  # noqa: E402
from engines.stt.packaged_whisper import ensure_whisper_base  # noqa: E402
from engines.stt.vosk_backend import VoskBackend, VoskSettings  # noqa: E402
from engines.vad.backend_factory import build_vad_backend  # noqa: E402
from tests.engines import speech_samples as samples  # noqa: E402

CHUNK = 320  # 20 ms at 16 kHz
TEXTS = (samples.APPOINTMENT, samples.NOT_AVAILABLE, samples.SHORT)


def rss_mb() -> dict[str, float]:
    current = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_mb": round(current, 1), "maxrss_mb": round(peak, 1)}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def chunks(pcm: np.ndarray, handed_over: list[float]) -> AsyncIterator[np.ndarray]:
    for at in range(0, len(pcm), CHUNK):
        yield pcm[at : at + CHUNK]
    handed_over.append(time.monotonic())


async def run_stt(backend: SttBackend, pcm: np.ndarray, language: str | None) -> tuple[SttFinal, float]:
    handed_over: list[float] = []
    final: SttFinal | None = None
    async for event in backend.transcribe(chunks(pcm, handed_over), language):
        if isinstance(event, SttFinal):
            final = event
    done = time.monotonic()
    assert final is not None and handed_over
    return final, done - handed_over[0]


async def stt_figures(backend: SttBackend, clips: list[np.ndarray], language: str | None, runs: int) -> dict[str, Any]:
    rtf: list[float] = []
    latency: list[float] = []
    texts: list[str] = []
    for _ in range(runs):
        for pcm in clips:
            final, after_end = await run_stt(backend, pcm, language)
            rtf.append(final.processing_s / final.audio_s)
            latency.append(after_end)
            texts.append(final.text)
    return {
        "rtf_p50": round(pct(rtf, 50), 4),
        "rtf_p95": round(pct(rtf, 95), 4),
        "final_latency_p50_s": round(pct(latency, 50), 3),
        "final_latency_p95_s": round(pct(latency, 95), 3),
        "samples": len(rtf),
        "example": texts[0] if texts else "",
    }


async def loop_lag_during(backend: SttBackend, pcm: np.ndarray) -> dict[str, float]:
    lags: list[float] = []

    async def ticker() -> None:
        expected = time.monotonic()
        while True:
            expected += 0.01
            await asyncio.sleep(max(0.0, expected - time.monotonic()))
            lags.append(time.monotonic() - expected)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    first = len(lags)
    await run_stt(backend, pcm, "en")
    tick.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tick
    during = lags[first:]
    return {"max_ms": round(max(during) * 1000, 2), "p99_ms": round(pct(during, 99) * 1000, 2), "ticks": len(during)}


async def timed_load(backend: SttBackend) -> dict[str, float]:
    started = time.monotonic()
    await backend.load()
    loaded = time.monotonic()
    await backend.warm_up()
    return {"load_s": round(loaded - started, 3), "warmup_s": round(time.monotonic() - loaded, 3), **rss_mb()}


async def bench_whisper(args: argparse.Namespace, models_dir: Path, summary: dict[str, Any]) -> None:
    started = time.monotonic()
    await asyncio.to_thread(ensure_whisper_base, models_dir)
    assemble_s = time.monotonic() - started
    backend = FasterWhisperBackend(FasterWhisperSettings(cpu_threads=args.cpu_threads), models_dir)
    load = await timed_load(backend)
    load["assemble_s"] = round(assemble_s, 3)
    print(f"whisper  packaged whisper-base assembled in {assemble_s:.2f} s; load {load['load_s']:.2f} s, "
          f"warm-up {load['warmup_s']:.2f} s on {backend.device}/{backend.compute_type}, {args.cpu_threads} threads; "
          f"RSS {load['rss_mb']:.0f} MB (peak {load['maxrss_mb']:.0f} MB)")
    figures: dict[str, Any] = {"load": load, "device": backend.device, "compute_type": backend.compute_type}
    for label, clips in (
        ("16k", [samples.speech(t) for t in TEXTS]),
        ("8k_to_16k", [samples.telephone_speech(t) for t in TEXTS]),
    ):
        result = await stt_figures(backend, clips, "en", args.runs)
        figures[label] = result
        print(f"whisper  {label:9s} RTF p50 {result['rtf_p50']:.3f} p95 {result['rtf_p95']:.3f}   final latency after end of "
              f"speech p50 {result['final_latency_p50_s']:.3f} s p95 {result['final_latency_p95_s']:.3f} s  (n={result['samples']})")
    lag = await loop_lag_during(backend, samples.speech(samples.NOT_AVAILABLE))
    figures["loop_lag_during_decode"] = lag
    print(f"whisper  event loop lag while decoding: max {lag['max_ms']:.1f} ms, p99 {lag['p99_ms']:.1f} ms ({lag['ticks']} ticks of 10 ms)")
    await backend.close()
    summary["whisper"] = figures


async def bench_vosk(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    backend = VoskBackend(VoskSettings())
    load = await timed_load(backend)
    print(f"vosk     packaged Korean model: load {load['load_s']:.2f} s, warm-up {load['warmup_s']:.2f} s; "
          f"RSS {load['rss_mb']:.0f} MB (peak {load['maxrss_mb']:.0f} MB)")
    clips = [samples.espeak_korean()]
    result = await stt_figures(backend, clips, "ko", max(1, args.runs // 2))
    print(f"vosk     16k       RTF p50 {result['rtf_p50']:.3f} p95 {result['rtf_p95']:.3f}   final latency after end of "
          f"speech p50 {result['final_latency_p50_s']:.3f} s p95 {result['final_latency_p95_s']:.3f} s  (n={result['samples']}, "
          f"audio fed as fast as it decodes)")
    await backend.close()
    summary["vosk"] = {"load": load, "16k": result}


async def bench_vad(summary: dict[str, Any]) -> None:
    figures: dict[str, Any] = {}
    for kind in ("silero", "webrtc"):
        backend = build_vad_backend(kind)
        started = time.monotonic()
        await backend.load()
        loaded = time.monotonic()
        await backend.warm_up()
        entry: dict[str, Any] = {"load_s": round(loaded - started, 4), "warmup_s": round(time.monotonic() - loaded, 4)}
        for rate in (8_000, 16_000):
            line = samples.padded(samples.speech(samples.NOT_AVAILABLE, rate), rate, 1.0, 1.0)
            session = backend.open(rate)
            frame = session.frame_samples
            frames = [line[at : at + frame] for at in range(0, len(line) - frame + 1, frame)]
            costs: list[float] = []
            for f in frames:
                t = time.perf_counter_ns()
                session.probability(f)
                costs.append((time.perf_counter_ns() - t) / 1000)
            us = float(np.mean(costs))
            entry[f"{rate // 1000}k"] = {
                "frame_ms": round(frame / rate * 1000, 1),
                "us_per_frame": round(us, 2),
                "us_per_frame_p95": round(pct(costs, 95), 2),
                "rtf": round(us / 1e6 / (frame / rate), 6),
            }
            print(f"vad      {kind:6s} {rate // 1000:2d} kHz  {us:7.2f} us per {frame / rate * 1000:.0f} ms frame "
                  f"(p95 {pct(costs, 95):.2f} us, RTF {us / 1e6 / (frame / rate):.5f})")
        entry.update(rss_mb())
        print(f"vad      {kind:6s} load {entry['load_s'] * 1000:.1f} ms, warm-up {entry['warmup_s'] * 1000:.1f} ms")
        await backend.close()
        figures[kind] = entry
    summary["vad"] = figures


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {"start": rss_mb()}
    started = time.monotonic()
    for text in TEXTS:  # synthesise before anything is timed
        samples.speech(text)
        samples.telephone_speech(text)
    print(f"speech   {len(TEXTS)} Piper clips made in {time.monotonic() - started:.2f} s "
          f"({sum(len(samples.speech(t)) for t in TEXTS) / 16_000:.1f} s of audio)")
    summary["after_speech_synthesis"] = rss_mb()
    if args.models_dir is not None:
        await bench_whisper(args, Path(args.models_dir), summary)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-stt-models-") as tmp:
            await bench_whisper(args, Path(tmp), summary)
    if not args.skip_vosk:
        await bench_vosk(args, summary)
    await bench_vad(summary)
    summary["end"] = rss_mb()
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each clip (default 5)")
    ap.add_argument("--models-dir", default=None, help="where to assemble packaged models (default: a temp dir)")
    ap.add_argument("--cpu-threads", type=int, default=2, help="faster-whisper cpu_threads (default 2)")
    ap.add_argument("--skip-vosk", action="store_true")
    args = ap.parse_args(argv)
    print(f"engines/stt + engines/vad benchmark  (python {sys.version.split()[0]}, numpy {np.__version__})")
    summary = asyncio.run(amain(args))
    print(json.dumps(summary, separators=(",", ":"), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
