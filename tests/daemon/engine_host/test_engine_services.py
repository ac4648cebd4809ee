"""The four engines as daemon services: loaded from config, state on the real broker, real requests, fallbacks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import samplerate

from channels.bus_contract.clients import DAEMON
from channels.bus_contract.topics import Topics
from config.loader import parse_config_text
from config.schema import SecretaryConfig
from daemon.bus.connection import Bus, BusConnection
from daemon.engine_host.engine_service import EngineService
from daemon.engine_host.engine_wiring import engine_services
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from daemon.tools.private_broker import MosquittoBroker
from engines.llm.interface import ChatMessage, ChatRequest
from engines.stt.interface import SttFinal
from engines.tts.interface import SynthesisRequest
from tests.support.bus_logins import config_login

BASE = "secretary/test-box"


def config_for(broker: MosquittoBroker, data_dir: Path, engines_yaml: str = "") -> SecretaryConfig:
    text = f"box_id: test-box\ndata_dir: {data_dir}\nmqtt:\n{broker.mqtt_yaml()}" + engines_yaml
    return parse_config_text(text, source="test.yaml").settings


@contextlib.asynccontextmanager
async def run_engines(cfg: SecretaryConfig, *, connect: bool = True) -> AsyncIterator[dict[str, EngineService]]:  # type: ignore[type-arg]
    bus = Bus(Topics(cfg.mqtt.topic_prefix, cfg.box_id))
    supervisor = Supervisor(RestartPolicy(0.05, 0.5, 60.0), stop_timeout_s=8.0)
    if connect:
        supervisor.add(BusConnection(bus, cfg.mqtt, config_login(cfg, DAEMON)))
    services = {s.name: s for s in engine_services(bus, cfg.engines, cfg.data_dir)}
    for service in services.values():
        supervisor.add(service)
    task = asyncio.create_task(supervisor.run())
    try:
        async with asyncio.timeout(120):
            for service in services.values():
                await service.wait_loaded()
        yield services
    finally:
        supervisor.stop()
        await asyncio.wait_for(task, 30)


async def loop_lag_during(work: asyncio.Future[object] | asyncio.Task[object]) -> float:
    worst = 0.0
    while not work.done():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - before - 0.01)
    return worst


async def test_default_engines_load_publish_and_serve_a_round_trip(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Defaults: every engine ready on the bus; TTS speech -> STT text; the LLM streams; the loop stays free.

    The time-to-first-token deadline is raised: a loaded CI machine must not turn this into a failover test.
    """
    cfg = config_for(broker, tmp_path / "data", "engines:\n  llm: {first_token_timeout_s: 60}\n")
    async with run_engines(cfg, connect=False) as services:
        for engine, backend in (("vad", "silero"), ("stt", "faster-whisper"), ("llm", "local"), ("tts", "piper")):
            running = services[engine].engine
            assert running is not None
            payload = running.status.as_payload()
            assert payload["state"] == "ready"
            assert payload["backend"] == backend and payload["device"] == "cpu"
            assert payload["load_s"] is not None and payload["failures"] == []

        tts = services["tts"].engine
        stt = services["stt"].engine
        llm = services["llm"].engine
        vad = services["vad"].engine
        assert tts is not None and stt is not None and llm is not None and vad is not None

        text = "Please ask Doctor Smith to call me back tomorrow."

        async def speak() -> np.ndarray:
            pieces = [c async for c in tts.synthesize(SynthesisRequest(text, "en"))]
            rate = pieces[0].sample_rate
            audio = np.concatenate([p.samples for p in pieces]).astype(np.float32) / 32768
            return samplerate.resample(audio, 16000 / rate, "sinc_medium").astype(np.float32)  # as VAD and STT take it

        speaking = asyncio.ensure_future(speak())
        lag_tts = await loop_lag_during(speaking)
        speech = speaking.result()

        detector = vad.open_detector(16000)
        padded = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(16000, np.float32)])
        events = detector.feed(padded)
        kinds = [type(e).__name__ for e in events]
        assert kinds[:1] == ["SpeechStarted"] and "SpeechEnded" in kinds

        async def chunks() -> AsyncIterator[np.ndarray]:
            for start in range(0, len(speech), 3200):
                yield speech[start : start + 3200]

        async def hear() -> SttFinal:
            finals = [e async for e in stt.transcribe(chunks(), "en") if isinstance(e, SttFinal)]
            return finals[-1]

        hearing = asyncio.ensure_future(hear())
        lag_stt = await loop_lag_during(hearing)
        final = hearing.result()
        words = final.text.lower()
        assert "doctor smith" in words or "dr. smith" in words, final.text
        assert "call me back" in words, final.text

        request = ChatRequest(
            (ChatMessage("system", "You are a polite phone secretary."), ChatMessage("user", "Hello, who is this?")),
            max_tokens=16,
            temperature=0.0,
        )

        async def think() -> str:
            return "".join([d.text async for d in llm.stream(request)])

        thinking = asyncio.ensure_future(think())
        lag_llm = await loop_lag_during(thinking)
        assert thinking.result().strip(), "the LLM produced text"
        print(f"loop lag max: tts {lag_tts * 1000:.1f} ms, stt {lag_stt * 1000:.1f} ms, llm {lag_llm * 1000:.1f} ms")
        assert max(lag_tts, lag_stt, lag_llm) < 0.1


async def test_failing_primaries_leave_engines_degraded_on_their_fallbacks(broker: MosquittoBroker, tmp_path: Path) -> None:
    """(Checked on the engines' own status: publishing it is covered by the test above.)"""
    missing = tmp_path / "nowhere"
    cfg = config_for(
        broker,
        tmp_path / "data",
        "engines:\n"
        "  retry_initial_s: 60\n"
        "  vad: {chain: [webrtc]}\n"
        f"  stt: {{chain: [vosk, faster-whisper], vosk: {{model: {missing}/vosk-model-ru}}}}\n"
        "  llm:\n"
        "    chain: [cloud, local]\n"
        "    backends:\n"
        "      cloud: {kind: openai_compatible, provider: openai, model: gpt-4o-mini, api_key_env: SECRETARY_TEST_UNSET_KEY}\n"
        "      local: {kind: llama_cpp, mode: server, n_threads: 1}\n"
        f"  tts: {{chain: [xtts, espeak], xtts: {{python: {missing}/bin/python}}}}\n",
    )
    async with run_engines(cfg, connect=False) as services:
        expectations = {
            "stt": ("faster-whisper", "vosk"),
            "llm": ("local", "SECRETARY_TEST_UNSET_KEY"),
            "tts": ("espeak", "xtts"),
        }
        for engine, (serving, reason) in expectations.items():
            running = services[engine].engine
            assert running is not None
            payload = running.status.as_payload()
            assert payload["state"] == "degraded" and payload["backend"] == serving
            assert any(reason in failure for failure in payload["failures"]), payload["failures"]
            assert "fallback" in payload["detail"]
        tts = services["tts"].engine
        assert tts is not None
        chunks = [c async for c in tts.synthesize(SynthesisRequest("Здравствуйте, это секретарь.", "ru"))]
        assert sum(len(c.samples) for c in chunks) > chunks[0].sample_rate * 0.5
        vad = services["vad"].engine
        assert vad is not None and vad.status.as_payload()["state"] == "ready" and vad.status.backend == "webrtc"

