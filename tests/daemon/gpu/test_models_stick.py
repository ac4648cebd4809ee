"""A stick for a box with no internet: ``--export`` writes it verified, ``--from`` imports it verified the same way."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.gpu.models.model_export import export_models
from daemon.gpu.models.model_install import STAGING, ModelInstallError, install_models
from daemon.gpu.models.model_lock import LOCK_NAME, ModelLock, load_lock
from tests.support.hf_hub_standin import StandinHub, owner_shell, write_lock_for

VOICE = "acme/tiny-voice"
STT = "acme/tiny-whisper"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinHub]:
    owner_shell(monkeypatch)
    with StandinHub() as running:
        running.add_repo(VOICE, {"config.json": b"{}\n", "model.pth": os.urandom(300_000)}, lfs={"model.pth"})
        running.add_repo(STT, {"model.bin": os.urandom(200_000), "tokenizer.json": b'{"t": 1}\n'}, lfs={"model.bin"})
        yield running


@pytest.fixture
def lock(hub: StandinHub, tmp_path: Path) -> ModelLock:
    return load_lock(write_lock_for(tmp_path / "lock.json", hub, {"voice": (VOICE, "xtts_v2"), "stt": (STT, "whisper")}))


@pytest.fixture
def box_a(hub: StandinHub, lock: ModelLock, tmp_path: Path) -> Path:
    models = tmp_path / "box-a"
    install_models(lock, models, endpoint=hub.url, out=io.StringIO())
    return models


def test_export_then_import_round_trip_without_the_hub(hub: StandinHub, lock: ModelLock, box_a: Path,
                                                       tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    out = io.StringIO()
    written = export_models(lock, box_a, stick, out=out)
    assert written == [stick / "xtts_v2", stick / "whisper"]
    assert (stick / "whisper" / "model.bin").read_bytes() == (box_a / "whisper" / "model.bin").read_bytes()
    described = load_lock(stick / LOCK_NAME)  # the stick says what it holds
    assert [(e.name, e.revision, e.files) for e in described.models] == [(e.name, e.revision, e.files) for e in lock.models]
    assert not (stick / STAGING).exists()
    seen = len(hub.requests)
    ready = install_models(lock, tmp_path / "box-b", from_dir=stick, out=io.StringIO())
    assert ready == [tmp_path / "box-b" / "xtts_v2", tmp_path / "box-b" / "whisper"]
    assert (tmp_path / "box-b" / "xtts_v2" / "model.pth").read_bytes() == hub.repos[VOICE].files["model.pth"].data
    assert len(hub.requests) == seen  # the stick alone
    again = io.StringIO()
    export_models(lock, box_a, stick, out=again)
    assert "voice: already on the stick" in again.getvalue()


def test_a_tampered_stick_is_refused_and_nothing_is_moved_in(lock: ModelLock, box_a: Path, tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    export_models(lock, box_a, stick, out=io.StringIO())
    weights = stick / "whisper" / "model.bin"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelInstallError) as refused:
        install_models(lock, tmp_path / "box-b", from_dir=stick, out=io.StringIO())
    message = str(refused.value)
    assert "stt from the stick" in message and "model.bin has sha256" in message and "write it again with --export" in message
    assert not (tmp_path / "box-b" / "whisper").exists()
    assert (tmp_path / "box-b" / "xtts_v2" / "model.pth").is_file()  # the intact model before it was installed


def test_a_stick_without_the_model_says_what_it_holds(lock: ModelLock, tmp_path: Path) -> None:
    (tmp_path / "stick" / "photos").mkdir(parents=True)
    with pytest.raises(ModelInstallError, match=r"has no xtts_v2/config.json .* \(it holds: photos\)"):
        install_models(lock, tmp_path / "box-b", from_dir=tmp_path / "stick", out=io.StringIO())


def test_export_refuses_a_changed_installed_model(lock: ModelLock, box_a: Path, tmp_path: Path) -> None:
    (box_a / "xtts_v2" / "config.json").write_text('{"edited": true}\n')
    with pytest.raises(ModelInstallError, match=r"the installed voice .* does not match the lock file: config.json"):
        export_models(lock, box_a, tmp_path / "stick", out=io.StringIO())
    assert not (tmp_path / "stick" / "xtts_v2").exists()


def test_export_dry_run_names_every_file(lock: ModelLock, box_a: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    export_models(lock, box_a, tmp_path / "stick", dry_run=True, out=out)
    assert f"would copy {box_a}/whisper/model.bin -> {tmp_path}/stick/whisper/model.bin" in out.getvalue()
    assert f"would write {tmp_path}/stick/{LOCK_NAME}" in out.getvalue()
    assert not (tmp_path / "stick").exists()


def test_an_unverified_model_travels_with_the_hashes_seen_at_install(hub: StandinHub, tmp_path: Path) -> None:
    lock = load_lock(write_lock_for(tmp_path / "lock.json", hub, {"voice": (VOICE, "xtts_v2")}, pinned=False))
    install_models(lock, tmp_path / "box-a", endpoint=hub.url, out=io.StringIO(), allow_unverified=True)
    with pytest.raises(ModelInstallError, match="not pinned in the lock file"):
        export_models(lock, tmp_path / "box-a", tmp_path / "stick", out=io.StringIO())
    export_models(lock, tmp_path / "box-a", tmp_path / "stick", out=io.StringIO(), allow_unverified=True)
    on_stick = json.loads((tmp_path / "stick" / LOCK_NAME).read_text())["models"][0]
    assert on_stick["state"] == "unverified"
    assert {f["path"]: f["sha256"] for f in on_stick["files"]} == {
        p: f.sha256 for p, f in hub.repos[VOICE].files.items()}
    (tmp_path / "stick" / "xtts_v2" / "config.json").write_text("[]\n")  # same size as "{}\n": only the hash tells
    with pytest.raises(ModelInstallError, match="config.json has sha256"):
        install_models(lock, tmp_path / "box-b", from_dir=tmp_path / "stick", out=io.StringIO(), allow_unverified=True)
