"""Installing the GPU models from a stand-in Hub with the real huggingface_hub client: resume, verify, disk, atomic."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from daemon.gpu.models.file_checks import MARKER, verify_files
from daemon.gpu.models.hub_fetch import PART_SUFFIX
from daemon.gpu.models.lock_pin import pin_lock
from daemon.gpu.models.model_install import STAGING, ModelInstallError, install_models
from daemon.gpu.models.model_lock import ModelLock, load_lock, write_lock
from tests.support.hf_hub_standin import StandinHub, owner_shell, write_lock_for
from tests.support.small_disk import FILLER, fill, small_tmpfs

MB = 1024 * 1024
BIG = 12 * MB  # more than huggingface_hub's 10 MiB download chunk, so a cut transfer leaves a part on disk
VOICE = "acme/tiny-voice"


def voice_files() -> dict[str, bytes]:
    return {"config.json": b'{"model": "tiny"}\n', "model.pth": os.urandom(BIG), "vocab.json": b'{"a": 1}\n'}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinHub]:
    owner_shell(monkeypatch)
    with StandinHub() as running:
        running.add_repo(VOICE, voice_files(), lfs={"model.pth"})
        yield running


def voice_lock(tmp_path: Path, hub: StandinHub, *, pinned: bool = True) -> ModelLock:
    return load_lock(write_lock_for(tmp_path / "lock.json", hub, {"tiny-voice": (VOICE, "voices/tiny")}, pinned=pinned))


def served(hub: StandinHub, path: str) -> bytes:
    return hub.repos[VOICE].files[path].data


def test_tiny_models_install_verify_and_a_rerun_asks_nothing(hub: StandinHub, tmp_path: Path) -> None:
    lock = voice_lock(tmp_path, hub)
    out = io.StringIO()
    ready = install_models(lock, tmp_path / "models", endpoint=hub.url, out=out)
    target = tmp_path / "models" / "voices" / "tiny"
    assert ready == [target]
    assert (target / "model.pth").read_bytes() == served(hub, "model.pth")
    assert verify_files(lock.models[0].files, target, "verify")[0] == []
    assert (target / MARKER).is_file() and not (tmp_path / "models" / STAGING).exists()
    assert any(r.path == f"/{VOICE}/resolve/{hub.repos[VOICE].commit}/config.json" for r in hub.requests)
    assert hub.gets("model.pth") and hub.gets("model.pth")[0].path.startswith("/cdn/")  # LFS bytes from the CDN
    seen = len(hub.requests)
    again = io.StringIO()
    assert install_models(lock, tmp_path / "models", endpoint=hub.url, out=again) == [target]
    assert len(hub.requests) == seen, hub.requests[seen:]  # idempotent: not even a HEAD
    assert "ready in" in again.getvalue()


def test_a_dropped_connection_is_continued_by_the_next_run(hub: StandinHub, tmp_path: Path) -> None:
    lock = voice_lock(tmp_path, hub)
    hub.drop_after["model.pth"] = 11 * MB  # the connection drops...
    hub.fail_status["model.pth"] = [500]  # ...and the client's own retry fails: the run stops
    with pytest.raises(ModelInstallError, match="continues the file where it stopped") as failed:
        install_models(lock, tmp_path / "models", endpoint=hub.url, out=io.StringIO())
    assert "HTTP 500" in str(failed.value)
    part = tmp_path / "models" / STAGING / "tiny-voice" / ("model.pth" + PART_SUFFIX)
    kept = part.stat().st_size
    assert 0 < kept < BIG
    assert not (tmp_path / "models" / "voices").exists()  # nothing half-fetched where the engine looks
    before = len(hub.gets("model.pth"))
    out = io.StringIO()
    install_models(lock, tmp_path / "models", endpoint=hub.url, out=out)
    resumed = hub.gets("model.pth")[before:]
    assert [r.range for r in resumed] == [f"bytes={kept}-"]  # only the rest was asked for
    assert (tmp_path / "models" / "voices" / "tiny" / "model.pth").read_bytes() == served(hub, "model.pth")
    assert "continuing model.pth" in out.getvalue()


def test_a_dropped_connection_is_resumed_within_the_run(hub: StandinHub, tmp_path: Path) -> None:
    hub.drop_after["model.pth"] = 11 * MB
    install_models(voice_lock(tmp_path, hub), tmp_path / "models", endpoint=hub.url, out=io.StringIO())
    ranges = [r.range for r in hub.gets("model.pth")]
    assert ranges[0] is None and ranges[1] == f"bytes={10 * MB}-", ranges
    assert (tmp_path / "models" / "voices" / "tiny" / "model.pth").read_bytes() == served(hub, "model.pth")


def test_a_corrupted_file_is_refused_and_never_moved_in(hub: StandinHub, tmp_path: Path) -> None:
    lock = voice_lock(tmp_path, hub)
    good = served(hub, "model.pth")
    hub.corrupt["model.pth"] = good[:-1] + bytes([good[-1] ^ 0xFF])  # same size, one byte changed
    with pytest.raises(ModelInstallError) as refused:
        install_models(lock, tmp_path / "models", endpoint=hub.url, out=io.StringIO())
    message = str(refused.value)
    assert "tiny-voice" in message and "model.pth has sha256" in message and "does not match the lock" in message
    assert "Nothing was moved" in message and "run again" in message
    assert not (tmp_path / "models" / "voices").exists()
    assert not (tmp_path / "models" / STAGING / "tiny-voice" / "model.pth").exists()  # fetched anew next time
    del hub.corrupt["model.pth"]
    install_models(lock, tmp_path / "models", endpoint=hub.url, out=io.StringIO())
    assert (tmp_path / "models" / "voices" / "tiny" / "model.pth").read_bytes() == good


def test_too_little_disk_is_refused_before_a_byte_is_fetched(hub: StandinHub, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        with pytest.raises(ModelInstallError, match=r"not enough disk space in .*disk.* still to write") as refused:
            install_models(voice_lock(tmp_path, hub), disk / "models", endpoint=hub.url, out=io.StringIO())
        assert "nothing was written" in str(refused.value)
        assert hub.requests == []
        assert not (disk / "models").exists() or list((disk / "models").rglob("*")) == []


def test_a_disk_filling_up_midway_fails_cleanly_and_a_rerun_finishes(hub: StandinHub, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "20m") as disk:
        models = disk / "models"
        filled: list[Path] = []
        hub.before_get = lambda path: filled.append(fill(disk)) if path == "model.pth" and not filled else None
        with pytest.raises(ModelInstallError, match="the disk filled up while fetching") as full:
            install_models(voice_lock(tmp_path, hub), models, endpoint=hub.url, out=io.StringIO(), margin_bytes=0)
        assert "Nothing was moved into the models directory" in str(full.value)
        assert not (models / "voices").exists()
        (disk / FILLER).unlink()
        install_models(voice_lock(tmp_path, hub), models, endpoint=hub.url, out=io.StringIO(), margin_bytes=0)
        assert (models / "voices" / "tiny" / "model.pth").read_bytes() == served(hub, "model.pth")


def test_hf_endpoint_is_honoured(hub: StandinHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    install_models(voice_lock(tmp_path, hub), tmp_path / "models", out=io.StringIO())
    assert hub.gets("config.json")
    assert (tmp_path / "models" / "voices" / "tiny" / "vocab.json").read_bytes() == served(hub, "vocab.json")


def test_an_unverified_entry_is_refused_unless_allowed_then_checked_against_the_hub(
    hub: StandinHub, tmp_path: Path,
) -> None:
    lock = voice_lock(tmp_path, hub, pinned=False)
    with pytest.raises(ModelInstallError, match="does not pin tiny-voice") as refused:
        install_models(lock, tmp_path / "models", endpoint=hub.url, out=io.StringIO())
    assert "--allow-unverified" in str(refused.value) and "secretary gpu models --lock" in str(refused.value)
    assert hub.requests == []
    hub.corrupt["vocab.json"] = b'{"b": 2}\n'  # a small file: checked against its git blob id
    with pytest.raises(ModelInstallError, match="vocab.json has git blob id"):
        install_models(lock, tmp_path / "models", endpoint=hub.url, out=io.StringIO(), allow_unverified=True)
    del hub.corrupt["vocab.json"]
    target, = install_models(lock, tmp_path / "models", endpoint=hub.url, out=io.StringIO(), allow_unverified=True)
    assert (target / "model.pth").read_bytes() == served(hub, "model.pth")


def test_dry_run_prints_every_url_and_writes_nothing(hub: StandinHub, tmp_path: Path) -> None:
    out = io.StringIO()
    assert install_models(voice_lock(tmp_path, hub), tmp_path / "models", endpoint=hub.url, dry_run=True, out=out) == []
    commit = hub.repos[VOICE].commit
    for name in ("config.json", "model.pth", "vocab.json"):
        assert f"would fetch {hub.url}/{VOICE}/resolve/{commit}/{name} -> {tmp_path}/models/{STAGING}/tiny-voice/{name}" \
            in out.getvalue()
    assert f"move {tmp_path}/models/{STAGING}/tiny-voice -> {tmp_path}/models/voices/tiny" in out.getvalue()
    assert hub.requests == [] and not (tmp_path / "models").exists()


def test_lock_pin_fills_an_unverified_entry_from_the_hub(hub: StandinHub, tmp_path: Path) -> None:
    lock = voice_lock(tmp_path, hub, pinned=False)
    pinned = pin_lock(lock, endpoint=hub.url, out=io.StringIO())
    write_lock(pinned, lock.path)
    entry = load_lock(lock.path).models[0]
    assert entry.pinned and entry.revision == hub.repos[VOICE].commit
    assert {(f.path, f.size, f.sha256) for f in entry.files} == {
        (p, len(f.data), f.sha256) for p, f in hub.repos[VOICE].files.items()}
    assert "secretary gpu models --lock from" in entry.source
    assert not any(r.path.endswith("/model.pth") or r.path.startswith("/cdn/") for r in hub.requests)  # LFS: metadata


def test_lock_pin_refuses_to_overwrite_a_different_pin(hub: StandinHub, tmp_path: Path) -> None:
    lock = voice_lock(tmp_path, hub)
    hub.repos[VOICE].files["vocab.json"].data = b'{"changed": true}\n'
    with pytest.raises(ModelInstallError, match="not overwriting a pin"):
        pin_lock(lock, endpoint=hub.url, out=io.StringIO())


def test_hf_hub_download_alone_starts_a_dropped_file_over(hub: StandinHub, tmp_path: Path) -> None:
    """Why the install keeps its own ``.part``: huggingface_hub 2.4.0 deletes its ``.incomplete`` on failure."""
    commit = hub.repos[VOICE].commit
    hub.drop_after["model.pth"] = 11 * MB
    hub.fail_status["model.pth"] = [500]
    where = {"local_dir": tmp_path / "dl", "cache_dir": tmp_path / "cache", "endpoint": hub.url}
    with pytest.raises(Exception):  # noqa: B017 - whichever error the client raises, the run failed
        hf_hub_download(VOICE, "model.pth", revision=commit, **where)
    assert list(tmp_path.rglob("*.incomplete")) == []  # the partial file is gone
    hf_hub_download(VOICE, "model.pth", revision=commit, **where)
    assert hub.gets("model.pth")[-1].range is None  # the whole file again, from byte 0
