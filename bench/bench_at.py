"""AT round-trip and PCM frame timing on a pty pair (the simulator runs as its own process).

Prints a table and ends with one JSON line.  It measures; it never fails on time.

    .venv/bin/python bench/bench_at.py [--iterations 300] [--seconds 3]
    .venv/bin/python bench/bench_at.py --at /dev/ttyUSB2   # AT round trip on a real modem (no call)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from drivers.sim7600.at_channel import AtChannel  # noqa: E402
from drivers.sim7600.modem import DriverTimings, Sim7600Modem, Sim7600Settings  # noqa: E402
from drivers.sim7600.pcm_port import FRAME_BYTES  # noqa: E402
from drivers.sim7600.simulator.control import send_command  # noqa: E402


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    if len(ordered) >= 2:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p95, p99 = cuts[94], cuts[98]
    else:
        p95 = p99 = ordered[0]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "p99": round(p99, 3),
        "max": round(ordered[-1], 3),
    }


async def at_round_trips(path: str, iterations: int) -> dict[str, Any]:
    channel = await AtChannel.open(path, exclusive=False, default_timeout_s=2.0)
    try:
        for _ in range(50):  # wait for the module (echo may still be on)
            with contextlib.suppress(Exception):
                if (await channel.command("AT", timeout=0.5)).ok:
                    break
        await channel.command("ATE0")
        plain: list[float] = []
        query: list[float] = []
        for _ in range(iterations):
            started = time.perf_counter()
            await channel.command("AT")
            plain.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await channel.command("AT+CSQ")
            query.append((time.perf_counter() - started) * 1000)
        return {"at_ms": summary(plain), "at_csq_ms": summary(query)}
    finally:
        await channel.close()


async def audio_timing(at: str, audio: str, control: Path, seconds: float) -> dict[str, Any]:
    timings = DriverTimings(state_poll_interval_s=60, reconcile_call_s=5, caller_id_grace_s=0.05)
    modem = Sim7600Modem(
        Sim7600Settings(at_port=at, audio_port=audio, answer_after_rings=1, check_modem_manager=False, timings=timings)
    )
    events = modem.subscribe()
    async with modem:
        await modem.wait_connected(10)
        await send_command(control, "call +79161234567")
        while (event := await events.get(10)) is not None and event.type != "answered":
            pass
        first = await modem.read_audio_frame(timeout=5)
        if first is None:
            return {"error": "no downlink audio"}
        intervals: list[float] = []
        write_us: list[float] = []
        last = time.perf_counter()
        frames = int(seconds / 0.02)
        loop = asyncio.get_running_loop()

        async def uplink() -> None:
            start = loop.time()
            frame = bytes(FRAME_BYTES)
            for k in range(frames):
                due = start + k * 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))
                t0 = time.perf_counter()
                modem.write_audio_frame(frame)
                write_us.append((time.perf_counter() - t0) * 1e6)

        writer = asyncio.create_task(uplink())
        try:
            for _ in range(frames):
                frame = await modem.read_audio_frame(timeout=1)
                if frame is None:
                    break
                now = time.perf_counter()
                intervals.append((now - last) * 1000)
                last = now
        finally:
            await writer
        stats = modem.pcm_stats()
        status = json.loads((await send_command(control, "status"))[3:])
        await modem.hangup()
    jitter = [abs(v - 20.0) for v in intervals]
    return {
        "downlink_frame_interval_ms": summary(intervals),
        "downlink_jitter_ms": summary(jitter),
        "uplink_write_call_us": summary(write_us),
        "downlink_bytes_per_s": round(stats.rx_bytes_per_s, 1) if stats else None,
        "uplink_bytes_per_s": round(stats.tx_bytes_per_s, 1) if stats else None,
        "uplink_bytes_received_by_modem": status.get("uplink_bytes"),
        "uplink_dropped_frames": stats.tx_dropped_frames if stats else None,
    }


async def with_simulator(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-sim7600-") as tmp:
        at, audio, control = Path(tmp) / "at", Path(tmp) / "audio", Path(tmp) / "ctl.sock"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "drivers.sim7600.simulator",
            "run",
            "--at",
            str(at),
            "--audio",
            str(audio),
            "--control",
            str(control),
            "--ring-period",
            "0.2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=REPO,
        )
        try:
            assert process.stdout is not None
            await asyncio.wait_for(process.stdout.readline(), 10)
            result = {"target": "simulator (separate process, pty)"}
            result.update(await at_round_trips(str(at), args.iterations))
            result.update(await audio_timing(str(at), str(audio), control, args.seconds))
            return result
        finally:
            process.terminate()
            await process.wait()


def print_table(result: dict[str, Any]) -> None:
    print(f"SIM7600 AT/PCM bench on {result.get('target')}")
    for key, value in result.items():
        if isinstance(value, dict) and "median" in value:
            print(
                f"  {key:32s} median {value['median']:9.3f}  p95 {value['p95']:9.3f}  p99 {value['p99']:9.3f}"
                f"  max {value['max']:9.3f}  (n={value['n']})"
            )
        elif key != "target":
            print(f"  {key:32s} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300, help="AT round trips per command (default 300)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of call audio to time (default 3)")
    parser.add_argument("--at", help="measure AT round trips on this real port instead of the simulator")
    args = parser.parse_args()
    if args.at:
        result: dict[str, Any] = {"target": args.at}
        result.update(asyncio.run(at_round_trips(args.at, args.iterations)))
    else:
        result = asyncio.run(with_simulator(args))
    print_table(result)
    print(json.dumps({"bench": "sim7600_at", **result}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
