"""Barge-in under line echo: false barge-ins from the box's own voice, and how fast a real caller still stops it.

What runs: the call's real ears (``daemon.call.listener.CallerListener`` on a
``SpeechDetector`` with the packaged Silero VAD, thresholds and barge-in onset
from the config defaults, and, with ``--gate on``, the echo gate the call
service wires in), fed the caller track as the line delivers it: 8 kHz int16,
A-law on the wire, decoded and resampled by the line's own ``LineCapture`` in
20 ms frames. Not a whole call per case (a call through the simulator takes
~10 s to set up and tear down; this bench runs 250+ cases): the line's tick is
simulated here, frame by frame, faster than real time.

Each 20 ms tick the box sends one frame of its reply (as ``FrameSender`` does:
the frames the gate is told of are the frames sent); the caller channel gets
that sent audio back as echo -- delayed (40/150/300 ms), attenuated (-10, -15,
-20, -25 dB), band-limited by a 300-3400 Hz echo path -- plus pink noise and,
in the "true" cases, a real caller utterance starting mid-reply. When the
listener reports ``CallerSpeechStarted`` during the reply the box stops
sending (one 20 ms faded frame, ``call.barge_in.fade_ms``, then silence), so
the echo stops too, as on a call.

Levels: the reply at -18 dBFS speech RMS (the line AGC's target), the caller
at ``--caller-dbfs`` (default -20 dBFS), pink noise ``--snr-db`` (default 20)
below the caller's speech level: -40 dBFS. Audio: the box's reply is spliced
from Allison Smith's English IVR prompts (asterisk-core-sounds-en: a
professional voice standing in for TTS), the caller says Russian prompts and
read speech (asterisk-core-sounds-ru, festvox-ru): real human speech, see
tests/support/real_speech.py.

Counted per echo level x delay: false barge-ins (a reply stopped with no
caller speech; also a stop before the caller's onset in a true case), true
barge-ins (the reply stopped after the caller began), missed ones (the caller
spoke 1+ s and the reply went on), and the stop latency: caller onset -> end
of the faded frame (the tick after the detection + fade), median/p95/p99.

    .venv/bin/python bench/barge_in_echo.py --gate off   # today's path
    .venv/bin/python bench/barge_in_echo.py --gate on    # with the echo gate
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.json_line import machine, print_json_line  # noqa: E402
from config.call_schema import CallConfig  # noqa: E402
from drivers.audio.framing import LINE_RATE  # noqa: E402
from engines.vad.echo_gate import EchoGate  # noqa: E402
from engines.vad.silero_backend import SileroBackend, SileroSettings  # noqa: E402
from tests.support import real_speech  # noqa: E402
from tests.support.line_echo import REPLY_DBFS, TICK_MS, Case, at_level, line_clip, run_case  # noqa: E402

LEVELS_DB = (float("-inf"), -10.0, -15.0, -20.0, -25.0)  # -inf: no echo, the control
DELAYS_MS = (40, 150, 300)


class TimedGate(EchoGate):
    """The call's echo gate, timing its own per-frame work."""

    def __init__(self, margin_db: float) -> None:
        super().__init__(margin_db=margin_db)
        self.ms: list[float] = []

    def sent(self, frame: np.ndarray) -> None:
        t0 = time.perf_counter()
        super().sent(frame)
        self.ms.append((time.perf_counter() - t0) * 1000)

    def clean(self, chunk: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = super().clean(chunk)
        self.ms[-1] += (time.perf_counter() - t0) * 1000
        return out


def build_cases(per_cell_false: int, per_cell_true: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    box_clips = [line_clip(c) for c in real_speech.utterances(real_speech.ASTERISK_EN, 40)]
    caller_clips = [line_clip(c) for c in real_speech.utterances(real_speech.ASTERISK_RU, 12)]
    caller_clips += [line_clip(c) for c in real_speech.utterances(real_speech.FESTVOX_RU, 12)]
    caller_clips = [c for c in caller_clips if len(c) >= LINE_RATE]  # a second or more: something to barge in with

    def reply() -> np.ndarray:
        parts: list[np.ndarray] = []
        while sum(len(p) for p in parts) < 4.5 * LINE_RATE:
            parts.append(box_clips[int(rng.integers(len(box_clips)))])
            parts.append(np.zeros(int(rng.uniform(0.15, 0.35) * LINE_RATE), dtype=np.int16))
        return at_level(np.concatenate(parts), REPLY_DBFS)

    cases: list[Case] = []
    n = 0
    for level in LEVELS_DB:
        for delay in DELAYS_MS if level > float("-inf") else DELAYS_MS[:1]:
            for _ in range(per_cell_false):
                cases.append(Case(level, delay, reply(), None, 0, seed + n))
                n += 1
            for i in range(per_cell_true):
                caller = caller_clips[(n + i) % len(caller_clips)]
                onset = int(rng.integers(50, 150))  # 1.0 .. 3.0 s into the reply
                cases.append(Case(level, delay, reply(), caller, onset, seed + n))
                n += 1
    return cases


def echo_name(level_db: float) -> str:
    return "no echo" if level_db == float("-inf") else f"{level_db:g}dB"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gate", choices=("off", "on"), default="on", help="the echo gate in the listener (off: today)")
    parser.add_argument("--false-cases", type=int, default=8, help="replies with no caller per level x delay")
    parser.add_argument("--true-cases", type=int, default=8, help="replies with a caller barging in per level x delay")
    parser.add_argument("--caller-dbfs", type=float, default=-20.0, help="the caller's speech level (active RMS)")
    parser.add_argument("--snr-db", type=float, default=20.0, help="the caller's speech over the pink noise")
    parser.add_argument("--margin-db", type=float, default=CallConfig().barge_in.echo_margin_db,
                        help="call.barge_in.echo_margin_db for the gate (default: the config's)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    missing = real_speech.missing_sources()
    if missing:
        sys.exit(f"real speech is missing: {missing}")
    backend = SileroBackend(SileroSettings())
    await backend.load()
    cases = build_cases(args.false_cases, args.true_cases, args.seed)
    cases = [c if c.caller is None else Case(c.level_db, c.delay_ms, c.reply, at_level(c.caller, args.caller_dbfs),
                                             c.onset_tick, c.seed) for c in cases]
    noise_dbfs = args.caller_dbfs - args.snr_db
    cells: dict[str, dict[str, Any]] = {}
    cpu: list[float] = []
    gate_ms: list[float] = []
    started = time.perf_counter()
    for case in cases:
        gate = TimedGate(args.margin_db) if args.gate == "on" else None
        out = await run_case(case, backend, gate, noise_dbfs)
        cpu.extend(out.cpu_ms)
        gate_ms.extend(gate.ms if gate is not None else [])
        cell = cells.setdefault(f"{echo_name(case.level_db)}/{case.delay_ms}ms", {
            "false_cases": 0, "false_barge_ins": 0, "true_cases": 0, "true_barge_ins": 0, "early_stops": 0,
            "missed": 0, "stop_ms": []})
        if case.caller is None:
            cell["false_cases"] += 1
            cell["false_barge_ins"] += out.stopped_tick is not None
            continue
        cell["true_cases"] += 1
        if out.stopped_tick is None:
            cell["missed"] += 1
        elif (out.stopped_tick + 1) * TICK_MS <= case.onset_ms:
            cell["early_stops"] += 1  # stopped by the echo before the caller spoke: a false barge-in too
        else:
            cell["true_barge_ins"] += 1
            cell["stop_ms"].append((out.stopped_tick + 1) * TICK_MS + CallConfig().barge_in.fade_ms - case.onset_ms)
    await backend.close()
    wall = time.perf_counter() - started
    print(f"gate {args.gate}; caller {args.caller_dbfs:g} dBFS, pink noise {noise_dbfs:g} dBFS (SNR {args.snr_db:g} dB),"
          f" reply {REPLY_DBFS:g} dBFS; {len(cases)} cases in {wall:.0f} s")
    print(f"{'echo':>12} {'false':>9} {'early':>6} {'true':>9} {'missed':>6} {'stop p50':>9} {'p95':>6} {'p99':>6}")
    total = {"false_cases": 0, "false_barge_ins": 0, "true_cases": 0, "true_barge_ins": 0, "early_stops": 0,
             "missed": 0, "stop_ms": []}
    per_level: dict[str, Any] = {}
    for name, c in cells.items():
        for key in total:
            total[key] += c[key]
        print(f"{name:>12} {c['false_barge_ins']:>4}/{c['false_cases']:<4} {c['early_stops']:>6} "
              f"{c['true_barge_ins']:>4}/{c['true_cases']:<4} {c['missed']:>6} {pct(c['stop_ms'], 50):>9.0f} "
              f"{pct(c['stop_ms'], 95):>6.0f} {pct(c['stop_ms'], 99):>6.0f}")
        level = name.split("/")[0]
        agg = per_level.setdefault(level, {"false": 0, "false_cases": 0, "true": 0, "true_cases": 0, "stop_ms": []})
        agg["false"] += c["false_barge_ins"] + c["early_stops"]
        agg["false_cases"] += c["false_cases"] + c["true_cases"]
        agg["true"] += c["true_barge_ins"]
        agg["true_cases"] += c["true_cases"]
        agg["stop_ms"] += c["stop_ms"]
    stops = total["stop_ms"]
    false_all = total["false_barge_ins"] + total["early_stops"]
    within = sum(1 for s in stops if s <= 200)
    print(f"{'all':>12} {total['false_barge_ins']:>4}/{total['false_cases']:<4} {total['early_stops']:>6} "
          f"{total['true_barge_ins']:>4}/{total['true_cases']:<4} {total['missed']:>6} {pct(stops, 50):>9.0f} "
          f"{pct(stops, 95):>6.0f} {pct(stops, 99):>6.0f}")
    print(f"false barge-in rate {false_all}/{len(cases)} replies; true barge-in rate "
          f"{total['true_barge_ins']}/{total['true_cases']}; stopped within 200 ms {within}/{total['true_cases']}")
    print(f"listener CPU per 20 ms frame (VAD{' + gate' if args.gate == 'on' else ''}): median {pct(cpu, 50):.3f} ms,"
          f" p95 {pct(cpu, 95):.3f}, p99 {pct(cpu, 99):.3f}")
    if gate_ms:
        print(f"echo gate alone per 20 ms frame: median {pct(gate_ms, 50):.3f} ms, p95 {pct(gate_ms, 95):.3f}, "
              f"p99 {pct(gate_ms, 99):.3f}, max {max(gate_ms):.3f}")
    print_json_line({
        "bench": "barge_in_echo", "gate": args.gate, "path": "CallerListener+Silero, simulated line ticks",
        "cases": len(cases), "caller_dbfs": args.caller_dbfs, "noise_dbfs": noise_dbfs, "snr_db": args.snr_db,
        "margin_db": args.margin_db,
        "false_barge_ins": false_all, "false_rate": false_all / len(cases),
        "true_barge_ins": total["true_barge_ins"], "true_cases": total["true_cases"],
        "true_rate": total["true_barge_ins"] / max(1, total["true_cases"]), "within_200ms": within,
        "stop_ms": {"p50": pct(stops, 50), "p95": pct(stops, 95), "p99": pct(stops, 99)},
        "per_level": {k: {"false": v["false"], "of": v["false_cases"], "true": v["true"], "true_of": v["true_cases"],
                          "stop_p50": pct(v["stop_ms"], 50), "stop_p95": pct(v["stop_ms"], 95),
                          "stop_p99": pct(v["stop_ms"], 99)} for k, v in per_level.items()},
        "cpu_ms_per_frame": {"p50": pct(cpu, 50), "p95": pct(cpu, 95), "p99": pct(cpu, 99)},
        "gate_ms_per_frame": {"p50": pct(gate_ms, 50), "p95": pct(gate_ms, 95), "p99": pct(gate_ms, 99)},
        "machine": machine(),
    }, 3)


if __name__ == "__main__":
    asyncio.run(main())
