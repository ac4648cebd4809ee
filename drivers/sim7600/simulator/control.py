"""Scripting the simulator with one-line text commands (CLI ``--script`` and the control socket).

Commands::

    call <number>|withheld [give-up <seconds>]   incoming call
    speak <file.wav>                              caller speaks (8 kHz mono 16-bit WAV)
    wait-speech [timeout]                         until the caller finished speaking
    dtmf <digits>                                 caller presses keys
    hangup                                        caller hangs up (or gives up while ringing)
    answer-remote                                 the party the box dialled picks up
    sms <number> <text...>                        incoming SMS
    unplug | replug                               USB disconnect / re-enumeration
    urc <line...>                                 the modem sends this line unprompted (a stray URC)
    raw <hex>                                     these bytes on the AT port as they are: garbage, half lines,
                                                  bad UTF-8 (at most 4096 bytes; replies ``ok wrote N``)
    wait <seconds>
    wait-active [timeout] | wait-idle [timeout]   until a call is connected / no call
    status                                        JSON snapshot
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
from pathlib import Path

from drivers.sim7600.simulator.sim_modem import SimulatedModem, SimulatorError
from drivers.sim7600.simulator.sim_state import SimCallStat

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 60.0
MAX_RAW_BYTES = 4096  # one ``raw`` command: a bound on a script's garbage
RAW_DRAIN_S = 1.0  # how long ``raw`` waits for the host to read what its pty could not take at once


async def execute(sim: SimulatedModem, line: str) -> str:
    """Run one command line; returns ``ok ...`` or ``error ...`` (never raises on bad input)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return f"error {exc}"
    if not words:
        return "ok"
    verb, args = words[0].lower(), words[1:]
    try:
        if verb == "urc":
            return _send_urc(sim, line)
        if verb == "raw":
            return await _send_raw(sim, args)
        return await _dispatch(sim, verb, args)
    except (SimulatorError, ValueError, OSError, TimeoutError) as exc:
        return f"error {exc}"


def _send_urc(sim: SimulatedModem, line: str) -> str:
    """``urc <line>``: the rest of the line as typed (quotes kept: ``+CLCC: 1,1,4,0,0,"+15551234",145``)."""
    parts = line.strip().split(maxsplit=1)
    if len(parts) < 2:
        raise ValueError("usage: urc <line...>")
    sim.urc(parts[1])
    return "ok"


async def _send_raw(sim: SimulatedModem, args: list[str]) -> str:
    """``raw <hex>``: the bytes written as they are (no CR/LF framing added).

    What the host's pty cannot take yet is written as it drains (a UART waits the same way), for at most
    ``RAW_DRAIN_S``; what is still left then is dropped and counted in the reply.
    """
    if len(args) != 1:
        raise ValueError("usage: raw <hex bytes, e.g. 0d0aff fe0d0a>")
    data = bytes.fromhex(args[0])  # ValueError names the bad character
    if not data or len(data) > MAX_RAW_BYTES:
        raise ValueError(f"raw takes 1 to {MAX_RAW_BYTES} bytes, got {len(data)}")
    if not sim.plugged:
        raise SimulatorError("module is not plugged in")
    deadline = asyncio.get_running_loop().time() + RAW_DRAIN_S
    written = sim.send_raw(data)
    while written < len(data) and sim.plugged and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
        written += sim.send_raw(data[written:])
    return f"ok wrote {written}" + (f" dropped {len(data) - written}" if written < len(data) else "")


def _timeout(args: list[str], index: int = 0) -> float:
    return float(args[index]) if len(args) > index else DEFAULT_WAIT_S


async def _dispatch(sim: SimulatedModem, verb: str, args: list[str]) -> str:
    if verb == "call":
        if not args:
            raise ValueError("usage: call <number>|withheld [give-up <seconds>]")
        give_up = float(args[2]) if len(args) >= 3 and args[1] == "give-up" else None
        withheld = args[0].lower() == "withheld"
        await sim.incoming_call("" if withheld else args[0], withheld=withheld, give_up_after_s=give_up)
        return "ok ringing"
    if verb == "speak":
        if not args:
            raise ValueError("usage: speak <file.wav>")
        seconds = await sim.caller_speaks(Path(args[0]))
        return f"ok {seconds:.2f}s queued"
    if verb == "wait-speech":
        await sim.wait_speech_done(_timeout(args))
        return "ok"
    if verb == "dtmf":
        if not args:
            raise ValueError("usage: dtmf <digits>")
        await sim.caller_sends_dtmf(args[0])
        return "ok"
    if verb == "hangup":
        await sim.caller_hangs_up()
        return "ok"
    if verb == "answer-remote":
        await sim.remote_answers()
        return "ok"
    if verb == "sms":
        if len(args) < 2:
            raise ValueError("usage: sms <number> <text...>")
        index = await sim.incoming_sms(args[0], " ".join(args[1:]))
        return f"ok stored at {index}"
    if verb == "unplug":
        await sim.unplug()
        return "ok"
    if verb == "replug":
        await sim.replug()
        return "ok"
    if verb == "wait":
        await asyncio.sleep(float(args[0]) if args else 1.0)
        return "ok"
    if verb == "wait-active":
        await sim.wait_until(
            lambda: sim.call is not None and sim.call.stat is SimCallStat.ACTIVE, _timeout(args), "active call"
        )
        return "ok"
    if verb == "wait-idle":
        await sim.wait_until(lambda: sim.call is None, _timeout(args), "no call")
        return "ok"
    if verb == "status":
        return "ok " + json.dumps(sim.status(), ensure_ascii=False)
    if verb == "help":
        return "ok " + " | ".join(row.strip() for row in (__doc__ or "").splitlines() if row.startswith("    "))
    raise ValueError(f"unknown command {verb!r} (try 'help')")


async def run_script(sim: SimulatedModem, script: str) -> bool:
    """Run ``;``-separated commands in order; stops at the first error."""
    for step in (part.strip() for part in script.split(";")):
        if not step:
            continue
        reply = await execute(sim, step)
        print(f"[sim] {step} -> {reply}", flush=True)
        if reply.startswith("error"):
            return False
    return True


class ControlServer:
    """Line protocol on a Unix socket: one command per line, one reply line each."""

    def __init__(self, sim: SimulatedModem, path: Path) -> None:
        self.sim = sim
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                reply = await execute(self.sim, line.decode("utf-8", errors="replace"))
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


async def send_command(path: Path, line: str, timeout_s: float = DEFAULT_WAIT_S + 5) -> str:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            reply = await reader.readline()
        return reply.decode().rstrip("\n")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


__all__ = ["MAX_RAW_BYTES", "ControlServer", "execute", "run_script", "send_command"]
