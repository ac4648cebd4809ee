"""All engine benchmarks in one run: STT + VAD, LLM, TTS with the CPU defaults.

Runs bench_stt_vad.py, bench_llm.py and bench_tts.py one after another (each
in its own process, so resident memory is per engine), shows their tables,
and ends with one JSON line holding every figure, keyed by engine. Never
fails on time; a bench that crashes is reported with its exit code.

    .venv/bin/python bench/engines.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHES = {"stt_vad": "bench_stt_vad.py", "llm": "bench_llm.py", "tts": "bench_tts.py"}


def run_one(script: str, runs: int | None) -> tuple[dict[str, Any] | None, int, float]:
    command = [sys.executable, str(HERE / script)]
    if runs is not None:
        command += ["--runs", str(runs)]
    started = time.monotonic()
    process = subprocess.run(command, cwd=HERE.parent, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    lines = process.stdout.rstrip().splitlines()
    print("\n".join(lines[:-1]))
    if process.returncode != 0:
        print(process.stderr[-2000:], file=sys.stderr)
    figures: dict[str, Any] | None = None
    if lines:
        try:
            figures = json.loads(lines[-1])
        except json.JSONDecodeError:
            print(lines[-1])
    return figures, process.returncode, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (each bench's default if unset)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=sorted(BENCHES))
    args = parser.parse_args()
    summary: dict[str, Any] = {}
    for name in args.only:
        print(f"\n=== {name} ({BENCHES[name]}) ===", flush=True)
        figures, code, elapsed = run_one(BENCHES[name], args.runs)
        summary[name] = figures if figures is not None else {"error": f"exit code {code}"}
        print(f"--- {name}: {elapsed:.1f} s", flush=True)
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
