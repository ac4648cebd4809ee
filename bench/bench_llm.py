"""LLM engine on the CPU: SmolLM2-135M via the llama.cpp server and in process.

For each mode: load and warm-up time, resident memory of the model's process
(the server child's RSS; for in-process, this process's RSS growth), and over
``--runs`` new user turns (a secretary prompt, ``--max-tokens`` tokens): time
to first token and decode tokens/s (text pieces after the first, each piece
one token for llama.cpp) as p50/p95/p99. In-process runs also measure the
event loop's lag with a 10 ms ticker. Prints a table and ends with one JSON
line. Never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.llm.backend_factory import build_llm_backend  # noqa: E402
from engines.llm.interface import ChatMessage, ChatRequest, LlmBackend  # noqa: E402
from engines.llm.llama_cpp_backend import LlamaCppServerBackend  # noqa: E402
from engines.llm.settings import LlamaCppSettings  # noqa: E402

SYSTEM = (
    "You are a polite phone secretary for Dr. Smith's office. "
    "Answer in one or two short sentences in the caller's language."
)
QUESTIONS = [
    "Hello, can I book an appointment for tomorrow afternoon?",
    "What are your opening hours on Saturday?",
    "Is Dr. Smith available next Monday morning?",
    "I need to cancel my appointment on Friday.",
    "Can you tell the doctor I will be ten minutes late?",
    "Do you accept new patients this month?",
    "Where is the office located?",
    "How much does a first consultation cost?",
    "Can I bring my child to the appointment?",
    "Please ask Dr. Smith to call me back today.",
]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731
    return {"p50": round(statistics.median(ordered), 2), "p95": round(pick(0.95), 2), "p99": round(pick(0.99), 2)}


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_turn(backend: LlmBackend, question: str, max_tokens: int) -> tuple[float, float, int, str]:
    request = ChatRequest(
        messages=(ChatMessage("system", SYSTEM), ChatMessage("user", question)), max_tokens=max_tokens, temperature=0.3
    )
    started = time.perf_counter()
    first = last = 0.0
    pieces = 0
    text: list[str] = []
    async with contextlib.aclosing(backend.stream_chat(request)) as deltas:
        async for delta in deltas:
            if delta.text:
                last = time.perf_counter()
                if pieces == 0:
                    first = last
                pieces += 1
                text.append(delta.text)
    ttft_ms = (first - started) * 1000
    decode = (pieces - 1) / (last - first) if pieces > 1 and last > first else float("nan")
    return ttft_ms, decode, pieces, "".join(text)


async def bench_mode(mode: str, settings: LlamaCppSettings, runs: int, max_tokens: int) -> dict[str, Any]:
    rss_before = rss_mb()
    backend = build_llm_backend("llama_cpp", replace(settings, mode=mode), Path("/tmp"))  # type: ignore[arg-type]
    started = time.perf_counter()
    await backend.load()
    loaded = time.perf_counter()
    await backend.warm_up()
    warmed = time.perf_counter()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.010)
            now = time.perf_counter()
            lags.append(max(0.0, (now - last - 0.010) * 1000))
            last = now

    tick = asyncio.create_task(ticker())
    ttfts: list[float] = []
    decodes: list[float] = []
    tokens: list[int] = []
    sample = ""
    try:
        for n in range(runs):
            ttft, decode, pieces, text = await one_turn(backend, QUESTIONS[n % len(QUESTIONS)], max_tokens)
            ttfts.append(ttft)
            if decode == decode:  # not NaN
                decodes.append(decode)
            tokens.append(pieces)
            sample = sample or text
        if isinstance(backend, LlamaCppServerBackend) and backend.process and backend.process.pid:
            memory = rss_mb(backend.process.pid)
            memory_what = "server process RSS"
        else:
            memory = rss_mb() - rss_before
            memory_what = "RSS growth of this process"
    finally:
        stop.set()
        await tick
        await backend.close()
    return {
        "mode": mode,
        "load_s": round(loaded - started, 3),
        "warmup_s": round(warmed - loaded, 3),
        "ttft_ms": percentiles(ttfts),
        "decode_tok_s": percentiles(decodes) if decodes else None,
        "tokens_per_reply": percentiles([float(t) for t in tokens]),
        "rss_mb": round(memory, 1),
        "rss_what": memory_what,
        "loop_lag_ms": percentiles(lags) | {"max": round(max(lags), 2)} if lags else None,
        "sample_reply": sample[:160],
    }


def table(results: list[dict[str, Any]]) -> str:
    rows = [("metric", *[r["mode"] for r in results])]
    rows.append(("load s", *[f"{r['load_s']:.3f}" for r in results]))
    rows.append(("warm-up s", *[f"{r['warmup_s']:.3f}" for r in results]))
    for key, label in (("ttft_ms", "TTFT ms"), ("decode_tok_s", "decode tok/s"), ("loop_lag_ms", "loop lag ms")):
        for q in ("p50", "p95", "p99"):
            rows.append((f"{label} {q}", *[f"{r[key][q]:.2f}" if r[key] else "-" for r in results]))
    rows.append(("loop lag ms max", *[f"{r['loop_lag_ms']['max']:.2f}" if r["loop_lag_ms"] else "-" for r in results]))
    rows.append(("resident MB", *[f"{r['rss_mb']:.1f}" for r in results]))
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)) for row in rows)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = LlamaCppSettings(model=args.model, n_threads=args.threads, n_ctx=args.n_ctx)
    results = [await bench_mode(mode, settings, args.runs, args.max_tokens) for mode in args.modes]
    return {"bench": "llm", "model": args.model, "threads": args.threads, "runs": args.runs,
            "max_tokens": args.max_tokens, "results": results}


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="packaged:smollm2-135m")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--modes", nargs="+", default=["server", "in_process"], choices=["server", "in_process"])
    args = parser.parse_args()
    summary = asyncio.run(main(args))
    print(table(summary["results"]))
    for result in summary["results"]:
        print(f"{result['mode']}: {result['rss_what']}; sample reply: {result['sample_reply']!r}")
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
