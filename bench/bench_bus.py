"""Bus latency over a real mosquitto: event publish -> subscriber, and cmd request -> reply.

Prints median/p95/p99 and ends with one JSON line. Never fails on time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt  # noqa: E402

from channels.bus_contract.topics import Topics  # noqa: E402
from config.schema import MqttConfig  # noqa: E402
from daemon.bus.connection import NO_DELAY, Bus, BusConnection, request_properties  # noqa: E402
from daemon.runtime.supervisor import RestartPolicy, Supervisor  # noqa: E402
from daemon.tools.private_broker import MosquittoBroker  # noqa: E402

EVENTS = 2000
REQUESTS = 500


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(pick(0.95), 3), "p99_ms": round(pick(0.99), 3)}


async def main() -> dict[str, object]:
    with MosquittoBroker() as broker:
        bus = Bus(Topics("secretary", "bench"))

        async def echo(args: dict[str, object]) -> dict[str, object]:
            return args

        bus.register_command("echo", echo)
        sup = Supervisor(RestartPolicy())
        sup.add(BusConnection(bus, MqttConfig(url=broker.url)))
        running = asyncio.create_task(sup.run())
        while not bus.connected:
            await asyncio.sleep(0.01)
        event_ms: list[float] = []
        request_ms: list[float] = []
        async with aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5, socket_options=NO_DELAY) as client:
            await client.subscribe("secretary/bench/call/event", qos=1)
            reply_topic = f"bench/{uuid.uuid4().hex}"
            await client.subscribe(reply_topic, qos=1)
            messages = client.messages
            for n in range(EVENTS):
                sent = time.perf_counter()
                bus.call_event("utterance", "bench", n=n)
                async for message in messages:
                    if str(message.topic).endswith("call/event"):
                        break
                event_ms.append((time.perf_counter() - sent) * 1000)
            for n in range(REQUESTS):
                props = request_properties(reply_topic, str(n).encode())
                sent = time.perf_counter()
                await client.publish("secretary/bench/cmd/echo", json.dumps({"n": n}), qos=1, properties=props)
                async for message in messages:
                    if str(message.topic) == reply_topic:
                        break
                request_ms.append((time.perf_counter() - sent) * 1000)
        sup.stop()
        await running
    return {"bench": "bus", "events": EVENTS, "event_latency": percentiles(event_ms), "requests": REQUESTS, "command_roundtrip": percentiles(request_ms)}


if __name__ == "__main__":
    result = asyncio.run(main())
    ev, rq = result["event_latency"], result["command_roundtrip"]
    print(f"event publish -> subscriber: median {ev['median_ms']} ms, p95 {ev['p95_ms']} ms, p99 {ev['p99_ms']} ms ({EVENTS} events)")  # type: ignore[index]
    print(f"cmd request -> reply:        median {rq['median_ms']} ms, p95 {rq['p95_ms']} ms, p99 {rq['p99_ms']} ms ({REQUESTS} requests)")  # type: ignore[index]
    print(json.dumps(result))
