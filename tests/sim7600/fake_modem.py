"""An in-memory transport + scripted modem for AT channel and call-state tests (no tty)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from drivers.sim7600.at_channel import AtChannel
from drivers.sim7600.result_codes import AtResponse, FinalResult, parse_final
from drivers.sim7600.urc import Urc

Reply = Callable[[str], Sequence[bytes] | None]


class FakeTransport(asyncio.WriteTransport):
    """Records writes and hands them to a callback; closes like a real transport."""

    def __init__(self, on_write: Callable[[bytes], None]) -> None:
        super().__init__()
        self.written = bytearray()
        self._on_write = on_write
        self._closing = False
        self.protocol: asyncio.Protocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data
        self._on_write(bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0


class ScriptedModem:
    """Answers each command line with the chunks ``reply(command)`` returns, fed one per loop turn."""

    def __init__(self, reply: Reply, *, echo: bool = False) -> None:
        self.reply = reply
        self.echo = echo
        self.commands: list[str] = []
        self.payloads: list[bytes] = []
        self._pending = bytearray()
        self._feeders: set[asyncio.Task[None]] = set()
        self.urcs: list[Urc] = []
        self.channel = AtChannel(urc_sink=self.urcs.append, default_timeout_s=1.0, resync_quiet_s=0.05)
        self.transport = FakeTransport(self._written)
        self.transport.protocol = self.channel
        self.channel.connection_made(self.transport)

    def _written(self, data: bytes) -> None:
        self._pending += data
        while True:
            cut = [
                i
                for i in (self._pending.find(b"\r"), self._pending.find(b"\x1a"), self._pending.find(b"\x1b"))
                if i >= 0
            ]
            if not cut:
                return
            end = min(cut)
            chunk, terminator = bytes(self._pending[:end]), self._pending[end]
            del self._pending[: end + 1]
            if terminator != 0x0D:
                self.payloads.append(chunk)
                command = "<payload>" if terminator == 0x1A else "<esc>"
            else:
                command = chunk.decode()
                self.commands.append(command)
            chunks = list(self.reply(command) or ())
            if self.echo and terminator == 0x0D:
                chunks.insert(0, chunk + b"\r")
            self.feed_later(chunks)

    def feed_later(self, chunks: Sequence[bytes]) -> None:
        loop = asyncio.get_running_loop()

        async def feed() -> None:
            for chunk in chunks:
                await asyncio.sleep(0)
                self.channel.data_received(chunk)

        task = loop.create_task(feed())
        self._feeders.add(task)
        task.add_done_callback(self._feeders.discard)

    async def settle(self) -> None:
        """Wait until everything scheduled has been fed to the channel."""
        while self._feeders:
            await asyncio.gather(*list(self._feeders))


def frame(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


class FakeCommander:
    """``AtCommander`` for call-state tests: answers from a function, records commands."""

    def __init__(self, answer: Callable[[str], tuple[list[str], str]]) -> None:
        self.answer = answer
        self.commands: list[str] = []

    async def command(
        self, command: str, *, timeout: float | None = None, response_prefix: object = None, payload: str | None = None
    ) -> AtResponse:
        self.commands.append(command)
        await asyncio.sleep(0)
        lines, final = self.answer(command)
        parsed: FinalResult | None = parse_final(final)
        assert parsed is not None
        return AtResponse(command, tuple(lines), parsed)
