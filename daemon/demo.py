"""``secretary demo``: the whole box on this machine, on embedded defaults.

Starts a private mosquitto, runs the daemon in-process with the bundled
default config (simulator modem), watches the bus like any consumer would,
and prints what it sees: the box going online, its services, and offline
after a clean stop.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiomqtt

from config.loader import bundled_config_text, parse_config_text
from daemon.app import SecretaryApp
from daemon.logging_setup import configure_logging
from daemon.mosquitto_broker import BrokerUnavailable, MosquittoBroker
from daemon.systemd_notify import SystemdNotifier

import yaml


def demo_config_text(broker_url: str, data_dir: Path) -> str:
    data = yaml.safe_load(bundled_config_text("default.yaml"))
    data["mqtt"]["url"] = broker_url
    data["data_dir"] = str(data_dir)
    data.setdefault("log", {})["level"] = "warning"
    return yaml.safe_dump(data)


async def _watch(url_host: str, port: int, base: str, seen: list[tuple[float, str, str]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(url_host, port, identifier="secretary-demo-watcher") as client:
        await client.subscribe(f"{base}/#", qos=1)
        ready.set()
        async for message in client.messages:
            payload = message.payload.decode("utf-8", "replace") if isinstance(message.payload, bytes) else str(message.payload)
            seen.append((time.monotonic(), str(message.topic), payload))
            print(f"  bus  {str(message.topic)[len(base) + 1:]:<28} {_short(payload)}", flush=True)


def _short(payload: str) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    if isinstance(data, dict) and "state" in data:
        return f"{data['state']} {data.get('detail', '')}".strip()
    return payload


async def run_demo(seconds: float = 3.0) -> int:
    try:
        broker = MosquittoBroker()
        broker.start()
    except BrokerUnavailable as exc:
        print(f"demo: {exc}")
        return 1
    with broker, tempfile.TemporaryDirectory(prefix="secretary-demo-") as tmp:
        loaded = parse_config_text(demo_config_text(broker.url, Path(tmp)), "embedded default.yaml")
        configure_logging(loaded.settings.log)
        cfg = loaded.settings
        base = f"{cfg.mqtt.topic_prefix}/{cfg.box_id}"
        print(f"secretary demo: box {cfg.box_id!r}, modem driver {cfg.modem.driver}, private broker {broker.url}")
        seen: list[tuple[float, str, str]] = []
        watching = asyncio.Event()
        app = SecretaryApp(loaded, notifier=SystemdNotifier(environ={}))
        async with asyncio.TaskGroup() as tasks:
            watcher = tasks.create_task(_watch("127.0.0.1", broker.port, base, seen, watching))
            await asyncio.wait_for(watching.wait(), 5)
            started = time.monotonic()
            daemon = tasks.create_task(app.run())
            await asyncio.sleep(seconds)
            stop_at = time.monotonic()
            app.stop()
            await daemon
            await asyncio.sleep(0.3)
            watcher.cancel()
        online = next((t for t, topic, p in seen if topic == f"{base}/status" and p == "online"), None)
        offline = next((t for t, topic, p in seen if topic == f"{base}/status" and p == "offline" and t >= stop_at), None)
        print()
        if online is None or offline is None:
            print("demo FAILED: the box was not seen going online and offline on the bus")
            return 1
        print(f"online after {(online - started) * 1000:.0f} ms; offline {(offline - stop_at) * 1000:.0f} ms after stop")
        return 0
