"""Benchmark of the TTS engine: time to first audio, real-time factor, load/warm-up time, memory.

For Piper in the daemon's process, Piper in a worker process (the machinery
XTTS uses) and espeak-ng, it measures load and warm-up, then ``--runs``
syntheses of a two-sentence reply: time to the first chunk (what the caller
waits for), and RTF = synthesis time / audio duration (lower is faster), as
p50/p95/p99. It also records the event loop's worst lag while Piper runs in a
worker thread (10 ms ticker), the daemon's resident memory before and after
loading Piper in-process, and the worker process's resident memory. Piper runs
with ``--threads`` onnxruntime threads (the setting ``PiperSettings.threads``).

Prints a table, then ONE line of JSON with the same figures. Never fails on time.

    .venv/bin/python bench/bench_tts.py [--runs 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.json_line import print_json_line  # noqa: E402
from engines.tts.backend_factory import build_tts_backend  # noqa: E402
from engines.tts.interface import SynthesisRequest, TtsBackend  # noqa: E402
from engines.tts.settings import EspeakSettings, PiperSettings  # noqa: E402
from engines.tts.worker_client import WorkerTtsBackend  # noqa: E402

REPLY = {
    "en": "Thank you for calling, Doctor Smith is not available right now. I will ask him to call you back tomorrow morning.",
    "ru": "Спасибо за звонок, доктор Смит сейчас занят. Я попрошу его перезвонить вам завтра утром.",
}


def rss_mb(pid: str | int = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "mean": statistics.fmean(values) if values else float("nan")}


async def timed(step: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def one_run(backend: TtsBackend, request: SynthesisRequest) -> tuple[float, float, float]:
    """(time to first chunk, total time, audio seconds) of one synthesis."""
    started = time.perf_counter()
    first = None
    audio_s = 0.0
    async for chunk in backend.synthesize(request):
        if first is None and len(chunk.samples):
            first = time.perf_counter() - started
        audio_s += chunk.duration_s
    return first or float("nan"), time.perf_counter() - started, audio_s


async def measure(label: str, backend: TtsBackend, language: str, runs: int) -> dict[str, Any]:
    rss_before = rss_mb()
    load_s = await timed(backend.load)
    warmup_s = await timed(backend.warm_up)
    request = SynthesisRequest(REPLY[language], language)
    first, rtf, audio = [], [], 0.0
    for _ in range(runs):
        ttfa, total, audio = await one_run(backend, request)
        first.append(ttfa)
        rtf.append(total / audio)
    result: dict[str, Any] = {
        "backend": label, "language": language, "load_s": load_s, "warmup_s": warmup_s, "audio_s": audio,
        "ttfa_s": spread(first), "rtf": spread(rtf), "daemon_rss_mb_delta": rss_mb() - rss_before,
    }
    if isinstance(backend, WorkerTtsBackend) and backend.pid is not None:
        result["worker_rss_mb"] = rss_mb(backend.pid)
    return result


async def loop_lag_during(backend: TtsBackend, text: str) -> dict[str, float]:
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(ticker())
        async for _ in backend.synthesize(SynthesisRequest(text, "en")):
            pass
        done.set()
    return {"max_ms": max(lags) * 1000, "p99_ms": percentile(lags, 99) * 1000, "ticks": len(lags)}


async def run(runs: int, threads: int) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as models:
        models_dir = Path(models)
        baseline_rss = rss_mb()
        piper = build_tts_backend("piper", PiperSettings(threads=threads), models_dir)
        results.append(await measure("piper (in-process)", piper, "en", runs))
        lag = await loop_lag_during(piper, " ".join([REPLY["en"]] * 3))
        daemon_rss_with_piper = rss_mb()
        await piper.close()
        worker = build_tts_backend("piper-worker", PiperSettings(threads=threads), models_dir)
        try:
            results.append(await measure("piper (worker process)", worker, "en", runs))
        finally:
            await worker.close()
        espeak = build_tts_backend("espeak", EspeakSettings(), models_dir)
        try:
            for language in ("en", "ru"):
                results.append(await measure("espeak-ng", espeak, language, runs))
        finally:
            await espeak.close()
    return {
        "runs": runs, "piper_threads": threads, "results": results, "piper_loop_lag": lag,
        "daemon_rss_mb_baseline": baseline_rss, "daemon_rss_mb_with_piper": daemon_rss_with_piper,
    }


def print_table(summary: dict[str, Any]) -> None:
    print(f"TTS benchmark: {summary['runs']} runs per row, Piper onnxruntime threads = {summary['piper_threads']}")
    header = f"{'backend':24} {'lang':4} {'load s':>7} {'warm s':>7} {'audio s':>7} " \
             f"{'TTFA p50/p95/p99 ms':>22} {'RTF p50/p95/p99':>20} {'RSS MB':>8}"
    print(header)
    print("-" * len(header))
    for r in summary["results"]:
        ttfa = "/".join(f"{r['ttfa_s'][q] * 1000:.0f}" for q in ("p50", "p95", "p99"))
        rtf = "/".join(f"{r['rtf'][q]:.3f}" for q in ("p50", "p95", "p99"))
        rss = f"w{r['worker_rss_mb']:.0f}" if "worker_rss_mb" in r else f"+{r['daemon_rss_mb_delta']:.0f}"
        print(
            f"{r['backend']:24} {r['language']:4} {r['load_s']:7.2f} {r['warmup_s']:7.2f} {r['audio_s']:7.2f} "
            f"{ttfa:>22} {rtf:>20} {rss:>8}"
        )
    lag = summary["piper_loop_lag"]
    print("(RSS: '+' = growth of the daemon process, 'w' = the worker process's own RSS)")
    print(f"daemon RSS: {summary['daemon_rss_mb_baseline']:.0f} MB at start, "
          f"{summary['daemon_rss_mb_with_piper']:.0f} MB with Piper loaded in-process")
    print(f"event loop while Piper synthesised in a thread: max lag {lag['max_ms']:.1f} ms, "
          f"p99 {lag['p99_ms']:.1f} ms over {lag['ticks']} ticks of 10 ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="Piper onnxruntime threads (0 = all cores)")
    args = parser.parse_args(argv)
    summary = asyncio.run(run(args.runs, args.threads))
    print_table(summary)


    print_json_line(summary, digits=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
