"""CLI: ``python -m drivers.sim7600.simulator run|ctl ...``.

run  --at /tmp/sim/at --audio /tmp/sim/audio [--control /tmp/sim/ctl.sock]
     [--record uplink.wav] [--ring-period 3] [--pin 1234] [--script "call +7916...; wait-active; ..."]
     [--exit-after-script]
ctl  --control /tmp/sim/ctl.sock call +79161234567
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from drivers.sim7600.simulator.control import ControlServer, run_script, send_command
from drivers.sim7600.simulator.sim_config import SimulatorConfig
from drivers.sim7600.simulator.sim_modem import SimulatedModem


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m drivers.sim7600.simulator", description="Simulated SIM7600G-H on ptys"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="create the ptys and run the simulated modem")
    run.add_argument("--at", required=True, type=Path, help="symlink path for the AT port")
    run.add_argument("--audio", required=True, type=Path, help="symlink path for the PCM audio port")
    run.add_argument("--control", type=Path, help="Unix socket for scripting commands (see 'ctl')")
    run.add_argument("--record", type=Path, help="write what the host sends on the audio port to this WAV")
    run.add_argument("--ring-period", type=float, default=3.0, help="seconds between RINGs (default 3)")
    run.add_argument("--pin", help="make the SIM ask for this PIN")
    run.add_argument("--boot-delay", type=float, default=0.0, help="seconds before the module answers")
    run.add_argument("--script", help="';'-separated commands to run after start (see control.py)")
    run.add_argument("--exit-after-script", action="store_true", help="stop once the script finished")
    run.add_argument("-v", "--verbose", action="store_true")
    ctl = sub.add_parser("ctl", help="send one command to a running simulator")
    ctl.add_argument("--control", required=True, type=Path)
    ctl.add_argument("words", nargs="+", help="e.g. call +79161234567 | speak a.wav | dtmf 12# | hangup | sms N text")
    return parser


async def _run(args: argparse.Namespace) -> int:
    config = SimulatorConfig(
        ring_period_s=args.ring_period, sim_pin=args.pin, boot_delay_s=args.boot_delay, record_path=args.record
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    status = 0
    async with SimulatedModem(args.at, args.audio, config) as sim:
        server = ControlServer(sim, args.control) if args.control else None
        if server is not None:
            await server.start()
        status_now = sim.status()
        print(
            f"[sim] AT port {args.at} -> {status_now['at_tty']}, audio port {args.audio} -> {status_now['audio_tty']}",
            flush=True,
        )
        try:
            if args.script:
                ok = await run_script(sim, args.script)
                status = 0 if ok else 1
                if args.exit_after_script:
                    return status
            await stop.wait()
        finally:
            if server is not None:
                await server.stop()
    return status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "ctl":
        reply = asyncio.run(send_command(args.control, " ".join(args.words)))
        print(reply)
        return 0 if reply.startswith("ok") else 1
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
