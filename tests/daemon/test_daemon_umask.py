"""A daemon or a channel started by hand (no systemd ``UMask=0027``) still writes nothing others can read."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.bus_contract.verbs import SIMULATOR_CALL, SIMULATOR_HANGUP
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import secretaryd_command, write_config
from tests.support.mqtt_watch import MqttWatch


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def readable_by_others(root: Path) -> list[str]:
    return [f"{p.relative_to(root)} {stat.filemode(p.stat().st_mode)}" for p in sorted(root.rglob("*"))
            if not p.is_symlink() and p.stat().st_mode & 0o007]


async def test_a_hand_started_daemon_keeps_its_records_private(
    broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], spawned: list[subprocess.Popen[bytes]],
) -> None:
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data_dir, answer_after_rings=1)
    topics = broker.topics
    async with MqttWatch(broker, topics("#")) as owner:
        # umask 0: a shell that would make every new file world-readable (and writable)
        spawned.append(subprocess.Popen(secretaryd_command(config), env=daemon_env, umask=0,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        await owner.wait_for(lambda m: m.topic == topics("services/calls/state") and m.json()["state"] == "running",
                             timeout=60)
        await owner.request(topics(f"cmd/{SIMULATOR_CALL}"), b'{"from": "+79161234567"}')
        answered = await owner.wait_for(
            lambda m: m.topic == topics("call/event") and m.json()["type"] == "answered", timeout=30)
        await owner.request(topics(f"cmd/{SIMULATOR_HANGUP}"), b"{}")
        await owner.wait_for(lambda m: m.topic == topics("call/event") and m.json()["type"] == "ended", timeout=30)
    call_id = answered.json()["call_id"]
    record = next(p.parent for p in data_dir.rglob("transcript.json") if call_id in str(p.parent))
    made = {p.name for p in record.iterdir()} | {p.name for p in data_dir.iterdir()}
    assert {"transcript.json", "caller.wav", "secretary.wav", "secretary.db"} <= made, made
    assert readable_by_others(data_dir) == []
    assert stat.S_IMODE((data_dir / "secretary.db").stat().st_mode) == 0o640


def test_a_hand_started_channel_writes_private_files(tmp_path: Path, daemon_env: dict[str, str]) -> None:
    config = write_config(tmp_path / "config.yaml", "mqtt://127.0.0.1:1", tmp_path / "data")
    written = tmp_path / "outbox.db"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from channels.standalone import run_standalone

        def build(loaded):
            Path({str(written)!r}).write_text("a channel's queued notification, a token")
            return "nothing to run"

        raise SystemExit(run_standalone("test", "a channel", ["--config", {str(config)!r}], build))
    """)
    result = subprocess.run([sys.executable, "-c", script], env=daemon_env, umask=0, capture_output=True, timeout=60)
    assert result.returncode == 2, result.stderr.decode()
    assert stat.S_IMODE(written.stat().st_mode) == 0o640
