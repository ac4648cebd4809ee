"""image/: the appliance's root file system, built once per session (``--light``) and inspected.

The build needs root, debootstrap and the Debian mirror (and PyPI for the daemon's venv); without
them the build tests skip and say why. The recipe's own files are checked everywhere.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IMAGE = REPO / "image"
BUILD_ROOTFS = IMAGE / "build-rootfs"
FIRSTBOOT = IMAGE / "files" / "secretary-firstboot"
FIRSTBOOT_UNIT = IMAGE / "files" / "secretary-firstboot.service"
MIRROR = os.environ.get("SECRETARY_IMAGE_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
CHROOT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MACHINE_ID = "5ec7e7a2b0c14d3e9f8a7b6c5d4e3f21"  # what a booted box would have in /etc/machine-id
# Tests that need the build also wait for it (the first one does): their timeout covers it.



# ---------------------------------------------------------------- the recipe's files (no build)

def test_scripts_parse() -> None:
    assert os.access(BUILD_ROOTFS, os.X_OK) and os.access(FIRSTBOOT, os.X_OK)
    subprocess.run(["bash", "-n", str(BUILD_ROOTFS)], check=True)
    subprocess.run(["sh", "-n", str(FIRSTBOOT)], check=True)  # POSIX sh: dash on Debian
    assert "\nset -euo pipefail\n" in BUILD_ROOTFS.read_text()
    usage = subprocess.run([str(BUILD_ROOTFS), "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--light", "--mirror", "--suite", "TARGET_DIR"):
        assert option in usage


def test_the_broker_dropin_is_secured_and_agrees_with_the_contract(tmp_path: Path) -> None:
    """No anonymous clients, the users and ACL firstboot writes, the contract's packet limit; mosquitto parses it."""
    from channels.bus_contract.clients import MAX_PACKET_BYTES

    text = (IMAGE / "files" / "mosquitto-secretary.conf").read_text()
    settings = dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    assert settings["allow_anonymous"] == "false"
    assert settings["password_file"] == "/etc/mosquitto/secretary/passwd"
    assert settings["acl_file"] == "/etc/mosquitto/secretary/acl"
    assert int(settings["max_packet_size"]) == MAX_PACKET_BYTES
    firstboot = FIRSTBOOT.read_text()
    assert "secretary\" mqtt users --config \"$CONFIG\" --out \"$broker_dir\"" in firstboot
    assert "broker_dir=/etc/mosquitto/secretary" in firstboot


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_firstboot_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = FIRSTBOOT_UNIT.read_text()
    assert "ConditionPathExists=!/var/lib/secretary/.firstboot-done" in text
    assert re.search(r"^Before=.*\bsecretaryd\.service\b", text, re.M)
    assert re.search(r"^Type=oneshot$", text, re.M) and "StandardOutput=journal+console" in text
    copy = tmp_path / FIRSTBOOT_UNIT.name
    copy.write_text(text.replace("/usr/local/sbin/secretary-firstboot", str(FIRSTBOOT)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("debootstrap") is None, reason="needs root and debootstrap")
def test_build_refuses_a_directory_that_is_not_a_rootfs(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    result = subprocess.run([str(BUILD_ROOTFS), "--light", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not empty" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("debootstrap") is None, reason="needs root and debootstrap")
def test_build_refuses_a_gpu_models_dir_that_is_not_there(tmp_path: Path) -> None:
    usage = subprocess.run([str(BUILD_ROOTFS), "--help"], capture_output=True, text=True, check=True).stdout
    assert "--gpu-models DIR" in usage
    result = subprocess.run([str(BUILD_ROOTFS), "--light", "--gpu-models", str(tmp_path / "no-stick"),
                             str(tmp_path / "root")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and f"--gpu-models {tmp_path / 'no-stick'} is not a directory" in result.stderr
    assert not (tmp_path / "root").exists()  # refused before any work


def _full_branch_of_the_venv_step() -> tuple[str, str]:
    """Step 5's two branches: what a --light build installs, what a full build does instead."""
    text = BUILD_ROOTFS.read_text()
    branches = text.split('if [ "$LIGHT" -eq 1 ]; then\n  light_packages=', 1)[1].split("\nfi\n", 1)[0]
    light, _, full = branches.partition("\nelse\n")
    return light, full


def test_a_full_build_takes_the_turn_end_model_with_the_module_bootstrap_runs() -> None:
    """The full build is not run by the tests: this reads the recipe (the module: tests/engines/test_turn_end_wheel.py).

    --light has no speech engines (no onnxruntime), so only the full branch takes the model, into the
    rootfs venv's packaged_path() (the module's default target, run by that venv's Python in the chroot).
    """
    from engines.turn_end.smart_turn_wheel import MODEL_FILE, MODEL_SHA256, WHEEL_MEMBER

    light, full = _full_branch_of_the_venv_step()
    assert "smart_turn_wheel" not in light and "pipecat" not in light
    assert 'in_root /opt/secretary/.venv/bin/python -m engines.turn_end.smart_turn_wheel "$pipecat_wheel"\n' in full
    assert 'download -q --no-deps --only-binary :all: -d "$BUILD/pipecat" "$PIPECAT_PIN"' in full
    bootstrap = (REPO / "scripts" / "bootstrap").read_text()
    assert "-m engines.turn_end.smart_turn_wheel" in bootstrap
    for script in (BUILD_ROOTFS.read_text(), bootstrap):  # one home for the pinned member and its sha256
        assert MODEL_SHA256 not in script and WHEEL_MEMBER not in script and MODEL_FILE not in script


@pytest.mark.parametrize("wheelhouse, expected", [
    (["pipecat_ai-0.0.1-py3-none-any.whl", "pipecat_ai-{pin}-py3-none-any.whl"], "pipecat_ai-{pin}-py3-none-any.whl"),
    (["pipecat_ai-0.0.1-py3-none-any.whl"], ""),  # another version: pip downloads the pin
    (None, ""),  # no --wheelhouse
])
def test_the_build_takes_the_pinned_pipecat_wheel_from_the_wheelhouse(
    tmp_path: Path, wheelhouse: list[str] | None, expected: str
) -> None:
    """The recipe's own wheelhouse lookup, run by bash on its own (no chroot: it only looks at the host's files)."""
    _, full = _full_branch_of_the_venv_step()
    start = full.index('  pipecat_wheel=""\n')
    lookup = full[start:full.index("\n  fi\n", start) + len("\n  fi\n")]
    house = ""
    if wheelhouse is not None:
        pin = next(line.split("==")[1] for line in (REPO / "constraints.txt").read_text().splitlines()
                   if line.startswith("pipecat-ai=="))
        (tmp_path / "wheels").mkdir()
        for name in wheelhouse:
            (tmp_path / "wheels" / name.format(pin=pin)).write_bytes(b"PK")
        house = str(tmp_path / "wheels")
        expected = expected.format(pin=pin)
    script = (f"set -euo pipefail\nREPO={REPO}\nWHEELHOUSE='{house}'\nBUILD=/tmp/secretary-build\n"
              "PIPECAT_PIN=$(grep -E '^pipecat-ai==' \"$REPO/constraints.txt\")\n"
              + lookup + 'echo "[$pipecat_wheel]"\n')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (f"[/tmp/secretary-build/wheelhouse/{expected}]" if expected else "[]")


# ---------------------------------------------------------------- the built rootfs

def _why_no_build() -> str | None:
    if os.geteuid() != 0:
        return "building the rootfs needs root (debootstrap, chroot)"
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (apt-get install debootstrap)"
    try:
        with urllib.request.urlopen(f"{MIRROR}/dists/{SUITE}/Release", timeout=15):
            pass
    except OSError as exc:
        return f"the Debian mirror {MIRROR} cannot be reached ({exc}); set SECRETARY_IMAGE_MIRROR to another"
    return None


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if (line.split()[1] + "/").startswith(prefix)]


@dataclass
class Built:
    root: Path
    log: str
    seconds: float
    size_mib: int


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    """``image/build-rootfs --light`` into a fresh directory under /tmp, once for the module."""
    reason = _why_no_build()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="secretary-rootfs-", dir="/tmp"))
    root = workdir / "root"
    log_path = workdir / "build.log"
    started = time.monotonic()
    try:
        with log_path.open("w") as log:
            result = subprocess.run([str(BUILD_ROOTFS), "--light", "--mirror", MIRROR, "--suite", SUITE, str(root)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=840)
        seconds = time.monotonic() - started
        log_text = log_path.read_text(errors="replace")
        if result.returncode != 0:
            pytest.fail(f"image/build-rootfs failed (exit {result.returncode}):\n" + "\n".join(log_text.splitlines()[-40:]))
        du = subprocess.run(["du", "-sxm", str(root)], capture_output=True, text=True, check=True)
        size_mib = int(du.stdout.split()[0])
        print(f"\nimage/build-rootfs --light: {seconds:.0f} s, {size_mib} MiB")
        yield Built(root=root, log=log_text, seconds=seconds, size_mib=size_mib)
    finally:
        left = _mounts_under(workdir)
        if left:  # never delete through a mount point into the host
            pytest.fail(f"still mounted after the build: {left}")
        shutil.rmtree(workdir, ignore_errors=True)


def _chroot(root: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", CHROOT_PATH, "LANG=C.UTF-8", *argv],
                          input=stdin, capture_output=True, text=True, timeout=120)


def _ids(root: Path, name: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"no user {name} in the rootfs")


def _group_members(root: Path) -> dict[str, set[str]]:
    groups = {}
    for line in (root / "etc/group").read_text().splitlines():
        name, _, _, members = line.split(":")
        groups[name] = set(filter(None, members.split(",")))
    return groups


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_build_finishes_in_budget_and_leaves_nothing_behind(built: Built) -> None:
    root = built.root
    assert re.search(r"build-rootfs: done in \d+m\d+s: .* \(\d+(\.\d+)?[MG], light, Debian bookworm\)", built.log), built.log[-2000:]
    # CI runs the whole suite on a fresh machine: the build must stay well inside the module's budget.
    assert built.seconds < 8 * 60, f"the light build took {built.seconds:.0f} s"
    assert built.size_mib < 1024
    assert not _mounts_under(root)
    assert not (root / "usr/sbin/policy-rc.d").exists()  # services may start on the box
    assert not (root / "tmp/secretary-build").exists()
    assert os.readlink(root / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert not any((root / "var/lib/apt/lists").glob("*_Packages"))
    assert (root / "etc/hostname").read_text().strip() == "secretary"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_daemon_runs_from_its_venv(built: Built) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = _chroot(built.root, "/opt/secretary/.venv/bin/secretaryd", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"secretaryd {version}"
    assert (built.root / "opt/secretary/README.md").read_bytes() == (REPO / "README.md").read_bytes()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_gpu_box_files_are_where_the_box_looks_for_them(built: Built) -> None:
    """The lock and the engine venvs' constraints in /opt/secretary, found there by the box's own code."""
    for name in ("gpu-models.lock.json", "constraints-vllm.txt", "constraints-xtts.txt"):
        installed = built.root / "opt/secretary" / name
        assert installed.read_bytes() == (REPO / name).read_bytes(), name
        assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    found = _chroot(built.root, "/opt/secretary/.venv/bin/python", "-c",
                    "from daemon.gpu.models.model_lock import default_lock_path, load_lock; "
                    "path = default_lock_path(); print(path, len(load_lock(path).models))")
    models = len(json.loads((REPO / "gpu-models.lock.json").read_text())["models"])
    assert found.stdout.strip() == f"/opt/secretary/gpu-models.lock.json {models}", found.stdout + found.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_box_config_passes_config_check(built: Built) -> None:
    result = _chroot(built.root, "/opt/secretary/.venv/bin/secretary", "config", "check", "/etc/secretary/config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": OK (" in result.stdout and "modem sim7600" in result.stdout and "broker 127.0.0.1:1883" in result.stdout
    text = (built.root / "etc/secretary/config.yaml").read_text()
    assert re.search(r"^data_dir: /var/lib/secretary$", text, re.M)
    assert re.search(r"^secrets_file: /etc/secretary/secrets.env$", text, re.M)
    assert re.search(r"^  driver: sim7600\b", text, re.M)
    assert "Copy to /etc/secretary/config.yaml" in text  # the example's comments are kept
    # The web page's Settings write the config (atomic replace in its directory): the daemon's user owns both.
    info = (built.root / "etc/secretary/config.yaml").stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and (info.st_uid, info.st_gid) == _ids(built.root, "secretary")
    info = (built.root / "etc/secretary").stat()
    assert stat.S_IMODE(info.st_mode) == 0o750 and (info.st_uid, info.st_gid) == _ids(built.root, "secretary")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_secrets_file_is_private_to_the_daemon(built: Built) -> None:
    info = (built.root / "etc/secretary/secrets.env").stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == _ids(built.root, "secretary")
    assert info.st_size == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_units_are_installed_and_enabled(built: Built) -> None:
    root = built.root
    for name in ("secretaryd.service", "secretary-vllm.service"):
        assert (root / "etc/systemd/system" / name).read_bytes() == (REPO / "systemd" / name).read_bytes()
    assert (root / "etc/systemd/system/secretary-firstboot.service").read_bytes() == FIRSTBOOT_UNIT.read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants"
    for name in ("secretaryd.service", "mosquitto.service", "secretary-firstboot.service"):
        assert (wants / name).is_symlink(), name
        result = _chroot(root, "systemctl", "is-enabled", name)
        assert result.stdout.strip() == "enabled", (name, result.stdout, result.stderr)
    # vLLM is the GPU box's: installed, enabled only by `secretary gpu setup` (its units step, documented).
    assert not (wants / "secretary-vllm.service").exists()
    assert _chroot(root, "systemctl", "is-enabled", "secretary-vllm.service").stdout.strip() == "disabled"
    readme = (IMAGE / "README.md").read_text()
    assert "secretary gpu setup" in readme and "systemctl enable --now secretary-vllm.service" in readme


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("repo_file", "installed"), [
    ("udev/99-secretary-sim7600.rules", "etc/udev/rules.d/99-secretary-sim7600.rules"),
    ("systemd/secretary-modemmanager.conf", "etc/dbus-1/system.d/secretary-modemmanager.conf"),
    ("systemd/secretary-modemmanager.rules", "etc/polkit-1/rules.d/50-secretary-modemmanager.rules"),
    ("image/files/secretary-firstboot", "usr/local/sbin/secretary-firstboot"),
])
def test_rules_and_policies_are_the_repos(built: Built, repo_file: str, installed: str) -> None:
    path = built.root / installed
    assert filecmp.cmp(REPO / repo_file, path, shallow=False)
    info = path.stat()
    assert info.st_uid == 0 and not info.st_mode & 0o022


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_secretary_user(built: Built) -> None:
    entry = next(line.split(":") for line in (built.root / "etc/passwd").read_text().splitlines()
                 if line.startswith("secretary:"))
    assert entry[5] == "/var/lib/secretary" and entry[6] == "/usr/sbin/nologin"
    assert int(entry[2]) < 1000  # a system user
    groups = _group_members(built.root)
    for group in ("dialout", "video", "render"):
        assert "secretary" in groups[group], group
    assert _chroot(built.root, "id", "-nG", "secretary").stdout.split() == ["secretary", "dialout", "video", "render"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_broker_listens_on_loopback_only(built: Built) -> None:
    root = built.root
    dropin = (root / "etc/mosquitto/conf.d/secretary.conf").read_text()
    listeners = re.findall(r"^\s*listener\s+(.*)$", dropin, re.M)
    assert listeners == ["1883 127.0.0.1"]
    # Nothing else opens a port: no other listener, no bare `port` (which binds every address).
    configs = [root / "etc/mosquitto/mosquitto.conf", *sorted((root / "etc/mosquitto/conf.d").glob("*.conf"))]
    for config in configs:
        for line in config.read_text().splitlines():
            words = line.split()
            if words and words[0] in ("listener", "port", "bind_address", "bind_interface"):
                assert config.name == "secretary.conf" and words == ["listener", "1883", "127.0.0.1"], (config, line)
    # The image's mosquitto accepts the config: run it for a moment in a private network namespace.
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: the broker's own parse of the config is not tried")
    probe = root / "tmp/mosquitto-probe.conf"
    probe.write_text("log_dest stdout\ninclude_dir /etc/mosquitto/conf.d\n")
    try:
        run = subprocess.run(["unshare", "--net", "timeout", "-s", "INT", "2", "chroot", str(root),
                              "mosquitto", "-c", "/tmp/mosquitto-probe.conf"],
                             capture_output=True, text=True, timeout=30)
    finally:
        probe.unlink()
    output = run.stdout + run.stderr
    if "unshare failed" in output or "Operation not permitted" in output:
        pytest.skip(f"no network namespace here: {output.strip()}")
    assert "Opening ipv4 listen socket on port 1883." in output, output
    assert "ipv6" not in output and "Error" not in output, output


@dataclass
class FirstBoot:
    box_id_before: str
    machine_id_as_built: str
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    password_json_after_first: bytes
    config_after_first: str
    password_mtime_after_first: float


def _box_id(root: Path) -> str:
    match = re.search(r"^box_id:\s*(\S+)", (root / "etc/secretary/config.yaml").read_text(), re.M)
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def first_boot(built: Built) -> FirstBoot:
    """secretary-firstboot run twice in the chroot, as on a box whose systemd gave it a machine id."""
    root = built.root
    machine_id_as_built = (root / "etc/machine-id").read_text()
    box_id_before = _box_id(root)
    (root / "etc/machine-id").write_text(MACHINE_ID + "\n")
    first = _chroot(root, "/usr/local/sbin/secretary-firstboot")
    password_json = root / "var/lib/secretary/web/password.json"
    after = (password_json.read_bytes() if password_json.exists() else b"",
             (root / "etc/secretary/config.yaml").read_text(),
             password_json.stat().st_mtime if password_json.exists() else 0.0)
    second = _chroot(root, "/usr/local/sbin/secretary-firstboot")
    return FirstBoot(box_id_before, machine_id_as_built, first, second, *after)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_first_boot_names_the_box_and_sets_up_its_data_dir(built: Built, first_boot: FirstBoot) -> None:
    root = built.root
    assert first_boot.first.returncode == 0, first_boot.first.stdout + first_boot.first.stderr
    assert first_boot.machine_id_as_built == ""  # every box gets its own machine id, so its own box_id
    assert first_boot.box_id_before == "office-box"
    assert _box_id(root) == f"box-{MACHINE_ID[:8]}"
    check = _chroot(root, "/opt/secretary/.venv/bin/secretary", "config", "check", "/etc/secretary/config.yaml")
    assert check.returncode == 0 and f"box_id box-{MACHINE_ID[:8]}" in check.stdout, check.stdout
    info = (root / "etc/secretary/config.yaml").stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and (info.st_uid, info.st_gid) == _ids(root, "secretary")  # sed -i kept them
    data_dir = (root / "var/lib/secretary").stat()
    assert stat.S_ISDIR(data_dir.st_mode) and stat.S_IMODE(data_dir.st_mode) == 0o750
    assert (data_dir.st_uid, data_dir.st_gid) == _ids(root, "secretary")
    assert (root / "var/lib/secretary/.firstboot-done").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_first_boot_writes_the_broker_users(built: Built, first_boot: FirstBoot) -> None:
    root = built.root
    assert first_boot.first.returncode == 0, first_boot.first.stdout + first_boot.first.stderr
    box_id = f"box-{MACHINE_ID[:8]}"
    for name in ("passwd", "acl"):
        info = (root / "etc/mosquitto/secretary" / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o640 and (info.st_uid, info.st_gid) == (0, _ids(root, "mosquitto")[1])
    assert f"topic read secretary/{box_id}/cmd/#" in (root / "etc/mosquitto/secretary/acl").read_text()
    credentials = root / "etc/secretary/mqtt-credentials.env"
    info = credentials.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == _ids(root, "secretary")
    assert "SECRETARY_MQTT_PASSWORD_DAEMON=" in credentials.read_text()
    assert re.search(r"^  credentials_file: /etc/secretary/mqtt-credentials.env(\s+#.*)?$",
                     (root / "etc/secretary/config.yaml").read_text(), re.M)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_first_boot_sets_a_web_password_and_shows_it_once(built: Built, first_boot: FirstBoot) -> None:
    root = built.root
    password_json = root / "var/lib/secretary/web/password.json"
    info = password_json.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == _ids(root, "secretary")
    copy = root / "root/secretary-web-password"
    copy_info = copy.stat()
    assert stat.S_IMODE(copy_info.st_mode) == 0o600 and copy_info.st_uid == 0
    password = copy.read_text().strip()
    assert len(password) >= 16
    # Never on stdout or stderr (the unit sends them to the journal as well): the console and the /root copy only.
    for run in (first_boot.first, first_boot.second):
        assert password not in run.stdout + run.stderr
    assert str(copy.relative_to(root)) in first_boot.first.stdout
    # Marked as generated, so `secretary doctor` warns until the owner sets one.
    assert json.loads(password_json.read_text())["generated"] is True
    # The daemon's own password store accepts it (checked as the daemon's user, in the image's venv).
    verify = _chroot(root, "setpriv", "--reuid=secretary", "--regid=secretary", "--init-groups",
                     "/opt/secretary/.venv/bin/python", "-c",
                     "import sys; from pathlib import Path; from daemon.web.auth import PasswordStore; "
                     "ok = PasswordStore(Path('/var/lib/secretary/web/password.json')).verify(sys.stdin.readline().strip()); "
                     "print('verified' if ok else 'refused')",
                     stdin=password + "\n")
    assert verify.stdout.strip() == "verified", verify.stdout + verify.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_first_boot_makes_the_web_certificate_and_prints_its_fingerprint(built: Built, first_boot: FirstBoot) -> None:
    tls = built.root / "var/lib/secretary/web/tls"
    key_info, cert_info = (tls / "key.pem").stat(), (tls / "cert.pem").stat()
    assert stat.S_IMODE(key_info.st_mode) == 0o600 and (key_info.st_uid, key_info.st_gid) == _ids(built.root, "secretary")
    assert (cert_info.st_uid, cert_info.st_gid) == _ids(built.root, "secretary")
    openssl = subprocess.run(["openssl", "x509", "-in", str(tls / "cert.pem"), "-noout", "-fingerprint", "-sha256"],
                             capture_output=True, text=True, check=True)
    fingerprint = openssl.stdout.strip().split("=", 1)[1]
    assert f"web page certificate SHA-256: {fingerprint}" in first_boot.first.stdout
    assert re.search(r"web page: https://[^/]+\.local:8080/", first_boot.first.stdout), first_boot.first.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_first_boot_runs_once(built: Built, first_boot: FirstBoot) -> None:
    root = built.root
    second = first_boot.second
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing to do" in second.stdout
    password_json = root / "var/lib/secretary/web/password.json"
    assert password_json.read_bytes() == first_boot.password_json_after_first
    assert password_json.stat().st_mtime == first_boot.password_mtime_after_first
    assert (root / "etc/secretary/config.yaml").read_text() == first_boot.config_after_first


# ---------------------------------------------------------------- the disk image (last: it adds a kernel to the rootfs)

DISK_TOOLS = ("mkfs.ext4", "sfdisk", "mkfs.vfat", "mcopy", "mdir", "debugfs", "e2fsck")
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_X86_64_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"  # systemd-repart knows it as root-x86-64


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_disk_image_has_an_efi_bootloader_and_the_rootfs(built: Built, first_boot: FirstBoot,
                                                          tmp_path: Path) -> None:
    missing = [tool for tool in DISK_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the disk image needs {', '.join(missing)} (apt-get install e2fsprogs fdisk dosfstools mtools)")
    image = tmp_path / "secretary.img"
    started = time.monotonic()
    result = subprocess.run([str(IMAGE / "build-disk-image"), str(built.root), str(image)],
                            capture_output=True, text=True, timeout=840, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    print(f"\nimage/build-disk-image: {time.monotonic() - started:.0f} s, {image.stat().st_size >> 20} MiB raw")
    assert not _mounts_under(built.root)
    assert not (built.root / "usr/sbin/policy-rc.d").exists()

    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    esp, root_part = table["partitions"]
    assert esp["type"].upper() == ESP_TYPE and root_part["type"].upper() == ROOT_X86_64_TYPE
    assert root_part["name"] == "secretary-root"
    sector = table.get("sectorsize", 512)

    listing = subprocess.run(["mdir", "-b", "-i", f"{image}@@{esp['start'] * sector}", "::/EFI/BOOT"],
                             capture_output=True, text=True, check=True).stdout
    assert "BOOTX64.EFI" in listing.upper()

    root_img = tmp_path / "root.img"
    with image.open("rb") as src, root_img.open("wb") as dst:
        src.seek(root_part["start"] * sector)
        remaining = root_part["size"] * sector
        while remaining:
            chunk = src.read(min(remaining, 1 << 20))
            if chunk.count(0) == len(chunk):
                dst.seek(len(chunk), os.SEEK_CUR)  # keep it sparse
            else:
                dst.write(chunk)
            remaining -= len(chunk)
        dst.truncate()
    fsck = subprocess.run(["e2fsck", "-fn", str(root_img)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    def debugfs(command: str) -> str:
        return subprocess.run(["debugfs", "-R", command, str(root_img)], capture_output=True, text=True,
                              check=True).stdout

    assert "secretary-root" in debugfs("stats")
    assert "Type: symlink" in debugfs("stat /vmlinuz") and "Type: symlink" in debugfs("stat /initrd.img")
    uid, gid = _ids(built.root, "secretary")
    secrets = debugfs("stat /etc/secretary/secrets.env")
    assert re.search(rf"User:\s+{uid}\s+Group:\s+{gid}", secrets) and "Mode:  0600" in secrets, secrets
    assert "regular" in debugfs("stat /opt/secretary/.venv/bin/secretaryd")
    fstab = (built.root / "etc/fstab").read_text()
    assert re.search(r"^LABEL=secretary-root\s+/\s+ext4\s+\S*x-systemd.growfs", fstab, re.M)
