"""``secretary gpu setup`` end to end, as the owner runs it (the real CLI in a subprocess): ``--dry-run`` through
the NVML stand-in names every venv, pip command, model file, config key and unit and changes nothing on disk; no
driver (this machine) stops at the preflight with the Debian steps; a card too small for the profile stops there
too. The whole real setup runs on an RTX-class box only (``@pytest.mark.gpu``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.gpu.models.model_lock import load_lock
from daemon.gpu.nvml_probe import DEBIAN_DRIVER_STEPS, NvmlUnavailable, probe_gpus
from tests.support.nvml_standin import build_standin, standin_env

REPO = Path(__file__).resolve().parents[3]
CONFIG = """\
# the owner's own comment, which the profile must keep
box_id: test-box
data_dir: {root}/data
engines:
  models_dir: {root}/models
  tts:
    xtts:
      python: {root}/opt/xtts-venv/bin/python  # the XTTS worker's venv
  llm:
    chain: [local]
    backends:
      local: {{kind: llama_cpp}}
      vllm: {{kind: vllm, executable: {root}/opt/vllm/bin/vllm}}
"""


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root`` with its mode and content hash (directories: their mode only)."""
    seen: dict[str, tuple[int, str]] = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        seen[str(path.relative_to(root))] = (path.stat().st_mode, digest)
    return seen


def _setup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "gpu", "setup", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    root = tmp_path / "box"
    root.mkdir()
    (root / "config.yaml").write_text(CONFIG.format(root=root))
    return root


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    return build_standin(tmp_path / "nvml")


def test_dry_run_names_everything_and_changes_nothing(box: Path, standin: Path) -> None:
    before = _snapshot(box)
    done = _setup(standin_env(standin, total_mib="12288", free_mib="11900"), "--dry-run", "--allow-unverified",
                  "--config", str(box / "config.yaml"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert _snapshot(box) == before  # not a file, directory, mode or byte changed
    # preflight, from the stand-in driver through the real pynvml
    assert "GPU 0: NVIDIA GeForce RTX 3060, 12288 MiB (11900 MiB free), driver 535.261.03, CUDA 12.2" in out
    # the venvs at the config's paths, and the pip commands
    for venv, constraints, install in ((box / "opt/vllm", "constraints-vllm.txt", "vllm"),
                                       (box / "opt/xtts-venv", "constraints-xtts.txt", "coqui-tts[cuda]")):
        assert f"-m venv {venv}\n" in out
        assert f"$ {venv}/bin/python -m pip install" in out and f"-c {REPO / constraints}" in out and install in out
        assert f"then writes {venv}/.secretary-constraints.sha256" in out
    # every model file of the lock, into models_dir
    for entry in load_lock().models:
        assert f"-> {box / 'models' / entry.target}" in out
        for locked in entry.files:
            assert f"/{locked.path} -> " in out
    # the config keys the profile sets, and the units
    for key in ("engines.tts.chain", "engines.llm.chain", "engines.llm.backends.vllm.gpu_memory_utilization",
                "engines.llm.backends.vllm.max_model_len", "engines.stt.chain", "engines.tts.xtts.gpu_memory_fraction"):
        assert f"would set {key}:" in out
    assert "would run: systemctl enable --now secretary-vllm.service" in out
    assert "would run: systemctl restart secretaryd.service" in out
    assert "engines/llm/state ready on vllm (cuda)" in out and "engines/tts/state ready on xtts (cuda)" in out
    assert "would be done" in out


def test_no_driver_stops_at_the_preflight_with_the_debian_steps(box: Path) -> None:
    try:
        probe_gpus()
        pytest.skip("this machine has an NVIDIA driver")
    except NvmlUnavailable:
        pass
    before = _snapshot(box)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NVML_STANDIN_")}
    done = _setup(env, "--config", str(box / "config.yaml"))  # a real run, not a dry run
    assert done.returncode == 1
    assert "stopped at preflight" in done.stderr and DEBIAN_DRIVER_STEPS in done.stderr
    assert "Nothing was changed." in done.stderr
    assert "[2/5]" not in done.stdout
    assert _snapshot(box) == before


def test_a_card_too_small_for_the_profile_stops_before_anything(box: Path, standin: Path) -> None:
    before = _snapshot(box)
    done = _setup(standin_env(standin, name="NVIDIA GeForce RTX 3050", total_mib="6144"),
                  "--config", str(box / "config.yaml"))
    assert done.returncode == 1
    assert "stopped at preflight: the rtx3060 profile does not fit NVIDIA GeForce RTX 3050 (6144 MiB)" in done.stderr
    assert "Nothing was changed." in done.stderr and "[2/5]" not in done.stdout
    assert _snapshot(box) == before


@pytest.mark.gpu
def test_the_whole_setup_on_a_real_gpu_box() -> None:
    """On an RTX-class box with the driver, systemd, the box's config and the internet (or SECRETARY_GPU_FROM, a
    stick): the real setup, then a second run that skips every step and still proves the engines on the GPU."""
    try:
        gpus = probe_gpus()
    except NvmlUnavailable as exc:
        pytest.skip(f"needs an NVIDIA GPU and driver: {str(exc).splitlines()[0]}")
    config = Path(os.environ.get("SECRETARY_CONFIG", "/etc/secretary/config.yaml"))
    if not config.exists() or os.geteuid() != 0:
        pytest.skip(f"needs root and the box's config ({config})")
    extra = ["--from", os.environ["SECRETARY_GPU_FROM"]] if os.environ.get("SECRETARY_GPU_FROM") else []
    first = subprocess.run([sys.executable, "-m", "daemon.cli", "gpu", "setup", "--config", str(config), *extra],
                           cwd=REPO, capture_output=True, text=True, timeout=4 * 3600)
    assert first.returncode == 0, first.stderr + first.stdout[-4000:]
    assert gpus[0].name in first.stdout and "every engine is ready on the GPU" in first.stdout
    assert "greeting in its voice (xtts)" in first.stdout
    again = subprocess.run([sys.executable, "-m", "daemon.cli", "gpu", "setup", "--config", str(config), *extra],
                           cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": current (stamp") == 2 and "nothing to change" in again.stdout
    assert "units left as they are" in again.stdout and "greeting in its voice (xtts)" in again.stdout


def test_the_other_commands_do_not_load_the_gpu_setup(tmp_path: Path) -> None:
    """The light image has no huggingface_hub or NVML: `secretary config check` must not import them, while
    `secretary gpu setup --help` still shows the setup's own options."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(root=tmp_path))
    checked = subprocess.run([sys.executable, "-X", "importtime", "-m", "daemon.cli", "config", "check", str(config)],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in checked.stderr.splitlines() if line.startswith("import time:")}
    assert "config" in imported or "config.loader" in imported
    assert not {name for name in imported if name.startswith(("huggingface_hub", "pynvml", "daemon.gpu"))}
    helped = subprocess.run([sys.executable, "-m", "daemon.cli", "gpu", "setup", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--profile" in helped.stdout and "--dry-run" in helped.stdout
    wrong = subprocess.run([sys.executable, "-m", "daemon.cli", "config", "check", str(config), "--profile", "x"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unrecognized arguments: --profile x" in wrong.stderr
