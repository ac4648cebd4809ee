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

from channels.bus_contract.box_payloads import BoxStatus, ServiceState
from channels.bus_contract.call_payloads import (
    AnsweredEvent,
    CallEvent,
    CallState,
    EndedEvent,
    UtteranceEvent,
    decode_call_event,
)
from channels.bus_contract.clients import CLI
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.modem_payloads import ModemState
from channels.bus_contract.topics import CALL_EVENT, CALL_STATE, MODEM_STATE, STATUS, Topics, engine_name, service_state
from channels.bus_contract.verbs import SIMULATOR_CALL, SIMULATOR_HANGUP, SIMULATOR_SPEAK
from channels.peer_json import BadJson, parse_peer_json
from config.loader import bundled_config_text, parse_config_text
from daemon.app import SecretaryApp
from daemon.bus.connection import NO_DELAY, request_properties
from daemon.call.service import CallService
from daemon.runtime.logging_setup import configure_logging
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.demo_caller import caller_script, caller_voice
from daemon.tools.private_broker import BrokerUnavailable, MosquittoBroker

DEMO_CALLER = "+79161234567"


PERSONA_OF = {"en": "lidia", "ru": "gulya"}
CALL_SERVICE_STATE = service_state(CallService.name)


def shown(suffix: str) -> bool:
    """What the demo prints as it arrives: the box's status, the engines, the call service, the call."""
    return suffix in (STATUS, CALL_STATE, CALL_EVENT, CALL_SERVICE_STATE) or engine_name(suffix) is not None


def as_call_event(suffix: str, payload: Any) -> CallEvent | None:
    """The payload as a call event (None for another topic, or a payload that does not fit)."""
    if suffix != CALL_EVENT:
        return None
    try:
        return decode_call_event(payload)
    except PayloadError:
        return None


def decoded(decode: Callable[[Any], Any], payload: Any) -> Any | None:
    try:
        return decode(payload)
    except PayloadError:
        return None


def demo_config_text(mqtt: dict[str, Any], data_dir: Path, language: str = "en") -> str:
    """The embedded default with the private broker's ``mqtt`` keys (``MosquittoBroker.mqtt_fields``)."""
    data = yaml.safe_load(bundled_config_text("default.yaml"))
    data["mqtt"].update(mqtt)
    data["data_dir"] = str(data_dir)
    data.setdefault("log", {})["level"] = "warning"
    data.setdefault("web", {})["enabled"] = False  # one call and out: no page, no password to print
    data.setdefault("call", {})["persona"] = PERSONA_OF[language]
    return yaml.safe_dump(data, allow_unicode=True)


class BusView:
    """What the demo sees on the bus, printed as it arrives."""

    def __init__(self, client: aiomqtt.Client, topics: Topics) -> None:
        self.client = client
        self.topics = topics
        self.reply_topic = CLI.reply_topic(topics)  # the one reply topic the broker lets the owner's tools read
        self.seen: list[tuple[float, str, Any]] = []
        self._changed = asyncio.Event()

    async def listen(self) -> None:
        async for message in self.client.messages:
            topic = str(message.topic)
            raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                payload: Any = parse_peer_json(raw)
            except BadJson:
                payload = raw.decode("utf-8", "replace")
            self.seen.append((time.monotonic(), topic, payload))
            self._changed.set()
            suffix = self.topics.suffix(topic) or ""
            said = as_call_event(suffix, payload)
            if isinstance(said, UtteranceEvent):
                who = "caller   " if said.role == "caller" else "secretary"
                cut = " [interrupted]" if said.interrupted else ""
                print(f"  {who}  {said.text}{cut}", flush=True)
            elif shown(suffix):
                print(f"  bus  {suffix:<26} {_short(payload)}", flush=True)

    async def wait_for(self, predicate: Callable[[str, Any], bool], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            for at, topic, payload in self.seen[index:]:
                if predicate(self.topics.suffix(topic) or topic, payload):
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
        reply_topic = self.reply_topic
        earlier = sum(1 for _, t, _ in self.seen if t == reply_topic)  # one command at a time: the next reply is ours
        replies = 0

        def replied(suffix: str, payload: Any) -> bool:
            nonlocal replies
            replies += suffix == self.topics.suffix(reply_topic)
            return replies > earlier

        props = request_properties(reply_topic, correlation)
        await self.client.publish(self.topics.command(verb), json.dumps(args), qos=1, properties=props)
        await self.wait_for(replied, timeout)
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
    box = parse_config_text(bundled_config_text("default.yaml"), "embedded default.yaml").settings
    try:  # secured like the box's: the daemon and this view each log in as their own user
        broker = MosquittoBroker(box_id=box.box_id, topic_prefix=box.mqtt.topic_prefix)
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
    loaded = parse_config_text(demo_config_text(broker.mqtt_fields(), data_dir, language), "embedded default.yaml")
    configure_logging(loaded.settings.log)
    cfg = loaded.settings
    topics = Topics(cfg.mqtt.topic_prefix, cfg.box_id)
    print(f"secretary demo: box {cfg.box_id!r}, modem {cfg.modem.driver}, persona {cfg.call.persona} ({language}), "
          f"data in {data_dir}, private broker {broker.url}")
    print("  (the first run assembles the packaged models; later runs start faster)")
    app = SecretaryApp(loaded, notifier=SystemdNotifier(environ={}))
    login = broker.login(CLI)
    async with aiomqtt.Client("127.0.0.1", broker.port, username=login.username, password=login.password,
                              identifier="secretary-demo", protocol=aiomqtt.ProtocolVersion.V5,
                              socket_options=NO_DELAY) as client:
        await client.subscribe(topics("#"), qos=1)
        view = BusView(client, topics)
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
                    await view.wait_for(lambda t, p: t == STATUS and says_online(p) is False, 3)
                except TimeoutError:
                    pass
                listening.cancel()
    online = next((t for t, topic, p in view.seen if topic == topics.status and says_online(p)), None)
    offline = next((t for t, topic, p in view.seen if topic == topics.status and says_online(p) is False and t >= stop_at),
                   None)
    print()
    if result is None:
        result = _report(view, data_dir)
    if online is None or offline is None or result is not None:
        print(f"demo FAILED: {result or 'the box was not seen going online and offline on the bus'}")
        return 1
    print(f"online after {(online - started) * 1000:.0f} ms; offline {(offline - stop_at) * 1000:.0f} ms after stop")
    return 0


def says_online(payload: Any) -> bool | None:
    """What ``status`` says: True online, False offline, None if it does not fit the contract."""
    status = decoded(BoxStatus.decode, payload)
    return status.online if status is not None else None


def _events(view: BusView) -> list[CallEvent]:
    found = (as_call_event(view.topics.suffix(t) or "", p) for _, t, p in view.seen)
    return [event for event in found if event is not None]


def _report(view: BusView, data_dir: Path) -> str | None:
    """Transcript, latency per turn and the record's location; an error text if the call went wrong."""
    events = _events(view)
    utterances = [e for e in events if isinstance(e, UtteranceEvent)]
    ended = [e for e in events if isinstance(e, EndedEvent)]
    if not ended:
        return "the call never ended"
    end = ended[-1]
    print("transcript:")
    for u in utterances:
        who = "Caller   " if u.role == "caller" else "Secretary"
        print(f"  [{u.start_s or 0:6.2f} s] {who}: {u.text}{' [interrupted]' if u.interrupted else ''}")
    print("latency per turn (from the caller's end of speech):")
    for turn, u in enumerate(x for x in utterances if x.role == "secretary" and x.latency_ms is not None):
        lat = u.latency_ms
        assert lat is not None
        if "greeting_ms" in lat:
            print(f"  greeting: first audio {lat['greeting_ms']} ms after PCM came up")
            continue
        print(f"  turn {turn}: voice-to-voice {lat.get('voice_to_voice_ms')} ms: endpoint window {lat.get('endpoint_ms')} ms, "
              f"then STT final +{lat.get('stt_ms')}, reply text +{lat.get('first_text_ms')}, "
              f"first TTS audio +{lat.get('first_tts_ms')}, first frame on the line +{lat.get('first_audio_ms')} ms"
              f"{' (filler played)' if lat.get('filler') else ''}")
    print(f"outcome: {end.outcome} ({end.reason}), {end.duration_s} s")
    print(f"message: {json.dumps(end.message, ensure_ascii=False)}")
    print(f"summary: {end.summary}")
    record = data_dir / "calls" / end.call_id
    print(f"record:  {record}  (secretary.wav = the reply audio, caller.wav, transcript.json, transcript.txt)")
    if not any(u.role == "caller" for u in utterances):
        return "the secretary heard nothing the caller said"
    return None


async def _script(view: BusView, language: str) -> str | None:
    """Ring the box and play the caller's lines, one after each secretary turn; None when all went well."""
    lines = caller_script(language)[:3]
    try:
        await view.wait_for(lambda t, p: t == MODEM_STATE and _registered(p), 30)
        print("\n  demo: waiting for the engines and the persona's phrases (progress above)\n")
        await view.wait_for(lambda t, p: t == CALL_SERVICE_STATE and _running(p), 900)
        print(f"\n  demo: the simulated caller {DEMO_CALLER} rings the box (their voice: {caller_voice(language)})\n")
        reply = await view.command(SIMULATOR_CALL, {"from": DEMO_CALLER})
        if not reply.get("ok"):
            return f"simulator refused the call: {reply}"
        await view.wait_for(lambda t, p: isinstance(as_call_event(t, p), AnsweredEvent), 30)
        spoken = 0
        for line in lines:
            spoken += 1
            await view.wait_for(_secretary_turns_at_least(spoken), 60)
            if _ended(view):
                break
            print(f"\n  demo: the caller says ({line.seconds:.1f} s): {line.text}\n")
            await view.command(SIMULATOR_SPEAK, {"wav": str(line.wav)})
        try:
            await view.wait_for(_call_ended, 90)
        except TimeoutError:
            print("\n  demo: the secretary did not end the call; the caller hangs up\n")
            await view.command(SIMULATOR_HANGUP, {})
            await view.wait_for(_call_ended, 30)
        await view.wait_for(lambda t, p: t == CALL_STATE and _idle(p), 10)
    except TimeoutError:
        return "timed out waiting for the daemon (see the bus lines above)"
    return None


def _registered(payload: Any) -> bool:
    modem = decoded(ModemState.decode, payload)
    return modem is not None and bool(modem.registered)


def _running(payload: Any) -> bool:
    service = decoded(ServiceState.decode, payload)
    return service is not None and service.state == "running"


def _idle(payload: Any) -> bool:
    call = decoded(CallState.decode, payload)
    return call is not None and call.state == "idle"


def _call_ended(suffix: str, payload: Any) -> bool:
    return isinstance(as_call_event(suffix, payload), EndedEvent)


def _ended(view: BusView) -> bool:
    return any(isinstance(e, EndedEvent) for e in _events(view))


def _secretary_turns_at_least(count: int) -> Callable[[str, Any], bool]:
    seen = 0

    def predicate(topic: str, payload: Any) -> bool:
        nonlocal seen
        event = as_call_event(topic, payload)
        if isinstance(event, EndedEvent):
            return True
        if isinstance(event, UtteranceEvent) and event.role == "secretary":
            seen += 1
        return event is not None and seen >= count

    return predicate
