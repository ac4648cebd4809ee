"""``secretary demo``: the whole box on this machine, on embedded defaults.

Starts a private mosquitto, runs the daemon in-process with the bundled
default config (the built-in SIM7600 simulator as modem, the CPU engines),
and drives it the way any bus consumer would: it shows the engines loading,
has the simulator ring the box, plays the bundled caller recording one line
after each of the secretary's turns, and waits for the secretary to end the
call. Then it prints the transcript, a latency line per turn and where the
call record (with the reply WAV) is, and stops the daemon. Everything
printed comes off the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from config.loader import bundled_config_text, parse_config_text
from daemon.app import SecretaryApp
from daemon.bus.connection import NO_DELAY, request_properties
from daemon.tools.demo_caller import caller_script
from daemon.runtime.logging_setup import configure_logging
from daemon.tools.private_broker import BrokerUnavailable, MosquittoBroker
from daemon.runtime.systemd_notify import SystemdNotifier

DEMO_CALLER = "+79161234567"


PERSONA_OF = {"en": "lidia", "ru": "gulya"}
SHOWN = ("call/", "engines/", "services/calls/", "status")


def demo_config_text(broker_url: str, data_dir: Path, language: str = "en") -> str:
    data = yaml.safe_load(bundled_config_text("default.yaml"))
    data["mqtt"]["url"] = broker_url
    data["data_dir"] = str(data_dir)
    data.setdefault("log", {})["level"] = "warning"
    data.setdefault("web", {})["enabled"] = False  # one call and out: no page, no password to print
    data.setdefault("call", {})["persona"] = PERSONA_OF[language]
    return yaml.safe_dump(data, allow_unicode=True)


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
            suffix = topic[len(self.base) + 1:] if topic.startswith(f"{self.base}/") else ""
            if suffix.startswith(SHOWN) and not (suffix == "call/event" and isinstance(payload, dict) and payload.get("type") == "utterance"):
                print(f"  bus  {suffix:<26} {_short(payload)}", flush=True)
            if suffix == "call/event" and isinstance(payload, dict) and payload.get("type") == "utterance":
                who = "caller   " if payload.get("role") == "caller" else "secretary"
                cut = " [interrupted]" if payload.get("interrupted") else ""
                print(f"  {who}  {payload.get('text')}{cut}", flush=True)

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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

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


async def run_demo(data_dir: Path | None = None, language: str = "en") -> int:
    try:
        broker = MosquittoBroker()
        broker.start()
    except BrokerUnavailable as exc:
        print(f"demo: {exc}")
        return 1
    try:
        return await _run_with_broker(broker, data_dir, language)
    finally:
        broker.close()


async def _run_with_broker(broker: MosquittoBroker, data_dir: Path | None, language: str) -> int:
    if data_dir is None:
        default = parse_config_text(bundled_config_text("default.yaml"), "embedded default.yaml").settings.data_dir
        data_dir = default
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    loaded = parse_config_text(demo_config_text(broker.url, data_dir, language), "embedded default.yaml")
    configure_logging(loaded.settings.log)
    cfg = loaded.settings
    base = f"{cfg.mqtt.topic_prefix}/{cfg.box_id}"
    print(f"secretary demo: box {cfg.box_id!r}, modem {cfg.modem.driver}, persona {cfg.call.persona} ({language}), "
          f"data in {data_dir}, private broker {broker.url}")
    print("  (the first run assembles the packaged models; later runs start faster)")
    app = SecretaryApp(loaded, notifier=SystemdNotifier(environ={}))
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="secretary-demo", protocol=aiomqtt.ProtocolVersion.V5, socket_options=NO_DELAY) as client:
        await client.subscribe(f"{base}/#", qos=1)
        view = BusView(client, base)
        async with asyncio.TaskGroup() as tasks:
            listening = tasks.create_task(view.listen())
            started = time.monotonic()
            daemon = tasks.create_task(app.run())
            try:
                result = await _script(view, language)
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
    if result is None:
        result = _report(view, base, data_dir)
    if online is None or offline is None or result is not None:
        print(f"demo FAILED: {result or 'the box was not seen going online and offline on the bus'}")
        return 1
    print(f"online after {(online - started) * 1000:.0f} ms; offline {(offline - stop_at) * 1000:.0f} ms after stop")
    return 0


def _events(view: BusView, base: str, kind: str) -> list[dict[str, Any]]:
    return [p for _, t, p in view.seen if t == f"{base}/call/event" and isinstance(p, dict) and p.get("type") == kind]


def _report(view: BusView, base: str, data_dir: Path) -> str | None:
    """Transcript, latency per turn and the record's location; an error text if the call went wrong."""
    utterances = _events(view, base, "utterance")
    ended = _events(view, base, "ended")
    if not ended:
        return "the call never ended"
    end = ended[-1]
    print("transcript:")
    for u in utterances:
        who = "Caller   " if u.get("role") == "caller" else "Secretary"
        print(f"  [{u.get('start_s', 0):6.2f} s] {who}: {u.get('text')}{' [interrupted]' if u.get('interrupted') else ''}")
    print("latency per turn (from the caller's end of speech):")
    for turn, u in enumerate(x for x in utterances if x.get("role") == "secretary" and "latency_ms" in x):
        lat = u["latency_ms"]
        if "greeting_ms" in lat:
            print(f"  greeting: first audio {lat['greeting_ms']} ms after PCM came up")
            continue
        print(f"  turn {turn}: voice-to-voice {lat.get('voice_to_voice_ms')} ms: endpoint window {lat.get('endpoint_ms')} ms, "
              f"then STT final +{lat.get('stt_ms')}, reply text +{lat.get('first_text_ms')}, "
              f"first TTS audio +{lat.get('first_tts_ms')}, first frame on the line +{lat.get('first_audio_ms')} ms"
              f"{' (filler played)' if lat.get('filler') else ''}")
    print(f"outcome: {end.get('outcome')} ({end.get('reason')}), {end.get('duration_s')} s")
    print(f"message: {json.dumps(end.get('message'), ensure_ascii=False)}")
    print(f"summary: {end.get('summary')}")
    record = data_dir / "calls" / str(end.get("call_id"))
    print(f"record:  {record}  (secretary.wav = the reply audio, caller.wav, transcript.json, transcript.txt)")
    if not any(u.get("role") == "caller" for u in utterances):
        return "the secretary heard nothing the caller said"
    return None


async def _script(view: BusView, language: str) -> str | None:
    """Ring the box and play the caller's lines, one after each secretary turn; None when all went well."""
    lines = caller_script(language)[:3]
    try:
        await view.wait_for(lambda t, p: t == "modem/state" and isinstance(p, dict) and p.get("registered"), 30)
        print("\n  demo: waiting for the engines and the persona's phrases (progress above)\n")
        await view.wait_for(lambda t, p: t == "services/calls/state" and isinstance(p, dict) and p.get("state") == "running", 900)
        print(f"\n  demo: the simulated caller {DEMO_CALLER} rings the box\n")
        reply = await view.command("simulator/call", {"from": DEMO_CALLER})
        if not reply.get("ok"):
            return f"simulator refused the call: {reply}"
        await view.wait_for(lambda t, p: t == "call/event" and p.get("type") == "answered", 30)
        spoken = 0
        for line in lines:
            spoken += 1
            await view.wait_for(_secretary_turns_at_least(spoken), 60)
            if _ended(view):
                break
            print(f"\n  demo: the caller says ({line.seconds:.1f} s): {line.text}\n")
            await view.command("simulator/speak", {"wav": str(line.wav)})
        try:
            await view.wait_for(lambda t, p: t == "call/event" and p.get("type") == "ended", 90)
        except TimeoutError:
            print("\n  demo: the secretary did not end the call; the caller hangs up\n")
            await view.command("simulator/hangup", {})
            await view.wait_for(lambda t, p: t == "call/event" and p.get("type") == "ended", 30)
        await view.wait_for(lambda t, p: t == "call/state" and p.get("state") == "idle", 10)
    except TimeoutError:
        return "timed out waiting for the daemon (see the bus lines above)"
    return None


def _ended(view: BusView) -> bool:
    return any(t.endswith("/call/event") and isinstance(p, dict) and p.get("type") == "ended" for _, t, p in view.seen)


def _secretary_turns_at_least(count: int) -> Callable[[str, Any], bool]:
    seen = 0

    def predicate(topic: str, payload: Any) -> bool:
        nonlocal seen
        if topic != "call/event" or not isinstance(payload, dict):
            return False
        if payload.get("type") == "ended":
            return True
        if payload.get("type") == "utterance" and payload.get("role") == "secretary":
            seen += 1
        return seen >= count

    return predicate
