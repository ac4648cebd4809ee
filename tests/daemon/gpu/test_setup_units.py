"""The units step: ``systemctl`` as the box runs it (a recording ``systemctl`` on PATH: no systemd here), the wait on
``engines/*/state`` over the real test broker (states published by the test as the daemon, and by a real daemon),
and the persona's greeting said by a real daemon through ``cmd/speak``."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from channels.bus_contract.box_payloads import EngineState
from channels.bus_contract.clients import DAEMON
from channels.bus_contract.topics import Topics
from config.loader import LoadedConfig, load_config
from daemon.app import SecretaryApp
from daemon.gpu.engine_units import (
    DAEMON_UNIT,
    VLLM_UNIT,
    EngineGoal,
    EngineWatch,
    UnitsError,
    gpu_goals,
    speak_greeting,
    start_units,
    wait_until_ready,
    wav_seconds,
)
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import write_config

GOALS = gpu_goals("vllm", ["xtts", "rhvoice", "piper", "espeak"], ["faster-whisper", "faster-whisper-cpu"])


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``systemctl`` first on PATH that appends its argv (JSON) to a log and exits with $FAKE_SYSTEMCTL_EXIT."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    script = bin_dir / "systemctl"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "code = int(os.environ.get('FAKE_SYSTEMCTL_EXIT', '0'))\n"
        "if code:\n"
        "    print('Failed to enable unit: Unit file secretary-vllm.service does not exist.', file=sys.stderr)\n"
        "sys.exit(code)\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_units_are_enabled_started_and_the_daemon_restarted(fake_systemctl: Path) -> None:
    before = time.time()
    started = start_units(out=io.StringIO())
    assert _calls(fake_systemctl) == [["enable", "--now", "secretary-vllm.service"],
                                      ["restart", "secretaryd.service"]]
    assert (VLLM_UNIT, DAEMON_UNIT) == ("secretary-vllm.service", "secretaryd.service")
    assert before <= started <= time.time()


def test_a_unit_that_fails_stops_with_what_systemctl_said(fake_systemctl: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SYSTEMCTL_EXIT", "1")
    with pytest.raises(UnitsError) as caught:
        start_units(out=io.StringIO())
    assert "Unit file secretary-vllm.service does not exist" in str(caught.value)
    assert "journalctl -u secretary-vllm.service" in str(caught.value)
    assert _calls(fake_systemctl) == [["enable", "--now", "secretary-vllm.service"]]  # stopped at the first


def test_dry_run_runs_no_systemctl(fake_systemctl: Path) -> None:
    out = io.StringIO()
    start_units(dry_run=True, out=out)
    assert _calls(fake_systemctl) == []
    assert "would run: systemctl enable --now secretary-vllm.service" in out.getvalue()
    assert "would run: systemctl restart secretaryd.service" in out.getvalue()


# -- the wait on the bus ---------------------------------------------------------------------------


@pytest.fixture
def loaded(broker: MosquittoBroker, tmp_path: Path) -> LoadedConfig:
    return load_config(write_config(tmp_path / "config.yaml", broker, tmp_path / "data"), {})


async def _publish(broker: MosquittoBroker, loaded: LoadedConfig, states: dict[str, EngineState]) -> None:
    """Publish retained engine states as the daemon does (its login: the ACL lets only it write them)."""
    topics = Topics(loaded.settings.mqtt.topic_prefix, loaded.settings.box_id)
    login = broker.login(DAEMON)
    async with aiomqtt.Client("127.0.0.1", broker.port, username=login.username, password=login.password,
                              identifier=f"test-daemon-{os.getpid()}") as client:
        for name, state in states.items():
            await client.publish(topics.engine_state(name), json.dumps(state.encode()), qos=1, retain=True)


def _gpu_ready(since: float) -> dict[str, EngineState]:
    return {"llm": EngineState("ready", backend="vllm", device="cuda", since=since),
            "tts": EngineState("ready", backend="xtts", device="cuda", since=since),
            "stt": EngineState("ready", backend="faster-whisper", device="cuda", since=since)}


async def test_the_wait_ends_when_every_engine_is_ready_on_the_gpu(broker: MosquittoBroker,
                                                                   loaded: LoadedConfig) -> None:
    after = time.time()
    await _publish(broker, loaded, _gpu_ready(after - 60))  # the previous daemon's retained states: stale
    out = io.StringIO()
    async with EngineWatch(loaded.settings, loaded.secret) as watch:
        waiting = asyncio.create_task(wait_until_ready(watch, GOALS, after=after, timeout_s=20, out=out))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # stale "ready" does not count
        await _publish(broker, loaded, {"llm": EngineState("loading", backend="vllm", device="cuda",
                                                           since=time.time())})
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await _publish(broker, loaded, _gpu_ready(time.time()))
        states = await asyncio.wait_for(waiting, 10)
    assert {name: (s.backend, s.device) for name, s in states.items()} == {
        "llm": ("vllm", "cuda"), "tts": ("xtts", "cuda"), "stt": ("faster-whisper", "cuda")}
    assert "engines/llm/state: loading on vllm (cuda)" in out.getvalue()


async def test_a_fallback_serving_is_not_ready_on_the_gpu(broker: MosquittoBroker, loaded: LoadedConfig) -> None:
    now = time.time()
    states = _gpu_ready(now)
    states["tts"] = EngineState("degraded", backend="rhvoice", device="cpu", since=now,
                                failures=("xtts: CUDA out of memory",))
    await _publish(broker, loaded, states)
    async with EngineWatch(loaded.settings, loaded.secret) as watch:
        with pytest.raises(UnitsError) as caught:
            await wait_until_ready(watch, GOALS, after=now - 1, timeout_s=1.5, out=io.StringIO())
    message = str(caught.value)
    assert "tts (wanted ready on xtts, cuda; now degraded on rhvoice (cpu); failed: xtts: CUDA out of memory)" in message
    assert "llm" not in message.split("1.5 s:")[1].split(".\n")[0]  # only what is missing is named
    assert "journalctl -u secretary-vllm.service -u secretaryd.service" in message


async def test_no_broker_stops_with_what_to_check(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path / "config.yaml", "mqtt://127.0.0.1:9", tmp_path / "data"), {})
    with pytest.raises(UnitsError, match="cannot reach the box's broker at 127.0.0.1:9"):
        async with EngineWatch(loaded.settings, loaded.secret):
            pass


# -- a real daemon ---------------------------------------------------------------------------------


@pytest.fixture
async def app(loaded: LoadedConfig, tmp_path: Path) -> AsyncIterator[SecretaryApp]:
    app = SecretaryApp(loaded, config_path=tmp_path / "config.yaml", notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(app.run())
    yield app
    app.stop()
    await asyncio.wait_for(task, 8)


async def test_a_real_daemon_comes_ready_and_says_the_greeting(app: SecretaryApp, loaded: LoadedConfig) -> None:
    """The same wait and greeting against secretaryd itself, on this machine's CPU engines (espeak speaks)."""
    cpu_goals = [EngineGoal("tts", "espeak", device="cpu")]
    async with EngineWatch(loaded.settings, loaded.secret) as watch:
        states = await wait_until_ready(watch, cpu_goals, after=None, timeout_s=60, out=io.StringIO())
        assert states["tts"].state == "ready"
        persona = loaded.settings.call.persona
        timing = await speak_greeting(watch, persona, loaded.settings.personas[persona].greeting, timeout_s=60)
    assert timing.backend == "espeak" and timing.total_ms > 0
    assert timing.first_audio_ms is not None and 0 < timing.first_audio_ms <= timing.total_ms
    spoken = wav_seconds(Path(timing.audio_file))
    assert spoken is not None and spoken > 1.0  # the whole greeting, not a click
