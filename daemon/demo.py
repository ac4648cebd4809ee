"""``secretary demo``: the whole box on this machine, on embedded defaults.

Starts a private mosquitto, runs the daemon in-process with the bundled
default config (the built-in SIM7600 simulator as modem), and drives it the
way any bus consumer would: it waits for the modem, has the simulator ring
the box, watches the daemon answer, lets the caller hang up, then stops the
daemon and shows it going offline. Everything printed comes off the bus.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from config.loader import bundled_config_text, parse_config_text
from daemon.app import SecretaryApp
from daemon.bus import NO_DELAY, request_properties
from daemon.logging_setup import configure_logging
from daemon.mosquitto_broker import BrokerUnavailable, MosquittoBroker
from daemon.systemd_notify import SystemdNotifier

DEMO_CALLER = "+79161234567"


def demo_config_text(broker_url: str, data_dir: Path) -> str:
    data = yaml.safe_load(bundled_config_text("default.yaml"))
    data["mqtt"]["url"] = broker_url
    data["data_dir"] = str(data_dir)
    data.setdefault("log", {})["level"] = "warning"
    return yaml.safe_dump(data)


class BusView:
    """What the demo sees on the bus, printed as it arrives."""

    def __init__(self, client: aiomqtt.Client, base: str) -> None:
        self.client = client
        self.base = base
        self.seen: list[tuple[float, str, Any]] = []
        self._changed = asyncio.Event()

    async def listen(self) -> None:
        async for message in self.client.messages:
            topic = str(message.topic)
            raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode("utf-8", "replace")
            self.seen.append((time.monotonic(), topic, payload))
            self._changed.set()
            if topic.startswith(f"{self.base}/"):
                print(f"  bus  {topic[len(self.base) + 1:]:<26} {_short(payload)}", flush=True)

    async def wait_for(self, predicate: Callable[[str, Any], bool], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            for at, topic, payload in self.seen[index:]:
                if predicate(topic.removeprefix(f"{self.base}/"), payload):
                    return at
            index = len(self.seen)
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def command(self, verb: str, args: dict[str, Any], timeout: float = 10.0) -> Any:
        correlation = uuid.uuid4().bytes
        reply_topic = f"secretary-demo/replies/{uuid.uuid4().hex}"
        await self.client.subscribe(reply_topic, qos=1)
        props = request_properties(reply_topic, correlation)
        await self.client.publish(f"{self.base}/cmd/{verb}", json.dumps(args), qos=1, properties=props)
        await self.wait_for(lambda topic, payload: topic == reply_topic, timeout)
        return next(p for _, t, p in reversed(self.seen) if t == reply_topic)


def _short(payload: Any) -> str:
    if isinstance(payload, dict):
        if "type" in payload:
            extra = {k: v for k, v in payload.items() if k not in ("type", "call_id", "ts")}
            return f"{payload['type']} {json.dumps(extra, ensure_ascii=False)}"
        if "state" in payload and "detail" in payload:
            return f"{payload['state']} {payload.get('detail', '')}".strip()
        return json.dumps(payload, ensure_ascii=False)
    return str(payload)


async def run_demo(seconds: float = 3.0) -> int:
    try:
        broker = MosquittoBroker()
        broker.start()
    except BrokerUnavailable as exc:
        print(f"demo: {exc}")
        return 1
    try:
        return await _run_with_broker(broker, seconds)
    finally:
        broker.close()


async def _run_with_broker(broker: MosquittoBroker, seconds: float) -> int:
    with tempfile.TemporaryDirectory(prefix="secretary-demo-") as tmp:
        loaded = parse_config_text(demo_config_text(broker.url, Path(tmp)), "embedded default.yaml")
        configure_logging(loaded.settings.log)
        cfg = loaded.settings
        base = f"{cfg.mqtt.topic_prefix}/{cfg.box_id}"
        print(f"secretary demo: box {cfg.box_id!r}, modem driver {cfg.modem.driver}, private broker {broker.url}")
        app = SecretaryApp(loaded, notifier=SystemdNotifier(environ={}))
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="secretary-demo", protocol=aiomqtt.ProtocolVersion.V5, socket_options=NO_DELAY) as client:
            await client.subscribe(f"{base}/#", qos=1)
            view = BusView(client, base)
            async with asyncio.TaskGroup() as tasks:
                listening = tasks.create_task(view.listen())
                started = time.monotonic()
                daemon = tasks.create_task(app.run())
                try:
                    result = await _script(view, seconds)
                finally:
                    stop_at = time.monotonic()
                    app.stop()
                    await daemon
                    try:
                        await view.wait_for(lambda t, p: t == "status" and p == "offline", 3)
                    except TimeoutError:
                        pass
                    listening.cancel()
        online = next((t for t, topic, p in view.seen if topic == f"{base}/status" and p == "online"), None)
        offline = next((t for t, topic, p in view.seen if topic == f"{base}/status" and p == "offline" and t >= stop_at), None)
        print()
        if online is None or offline is None or result is not None:
            print(f"demo FAILED: {result or 'the box was not seen going online and offline on the bus'}")
            return 1
        print(f"online after {(online - started) * 1000:.0f} ms; offline {(offline - stop_at) * 1000:.0f} ms after stop")
        return 0


async def _script(view: BusView, seconds: float) -> str | None:
    """Ring the box from the simulator and watch it handle the call; None when all went well."""
    try:
        await view.wait_for(lambda t, p: t == "modem/state" and isinstance(p, dict) and p.get("registered"), 20)
        print(f"\n  demo: the simulated caller {DEMO_CALLER} rings the box\n")
        reply = await view.command("simulator/call", {"from": DEMO_CALLER})
        if not reply.get("ok"):
            return f"simulator refused the call: {reply}"
        await view.wait_for(lambda t, p: t == "call/event" and p.get("type") == "answered", 20)
        await asyncio.sleep(seconds)
        print("\n  demo: the caller hangs up\n")
        await view.command("simulator/hangup", {})
        await view.wait_for(lambda t, p: t == "call/event" and p.get("type") == "ended", 10)
        await view.wait_for(lambda t, p: t == "call/state" and p.get("state") == "idle", 5)
    except TimeoutError:
        return "timed out waiting for the daemon (see the bus lines above)"
    return None
