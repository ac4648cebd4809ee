"""Property tests: random bytes and random URC interleavings never break the AT channel.

Each scripted command has its own distinct answer.  URCs, garbage lines,
non-UTF-8 and over-long lines are inserted between any two lines of any
answer, line endings vary (CRLF, doubled CR, bare LF), echo is on or off, and
the byte stream is cut into random chunks.  Whatever happens: no exception
escapes, every command gets exactly its own final result and data lines, and
every URC is dispatched once, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.sim7600.at_channel import AtChannel
from drivers.sim7600.framing import LineFramer
from drivers.sim7600.result_codes import AtTimeoutError, parse_final
from drivers.sim7600.urc import Urc, parse_urc

from .fake_modem import FakeTransport

CATALOG: dict[str, tuple[list[str], str]] = {
    "AT": ([], "OK"),
    "AT+CSQ": (["+CSQ: 17,99"], "OK"),
    "AT+CREG?": (["+CREG: 0,1"], "OK"),
    "AT+COPS?": (['+COPS: 0,0,"Op,with comma",7'], "OK"),
    "AT+CPIN?": (["+CPIN: READY"], "OK"),
    "AT+CLCC": (['+CLCC: 1,1,0,0,0,"+79161234567",145', '+CLCC: 2,1,5,0,0,"+79160000000",145'], "OK"),
    "AT+CNUM": (['+CNUM: "","+79161112233",145'], "OK"),
    "AT+XYZ": ([], "ERROR"),
    "AT+CMEE=9": ([], "+CME ERROR: operation not allowed"),
    "AT+CMGD=1": ([], "+CMS ERROR: 321"),
    "ATI": (["Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600G-H"], "OK"),
}
PREFIXES = ("+CSQ:", "+CREG:", "+COPS:", "+CPIN:", "+CLCC:", "+CNUM:", "+CMGS:", "+CMGR:", "Manufacturer", "Model")

URC_LINES = [
    "RING",
    "+CRING: VOICE",
    '+CLIP: "+79161234567",145,,,,0',
    '+CLIP: "",128,,,,1',
    "VOICE CALL: BEGIN",
    "VOICE CALL: END: 000008",
    "VOICE CALL: END",
    "NO CARRIER",
    "MISSED_CALL: 11:01AM 07712345678",
    '+CMTI: "SM",3',
    "+RXDTMF: 5",
    "+RXDTMF: #",
    "RDY",
    "SMS DONE",
    "PB DONE",
]
TERMINATORS = [(b"\r\n", b"\r\n"), (b"\r\r\n", b"\r\r\n"), (b"\n", b"\r"), (b"\r\n", b"\n")]


def _harmless(raw: bytes) -> bool:
    """Garbage that cannot legitimately be an answer (anything else is indistinguishable by design)."""
    framer = LineFramer()
    for line in framer.feed(b"\r\n" + raw + b"\r\n"):
        assert isinstance(line, str)
        if parse_final(line) or parse_urc(line) or line[:2].upper() == "AT" or line.startswith(PREFIXES):
            return False
        if line.strip(" >") == "":
            return False
    return True


garbage_line = st.one_of(
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b).filter(_harmless),
    st.builds(lambda n: b"x" * n, st.integers(3000, 6000)),  # over-long
    st.sampled_from([b"\xff\xfe\xfd", b"\xc3\x28 bad utf8", b"\x00\x00", b"\t \t"]),
)
insert = st.one_of(
    st.sampled_from(URC_LINES).map(lambda s: ("urc", s.encode())), garbage_line.map(lambda b: ("junk", b))
)


@dataclass
class Plan:
    echo: bool
    commands: list[str]
    inserts: list[list[list[tuple[str, bytes]]]]  # per command, per gap between its lines
    terminators: list[int]
    cuts: list[int]


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    commands = draw(st.lists(st.sampled_from(sorted(CATALOG)), min_size=1, max_size=6))
    inserts = []
    for command in commands:
        lines, _ = CATALOG[command]
        gaps = len(lines) + 2  # before the first line .. after the final
        inserts.append([draw(st.lists(insert, max_size=2)) for _ in range(gaps)])
    return Plan(
        echo=draw(st.booleans()),
        commands=commands,
        inserts=inserts,
        terminators=draw(st.lists(st.integers(0, len(TERMINATORS) - 1), min_size=1, max_size=8)),
        cuts=draw(st.lists(st.integers(1, 64), min_size=1, max_size=12)),
    )


def _line(text: bytes, k: int, plan: Plan) -> bytes:
    head, tail = TERMINATORS[plan.terminators[k % len(plan.terminators)]]
    return head + text + tail


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    out, i, k = [], 0, 0
    while i < len(data):
        size = cuts[k % len(cuts)]
        out.append(data[i : i + size])
        i += size
        k += 1
    return out


async def _run_plan(plan: Plan) -> None:
    loop = asyncio.get_running_loop()
    urcs: list[Urc] = []
    channel = AtChannel(urc_sink=urcs.append, default_timeout_s=2.0, resync_quiet_s=0.01)
    expected_urcs: list[Urc] = []
    position = {"i": 0, "k": 0}
    wire: asyncio.Queue[bytes | None] = asyncio.Queue()  # one serial line: answers never overlap

    async def feed() -> None:
        while (chunk := await wire.get()) is not None:
            await asyncio.sleep(0)
            channel.data_received(chunk)

    feeder = loop.create_task(feed())

    def on_write(data: bytes) -> None:
        i = position["i"]
        command = plan.commands[i]
        position["i"] += 1
        lines, final = CATALOG[command]
        stream = bytearray(data if plan.echo else b"")
        body = [*lines, final]
        for gap, extras in enumerate(plan.inserts[i]):
            for kind, raw in extras:
                stream += _line(raw, position["k"], plan)
                position["k"] += 1
                if kind == "urc":
                    urc = parse_urc(raw.decode())
                    assert urc is not None
                    expected_urcs.append(urc)
            if gap < len(body):
                stream += _line(body[gap].encode(), position["k"], plan)
                position["k"] += 1
        for chunk in _chunks(bytes(stream), plan.cuts):
            wire.put_nowait(chunk)

    transport = FakeTransport(on_write)
    transport.protocol = channel
    channel.connection_made(transport)
    for command in plan.commands:
        response = await channel.command(command)
        lines, final = CATALOG[command]
        assert str(response.final) == final, (command, response)
        # Its own data lines, in order; anything else it collected is harmless garbage.
        assert [line for line in response.lines if line.startswith(PREFIXES)] == lines, (command, response)
    wire.put_nowait(None)
    await feeder
    assert urcs == expected_urcs
    assert channel.stats.internal_errors == 0 and channel.stats.sink_errors == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_interleaved_urcs_and_garbage_never_cross_answers(plan: Plan) -> None:
    asyncio.run(_run_plan(plan))


async def _random_bytes_then_command(noise: bytes, cuts: list[int]) -> None:
    urcs: list[Urc] = []
    channel = AtChannel(urc_sink=urcs.append, default_timeout_s=0.5, resync_quiet_s=0.01)
    loop = asyncio.get_running_loop()
    feeders: list[asyncio.Task[None]] = []

    async def feed(chunks: list[bytes]) -> None:
        for chunk in chunks:
            await asyncio.sleep(0)
            channel.data_received(chunk)

    def on_write(data: bytes) -> None:
        answer = noise_reply if data.startswith(b"AT+NOISE") else b"\r\n+CSQ: 3,99\r\n\r\nOK\r\n"
        feeders.append(loop.create_task(feed(_chunks(answer, cuts))))

    noise_reply = noise
    transport = FakeTransport(on_write)
    transport.protocol = channel
    channel.connection_made(transport)
    # Unsolicited noise, with no command waiting.
    await feed(_chunks(noise, cuts))
    # A command answered only by noise: it may end in any way, but nothing escapes.
    try:
        await channel.command("AT+NOISE", timeout=0.02)
    except AtTimeoutError:
        pass
    await asyncio.gather(*feeders)
    channel.data_received(b"\r\n")  # the line after noise ends it, as the next modem line would
    # ...and the channel still pairs the next command with its own answer.
    response = await channel.command("AT+CSQ")
    assert response.ok and response.first("+CSQ:") == "3,99"
    assert channel.stats.internal_errors == 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=600),
        st.lists(
            st.sampled_from(
                [
                    b"\r",
                    b"\n",
                    b"OK",
                    b"ERROR",
                    b"+CME ERROR: ",
                    b"> ",
                    b"RING",
                    b"\xff",
                    b"+CLCC: 1,",
                    b'"',
                    b",",
                    b"AT",
                    b"VOICE CALL: ",
                    b"\x1a",
                    b"+CMGR: ",
                    b"x" * 700,
                ]
            ),
            max_size=60,
        ).map(b"".join),
    ),
    st.lists(st.integers(1, 50), min_size=1, max_size=8),
)
def test_random_bytes_never_escape_and_never_desync(noise: bytes, cuts: list[int]) -> None:
    asyncio.run(_random_bytes_then_command(noise, cuts))
