"""Turn ends with the turn-end model against today's fixed silence window, on utterances with mid-sentence pauses.

The utterances (``tests/engines/turn_end_utterances.py``): Piper English and
RHVoice Russian sentences, the bundled caller lines (8 kHz) and real human
speech from Debian's packages (``tests/support/real_speech.py``, when
installed), each spoken whole and, for about half, with a pause of 400-900 ms
made mid-sentence where the speaker paused ("my number is eight nine one
six, | one two three", "I'm calling about, um, | the invoice").

Each utterance is fed paced like a phone line (20 ms every 20 ms) to two
listeners at once (``daemon/call/listener.py``, each with its own real
Silero VAD set as a call sets it): ``model`` asks the turn-end model (Smart
Turn v3) with the config's ``call.turn_end``; ``fixed`` is today's fixed
``call.endpoint_silence_ms``. With ``--stt`` the ``model`` listener also
runs the config's STT with its early decode, as in a call, so the model's
judgment competes with whisper for the cores.

Figures, per listener:

    cut-off rate    utterances where a turn ended before the caller's last word
                    (inside the pause, mostly): the box would answer into the
                    caller's sentence. Over the paused utterances (the target:
                    < 5%) and over the complete ones.
    endpoint delay  end of the last word -> the turn end after it (ms),
                    median/p95/p99, on the complete utterances (target: median
                    < 300 ms) and on all.
    ended by        turn_end (the model: complete) / silence (the fixed window)
                    / long_silence (the model heard it unfinished).

Then, unpaced, the model's probability at each pause and each end (with
``pause_ms`` of quiet after the words) for a threshold sweep: the cut-off rate
and the share of complete utterances it would end at the pause, per threshold.

Prints tables, then ONE line of JSON. Never fails on time; every utterance counts.

    .venv/bin/python bench/turn_end.py [--stt] [--real 4] [--threshold T] [--pause-ms MS] [--max-silence-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.json_line import machine, print_json_line  # noqa: E402
from config.schema import SecretaryConfig  # noqa: E402
from daemon.call.listener import CallerListener, CallerStopped, ListenerEvent, TurnEndPolicy  # noqa: E402
from daemon.engine_host.engine_wiring import detector_settings, models_dir_of, stt_slots  # noqa: E402
from engines.engine_status import EngineState  # noqa: E402
from engines.fallback_chain import FallbackChain  # noqa: E402
from engines.stt.stt_engine import SttEngine  # noqa: E402
from engines.turn_end.smart_turn_backend import SmartTurnBackend, SmartTurnSettings  # noqa: E402
from engines.vad.backend_factory import build_vad_backend  # noqa: E402
from engines.vad.interface import VadBackend  # noqa: E402
from engines.vad.speech_detector import DetectorSettings, SpeechDetector  # noqa: E402
from tests.calls.call_harness import box_config  # noqa: E402
from tests.engines import turn_end_utterances as utterances  # noqa: E402

CHUNK = 320  # 20 ms at 16 kHz, as the line hands audio to the ears
SWEEP = (0.5, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98)
CUT_OFF_TARGET = 0.05
ENDPOINT_TARGET_MS = 300.0
MODES = ("model", "fixed")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the house style of the benches); NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def spread(values: list[float]) -> dict[str, float | int]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "n": len(values)}


@dataclass
class Heard:
    """What one listener made of one utterance."""

    stops: list[CallerStopped] = field(default_factory=list)
    started: float = 0.0  # monotonic: the first chunk was due
    judgments_ms: list[float] = field(default_factory=list)

    def ends_s(self) -> list[float]:
        return [s.endpoint_at - self.started for s in self.stops]


@dataclass
class Outcome:
    sample: utterances.TurnSample
    heard: dict[str, Heard]

    def cut_off(self, mode: str) -> bool:
        return any(at < self.sample.speech_end_s for at in self.heard[mode].ends_s())

    def delay_ms(self, mode: str) -> float | None:
        """End of the last word -> the turn end after it; None: no turn ended after it."""
        after = [at for at in self.heard[mode].ends_s() if at >= self.sample.speech_end_s]
        return (after[0] - self.sample.speech_end_s) * 1000 if after else None

    def ended_by(self, mode: str) -> str:
        heard = self.heard[mode]
        ends = heard.ends_s()
        after = [s for s, at in zip(heard.stops, ends, strict=True) if at >= self.sample.speech_end_s]
        return after[0].ended_by if after else "none"


async def run_one(sample: utterances.TurnSample, vad: VadBackend, config: SecretaryConfig,
                  policy: TurnEndPolicy, stt: SttEngine | None) -> Outcome:
    """Feed ``sample`` paced to the two listeners at once."""
    settings = detector_settings(config.engines.vad)
    call = config.call
    heard = {mode: Heard() for mode in MODES}
    queues: dict[str, asyncio.Queue[np.ndarray | None]] = {mode: asyncio.Queue() for mode in MODES}
    listeners: dict[str, CallerListener] = {}
    for mode in MODES:
        detector = SpeechDetector(vad.open(utterances.RATE), _call_detector(settings, config))
        sink = heard[mode].stops

        def emit(event: ListenerEvent, sink: list[CallerStopped] = sink) -> None:
            if isinstance(event, CallerStopped):
                sink.append(event)

        with_model = mode == "model"
        listeners[mode] = CallerListener(
            detector, stt if with_model else None, sample.language, emit, min_utterance_ms=call.min_utterance_ms,
            early_stt_ms=(call.early_stt_ms or None) if with_model else None, turn_end=policy if with_model else None,
        )

    async def fed(mode: str) -> AsyncIterator[np.ndarray]:
        queue = queues[mode]
        while (chunk := await queue.get()) is not None:
            yield chunk

    async def pace() -> None:
        started = time.monotonic()
        for mode in MODES:
            heard[mode].started = started
        for index, at in enumerate(range(0, len(sample.audio), CHUNK)):
            await asyncio.sleep(max(0.0, started + index * CHUNK / utterances.RATE - time.monotonic()))
            for queue in queues.values():
                queue.put_nowait(sample.audio[at:at + CHUNK])
        for queue in queues.values():
            queue.put_nowait(None)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(pace())
        for mode in MODES:
            tasks.create_task(listeners[mode].run(fed(mode)))
    heard["model"].judgments_ms = list(listeners["model"].turn_end_ms)
    return Outcome(sample, heard)


def _call_detector(settings: DetectorSettings, config: SecretaryConfig) -> DetectorSettings:
    """The detector settings a call uses (``CallService._detector``): barge-in onset, the endpoint window."""
    return replace(settings, min_speech_ms=config.call.barge_in.min_speech_ms,
                   min_silence_ms=config.call.endpoint_silence_ms)


async def sweep_probabilities(samples: list[utterances.TurnSample], model: SmartTurnBackend,
                              pause_s: float) -> list[dict[str, Any]]:
    """Unpaced: the model's probability at each made pause and at each end, ``pause_s`` of quiet after the words."""
    rows: list[dict[str, Any]] = []
    start = int((utterances.LEAD_S - 0.1) * utterances.RATE)
    for sample in samples:
        pauses = []
        for pause_start, _ in sample.pauses:
            pauses.append(await model.completion(sample.audio[start:int((pause_start + pause_s) * utterances.RATE)]))
        end = await model.completion(sample.audio[start:int((sample.speech_end_s + pause_s) * utterances.RATE)])
        rows.append({"name": sample.name, "paused": sample.paused, "pauses": pauses, "end": end})
    return rows


def sweep(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    paused = [r for r in rows if r["paused"]]
    complete = [r for r in rows if not r["paused"]]
    table = []
    for threshold in SWEEP:
        cut = sum(any(p >= threshold for p in r["pauses"]) for r in paused)
        early = sum(r["end"] >= threshold for r in complete)
        table.append({"threshold": threshold, "cut_off_rate": cut / len(paused) if paused else float("nan"),
                      "complete_ended_at_pause": early / len(complete) if complete else float("nan")})
    return table


def summarize(outcomes: list[Outcome], rows: list[dict[str, Any]], config: SecretaryConfig,
              args: argparse.Namespace, load_at_start: float, wall_s: float) -> dict[str, Any]:
    paused = [o for o in outcomes if o.sample.paused]
    complete = [o for o in outcomes if not o.sample.paused]
    modes: dict[str, Any] = {}
    for mode in MODES:
        delays_complete = [d for o in complete if (d := o.delay_ms(mode)) is not None]
        delays_all = [d for o in outcomes if (d := o.delay_ms(mode)) is not None]
        ended: dict[str, int] = {}
        for o in outcomes:
            ended[o.ended_by(mode)] = ended.get(o.ended_by(mode), 0) + 1
        modes[mode] = {
            "cut_off_rate_paused": sum(o.cut_off(mode) for o in paused) / len(paused) if paused else float("nan"),
            "cut_offs_paused": sum(o.cut_off(mode) for o in paused),
            "cut_off_rate_complete": sum(o.cut_off(mode) for o in complete) / len(complete) if complete else float("nan"),
            "endpoint_delay_complete_ms": spread(delays_complete),
            "endpoint_delay_all_ms": spread(delays_all),
            "ended_by": ended,
        }
    judgments = [ms for o in outcomes for ms in o.heard["model"].judgments_ms]
    turn_end = config.call.turn_end
    by_source: dict[str, dict[str, int]] = {}
    for o in outcomes:
        source = o.sample.source.split(":")[0] + "-" + o.sample.language
        row = by_source.setdefault(source, {"utterances": 0, "paused": 0, "model_cut_offs": 0, "fixed_cut_offs": 0})
        row["utterances"] += 1
        row["paused"] += o.sample.paused
        row["model_cut_offs"] += o.cut_off("model")
        row["fixed_cut_offs"] += o.cut_off("fixed")
    model = modes["model"]
    return {
        "utterances": len(outcomes), "paused": len(paused), "complete": len(complete),
        "settings": {"endpoint_silence_ms": config.call.endpoint_silence_ms, "pause_ms": turn_end.pause_ms,
                     "threshold": turn_end.threshold, "max_silence_ms": turn_end.max_silence_ms,
                     "early_stt_ms": config.call.early_stt_ms, "stt": args.stt,
                     "pauses_made_ms": [round(p * 1000) for p in utterances.PAUSES_S]},
        "modes": modes,
        "targets": {
            "cut_off_rate_below": CUT_OFF_TARGET, "median_endpoint_below_ms": ENDPOINT_TARGET_MS,
            "cut_off_met": model["cut_off_rate_paused"] < CUT_OFF_TARGET,
            "endpoint_met": model["endpoint_delay_complete_ms"]["p50"] < ENDPOINT_TARGET_MS,
        },
        "judgment_ms": spread(judgments),
        "by_source": by_source,
        "sweep_at_pause": sweep(rows),
        "per_utterance": [per_utterance(o) for o in outcomes],
        "machine": {**machine(), "loadavg_1m_at_start": load_at_start},
        "wall_s": wall_s,
    }


def per_utterance(o: Outcome) -> dict[str, Any]:
    return {
        "name": o.sample.name, "text": o.sample.text, "paused": o.sample.paused,
        **{f"{mode}_ends_s": [round(at, 3) for at in o.heard[mode].ends_s()] for mode in MODES},
        "speech_end_s": round(o.sample.speech_end_s, 3),
        **{f"{mode}_delay_ms": o.delay_ms(mode) for mode in MODES},
        **{f"{mode}_cut_off": o.cut_off(mode) for mode in MODES},
        "model_ended_by": o.ended_by("model"),
    }


def fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.0f}"


def print_report(summary: dict[str, Any]) -> None:
    s, m = summary["settings"], summary["machine"]
    print(f"\nturn ends: {summary['utterances']} utterances ({summary['paused']} with a pause made mid-sentence of "
          f"{', '.join(map(str, s['pauses_made_ms']))} ms, {summary['complete']} complete)")
    print(f"settings: endpoint_silence_ms {s['endpoint_silence_ms']}, turn_end pause_ms {s['pause_ms']}, threshold "
          f"{s['threshold']}, max_silence_ms {s['max_silence_ms']}; STT in the model listener: {s['stt']}")
    print(f"machine: {m['cores']} cores, {m['cpu']}; load avg 1 min {m['loadavg_1m_at_start']:.2f} at start, "
          f"{m['loadavg_1m']:.2f} at end (other work shares the cores: times are inflated)")
    print(f"\n{'':8} {'cut-off':>8} {'cut-off':>9}  {'endpoint delay, complete (ms)':>30}  {'all (ms)':>15}  ended by")
    print(f"{'':8} {'paused':>8} {'complete':>9}  {'p50':>8} {'p95':>6} {'p99':>6} {'n':>4}  {'p50':>7} {'p95':>6}")
    for mode, f in summary["modes"].items():
        c, a = f["endpoint_delay_complete_ms"], f["endpoint_delay_all_ms"]
        ended = ", ".join(f"{k} {v}" for k, v in sorted(f["ended_by"].items()))
        print(f"{mode:8} {f['cut_off_rate_paused'] * 100:7.1f}% {f['cut_off_rate_complete'] * 100:8.1f}%  "
              f"{fmt(c['p50']):>8} {fmt(c['p95']):>6} {fmt(c['p99']):>6} {c['n']:>4}  {fmt(a['p50']):>7} "
              f"{fmt(a['p95']):>6}  {ended}")
    t = summary["targets"]
    print(f"targets (model): cut-off < {t['cut_off_rate_below'] * 100:.0f}%: {'met' if t['cut_off_met'] else 'NOT met'}; "
          f"median endpoint < {t['median_endpoint_below_ms']:.0f} ms: {'met' if t['endpoint_met'] else 'NOT met'}")
    j = summary["judgment_ms"]
    print(f"model judgment (wall, in the call's conditions): p50 {fmt(j['p50'])} / p95 {fmt(j['p95'])} / "
          f"p99 {fmt(j['p99'])} ms over {j['n']}")
    print("\nby source: " + "; ".join(f"{k}: {v['utterances']} ({v['paused']} paused), cut off model "
                                      f"{v['model_cut_offs']} / fixed {v['fixed_cut_offs']}"
                                      for k, v in summary["by_source"].items()))
    print(f"\nthreshold sweep (unpaced, the model's p with {s['pause_ms']} ms of quiet after the words):")
    for row in summary["sweep_at_pause"]:
        print(f"  threshold {row['threshold']:.2f}: cut-off {row['cut_off_rate'] * 100:5.1f}% of paused, "
              f"{row['complete_ended_at_pause'] * 100:5.1f}% of complete ended at the pause")
    print("\nper utterance (ends: s of audio; * = cut off):")
    for u in summary["per_utterance"]:
        mark = {mode: "*" if u[f"{mode}_cut_off"] else " " for mode in MODES}
        print(f"  {u['name'][:34]:34} model{mark['model']} {fmt(u['model_delay_ms']):>5} ms {u['model_ended_by']:12} "
              f"fixed{mark['fixed']} {fmt(u['fixed_delay_ms']):>5} ms  {u['text'][:60]}")


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = os.getloadavg()[0]
    overrides: dict[str, Any] = {"engines__models_dir": args.models_dir}
    if args.threshold is not None:
        overrides["call__turn_end__threshold"] = args.threshold
    if args.pause_ms is not None:
        overrides["call__turn_end__pause_ms"] = args.pause_ms
    if args.max_silence_ms is not None:
        overrides["call__turn_end__max_silence_ms"] = args.max_silence_ms
    config = box_config(Path(args.models_dir) / "bench-data", **overrides)
    samples = utterances.english_samples() + await utterances.russian_samples() + utterances.demo_samples()
    real, missing = utterances.real_samples(args.real) if args.real else ([], "not asked for")
    if missing:
        print(f"real speech: {missing}", file=sys.stderr)
    samples += real
    print(f"{len(samples)} utterances made ({len(real)} of real speech)", flush=True)
    vad = build_vad_backend("silero")
    await vad.load()
    model = SmartTurnBackend(SmartTurnSettings(model=config.engines.vad.turn_end_model or ""))
    await model.load()
    await model.warm_up()
    turn_end = config.call.turn_end
    policy = TurnEndPolicy(model, turn_end.pause_ms / 1000, turn_end.threshold, turn_end.max_silence_ms)
    stt: SttEngine | None = None
    if args.stt:
        section = config.engines.stt
        stt = SttEngine(FallbackChain("stt", stt_slots(section, models_dir_of(config.engines, config.data_dir))))
        if (await stt.start()).state is EngineState.FAILED:
            raise RuntimeError(f"the STT did not load: {stt.status.detail}")
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        for index, sample in enumerate(samples, 1):
            outcome = await run_one(sample, vad, config, policy, stt)
            outcomes.append(outcome)
            print(f"  {index:>2}/{len(samples)} {sample.name:34} model {fmt(outcome.delay_ms('model')):>5} ms"
                  f"{' CUT OFF' if outcome.cut_off('model') else ''}, fixed {fmt(outcome.delay_ms('fixed')):>5} ms"
                  f"{' CUT OFF' if outcome.cut_off('fixed') else ''}", flush=True)
        wall_s = time.monotonic() - started
        rows = await sweep_probabilities(samples, model, turn_end.pause_ms / 1000)
    finally:
        if stt is not None:
            await stt.close()
        await model.close()
        await vad.close()
    return summarize(outcomes, rows, config, args, load_at_start, wall_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stt", action="store_true",
                        help="run the config's STT (early decode) beside the model, as in a call: each utterance then "
                             "also waits for its decodes (slow on a loaded machine)")
    parser.add_argument("--real", type=int, default=4,
                        help="real-speech clips per installed source, each whole and paused (default 4; 0: none)")
    parser.add_argument("--threshold", type=float, default=None, help="override call.turn_end.threshold")
    parser.add_argument("--pause-ms", type=int, default=None, help="override call.turn_end.pause_ms")
    parser.add_argument("--max-silence-ms", type=int, default=None, help="override call.turn_end.max_silence_ms")
    parser.add_argument("--models-dir", default="/tmp/secretary-bench-models",
                        help="persistent models dir (packaged models are assembled there once)")
    args = parser.parse_args(argv)
    summary = asyncio.run(amain(args))
    print_report(summary)
    print_json_line(summary, digits=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
