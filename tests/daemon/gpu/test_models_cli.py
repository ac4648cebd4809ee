"""``secretary gpu models`` in a subprocess, against the stand-in Hub named by HF_ENDPOINT."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.gpu.models.model_lock import load_lock
from tests.support.daemon_runner import write_config
from tests.support.hf_hub_standin import StandinHub, write_lock_for

REPO = Path(__file__).resolve().parents[3]
VOICE = "acme/tiny-voice"


@pytest.fixture
def hub() -> Iterator[StandinHub]:
    with StandinHub() as running:
        running.add_repo(VOICE, {"config.json": b"{}\n", "model.pth": os.urandom(200_000)}, lfs={"model.pth"})
        yield running


def models(hub: StandinHub, tmp_path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path / "config.yaml", "mqtt://127.0.0.1:9", tmp_path / "data")
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(REPO), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_PROGRESS_BARS="1", **extra_env)
    return subprocess.run([sys.executable, "-m", "daemon.cli", "gpu", "models", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_install_verify_and_tamper_through_the_command_line(hub: StandinHub, tmp_path: Path) -> None:
    lock = write_lock_for(tmp_path / "lock.json", hub, {"voice": (VOICE, "xtts_v2")})
    done = models(hub, tmp_path, "--lock-file", str(lock))
    assert done.returncode == 0, done.stderr
    target = tmp_path / "data" / "models" / "xtts_v2"  # engines.models_dir: <data_dir>/models
    assert (target / "model.pth").read_bytes() == hub.repos[VOICE].files["model.pth"].data
    assert "voice: installed in" in done.stdout and "1 model(s) ready" in done.stdout
    seen = len(hub.requests)
    again = models(hub, tmp_path, "--lock-file", str(lock))
    assert again.returncode == 0 and "voice: ready in" in again.stdout and len(hub.requests) == seen
    verified = models(hub, tmp_path, "--lock-file", str(lock), "--verify")
    assert verified.returncode == 0 and f"OK      voice: {target} matches the lock" in verified.stdout
    (target / "config.json").write_text("[]\n")
    bad = models(hub, tmp_path, "--lock-file", str(lock), "--verify")
    assert bad.returncode == 1 and "BAD     voice: config.json has sha256" in bad.stdout


def test_refusals_are_one_message_and_exit_1(hub: StandinHub, tmp_path: Path) -> None:
    lock = write_lock_for(tmp_path / "lock.json", hub, {"voice": (VOICE, "xtts_v2")}, pinned=False)
    refused = models(hub, tmp_path, "--lock-file", str(lock))
    assert refused.returncode == 1
    assert "secretary gpu models: the lock file does not pin voice" in refused.stderr
    assert "Traceback" not in refused.stderr and hub.requests == []
    dry = models(hub, tmp_path, "--lock-file", str(lock), "--dry-run")
    assert dry.returncode == 1 and f"would fetch {hub.url}/{VOICE}/resolve/" in dry.stdout
    down = models(hub, tmp_path, "--lock-file", str(lock), "--allow-unverified", "--endpoint", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot fetch" in down.stderr and "--from DIR" in down.stderr
    assert "Traceback" not in down.stderr
    offline = models(hub, tmp_path, "--lock-file", str(lock), "--allow-unverified", HF_HUB_OFFLINE="1")
    assert offline.returncode == 1 and "HF_HUB_OFFLINE is set" in offline.stderr and "--from DIR" in offline.stderr


def test_lock_pins_the_file_from_the_hub(hub: StandinHub, tmp_path: Path) -> None:
    lock = write_lock_for(tmp_path / "lock.json", hub, {"voice": (VOICE, "xtts_v2")}, pinned=False)
    done = models(hub, tmp_path, "--lock-file", str(lock), "--lock")
    assert done.returncode == 0, done.stderr
    assert f"voice: pinned {VOICE}@{hub.repos[VOICE].commit}" in done.stdout
    entry = load_lock(lock).models[0]
    assert entry.pinned and entry.files[1].sha256 == hub.repos[VOICE].files["model.pth"].sha256
    installed = models(hub, tmp_path, "--lock-file", str(lock))  # now pinned: no flag needed
    assert installed.returncode == 0, installed.stderr
