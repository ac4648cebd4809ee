"""SpeechReadiness: the box can speak only with VAD, STT and TTS loaded (not failed) and the greeting cached."""

from __future__ import annotations

import asyncio
import time

from channels.bus_contract.topics import Topics
from daemon.bus.connection import Bus
from daemon.engine_host.engine_service import EngineService, StatusSink
from daemon.engine_host.speech_readiness import SPEECH_ENGINES, SpeechReadiness
from daemon.runtime.supervisor import RestartPolicy, Supervisor
from engines.engine_status import EngineState, EngineStatus


class Gated:
    """An engine that finishes loading when the test says, in the state the test says."""

    def __init__(self, name: str, on_status: StatusSink, load: asyncio.Future[EngineState]) -> None:
        self._status = EngineStatus(name)
        self._on_status = on_status
        self._load = load

    @property
    def status(self) -> EngineStatus:
        return self._status

    def set(self, state: EngineState) -> None:
        self._status = self._status.evolve(state=state, backend="b", device="cpu")
        self._on_status(self._status)

    async def start(self) -> EngineStatus:
        self.set(EngineState.LOADING)
        self.set(await self._load)
        return self._status

    async def recover_forever(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


class Box:
    """Engine services under the real supervisor, each loading when its future is resolved."""

    def __init__(self, names: tuple[str, ...]) -> None:
        bus = Bus(Topics("secretary", "box"))
        loop = asyncio.get_running_loop()
        self.loads: dict[str, asyncio.Future[EngineState]] = {n: loop.create_future() for n in names}
        self.engines: dict[str, Gated] = {}
        self.services: dict[str, EngineService[Gated]] = {}
        for name in names:
            def build(on_status: StatusSink, name: str = name) -> Gated:
                self.engines[name] = Gated(name, on_status, self.loads[name])
                return self.engines[name]

            self.services[name] = EngineService(name, bus, build, config=name)
        self.supervisor = Supervisor(RestartPolicy(0.05, 0.5, 60.0), stop_timeout_s=2.0)
        for service in self.services.values():
            self.supervisor.add(service)

    def lookup(self, name: str) -> EngineService[Gated] | None:
        return self.services.get(name) if name in self.supervisor.names else None


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_ready_only_with_every_speech_engine_usable_and_the_greeting_cached() -> None:
    box = Box(("vad", "stt", "llm", "tts"))
    readiness = SpeechReadiness(box.lookup)
    running = asyncio.create_task(box.supervisor.run())
    try:
        await settle()
        assert not readiness.ready_to_speak()
        assert readiness.missing() == ["vad: not loaded", "stt: not loaded", "tts: not loaded", "greeting"]
        box.loads["vad"].set_result(EngineState.READY)
        box.loads["stt"].set_result(EngineState.DEGRADED)  # a fallback serves: good enough to speak
        box.loads["tts"].set_result(EngineState.FAILED)  # no backend could load
        await asyncio.wait_for(box.services["tts"].wait_loaded(), 5)
        assert readiness.missing() == ["tts: failed", "greeting"]
        box.engines["tts"].set(EngineState.READY)  # recovered in the background
        assert readiness.missing() == ["greeting"]
        readiness.phrases_ready(True)
        assert readiness.ready_to_speak() and readiness.missing() == []  # the LLM is not needed: scripted dialogue
        readiness.phrases_ready(False)  # the call service restarts
        assert readiness.missing() == ["greeting"]
        readiness.phrases_ready(True)
        await box.supervisor.remove("stt")  # a reload replaces the STT service: not ready until the new one loads
        assert readiness.missing() == ["stt: not loaded"]
    finally:
        box.supervisor.stop()
        await running


async def test_wait_ready_returns_as_soon_as_the_box_can_speak_or_false_at_the_bound() -> None:
    box = Box(SPEECH_ENGINES)
    readiness = SpeechReadiness(box.lookup)
    running = asyncio.create_task(box.supervisor.run())
    try:
        started = time.monotonic()
        assert await readiness.wait_ready(0.3) is False
        assert time.monotonic() - started < 2.0
        assert await readiness.wait_ready(0) is False

        waiting = asyncio.create_task(readiness.wait_ready(30))
        for name in SPEECH_ENGINES:
            box.loads[name].set_result(EngineState.READY)
        await asyncio.sleep(0.3)
        assert not waiting.done(), "ready before the greeting was cached"
        readiness.phrases_ready(True)
        assert await asyncio.wait_for(waiting, 2) is True
        assert await readiness.wait_ready(0) is True
    finally:
        box.supervisor.stop()
        await running
