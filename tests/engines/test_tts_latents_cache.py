"""Speaker latents cache: keyed by the samples' content, atomic, self-healing; no torch needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendUnavailable
from engines.tts.speaker_latents_cache import SpeakerLatents, SpeakerLatentsCache, samples_key
from engines.tts.xtts_inference import expand_reference_samples


def _samples(directory: Path, contents: list[bytes]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, content in enumerate(contents):
        path = directory / f"sample{n}.wav"
        path.write_bytes(content)
        paths.append(path)
    return paths


def _latents(seed: int) -> SpeakerLatents:
    rng = np.random.default_rng(seed)
    return SpeakerLatents(
        gpt_cond_latent=rng.standard_normal((1, 32, 1024)).astype(np.float32),
        speaker_embedding=rng.standard_normal((1, 512, 1)).astype(np.float32),
    )


class Computer:
    """Stands in for XTTS's get_conditioning_latents and counts the calls."""

    def __init__(self) -> None:
        self.calls: list[list[Path]] = []

    def __call__(self, samples: list[Path]) -> SpeakerLatents:
        self.calls.append(samples)
        return _latents(len(self.calls))


def test_key_depends_on_content_order_and_salt_not_on_names(tmp_path: Path) -> None:
    a = _samples(tmp_path / "a", [b"one", b"two", b"three"])
    renamed = _samples(tmp_path / "b", [b"one", b"two", b"three"])
    assert samples_key(a) == samples_key(renamed)
    assert samples_key(a) != samples_key(list(reversed(a)))
    assert samples_key(a) != samples_key(a, salt="another-checkpoint")
    changed = _samples(tmp_path / "c", [b"one", b"two", b"three!"])
    assert samples_key(a) != samples_key(changed)
    assert len(samples_key(a)) == 64
    with pytest.raises(ValueError):
        samples_key([])


def test_computed_once_then_served_from_disk(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "voice", [b"a" * 100, b"b" * 100, b"c" * 100])
    compute = Computer()
    cache = SpeakerLatentsCache(tmp_path / "cache")
    first, cached = cache.get_or_compute(samples, compute, salt="m1", voice="anna")
    assert not cached and len(compute.calls) == 1
    # a new cache object (a restarted worker) reads it back, bit for bit
    again, cached = SpeakerLatentsCache(tmp_path / "cache").get_or_compute(samples, compute, salt="m1", voice="anna")
    assert cached and len(compute.calls) == 1
    assert np.array_equal(again.gpt_cond_latent, first.gpt_cond_latent)
    assert np.array_equal(again.speaker_embedding, first.speaker_embedding)
    assert again.gpt_cond_latent.dtype == np.float32 and again.gpt_cond_latent.shape == (1, 32, 1024)
    key = samples_key(samples, "m1")
    meta = json.loads((tmp_path / "cache" / f"{key}.json").read_text())
    assert meta["voice"] == "anna" and [s["name"] for s in meta["samples"]] == ["sample0.wav", "sample1.wav", "sample2.wav"]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]  # no temp files left
    # a changed sample means a new key: recomputed
    samples[2].write_bytes(b"C" * 100)
    _, cached = cache.get_or_compute(samples, compute, salt="m1", voice="anna")
    assert not cached and len(compute.calls) == 2


@pytest.mark.parametrize("damage", ["truncate_array", "flip_byte", "bad_json", "missing_array", "wrong_key"])
def test_corrupt_entries_are_deleted_and_recomputed(tmp_path: Path, damage: str) -> None:
    samples = _samples(tmp_path / "voice", [b"x", b"y", b"z"])
    cache = SpeakerLatentsCache(tmp_path / "cache")
    compute = Computer()
    cache.get_or_compute(samples, compute)
    key = samples_key(samples)
    gpt, meta = tmp_path / "cache" / f"{key}.gpt.npy", tmp_path / "cache" / f"{key}.json"
    if damage == "truncate_array":
        gpt.write_bytes(gpt.read_bytes()[:200])
    elif damage == "flip_byte":
        raw = bytearray(gpt.read_bytes())
        raw[-1] ^= 0xFF
        gpt.write_bytes(bytes(raw))
    elif damage == "bad_json":
        meta.write_text("{not json")
    elif damage == "missing_array":
        gpt.unlink()
    else:
        record = json.loads(meta.read_text())
        record["key"] = "0" * 64
        meta.write_text(json.dumps(record))
    assert cache.load(key) is None
    assert not meta.exists()  # the bad entry is gone, not left to fail again
    latents, cached = cache.get_or_compute(samples, compute)
    assert not cached and len(compute.calls) == 2
    assert cache.load(key) is not None and np.array_equal(cache.load(key).speaker_embedding, latents.speaker_embedding)  # type: ignore[union-attr]


def test_an_entry_without_its_record_is_not_used(tmp_path: Path) -> None:
    # arrays written, crash before the JSON (the commit marker): treated as absent
    samples = _samples(tmp_path / "voice", [b"1", b"2", b"3"])
    cache = SpeakerLatentsCache(tmp_path / "cache")
    key = samples_key(samples)
    cache.store(key, _latents(7))
    (tmp_path / "cache" / f"{key}.json").unlink()
    assert cache.load(key) is None


def test_unwritable_cache_still_returns_latents(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "voice", [b"1", b"2", b"3"])
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    latents, cached = SpeakerLatentsCache(blocked / "cache").get_or_compute(samples, Computer())
    assert not cached and latents.gpt_cond_latent.shape == (1, 32, 1024)


def test_reference_samples_need_three(tmp_path: Path) -> None:
    voice = tmp_path / "anna"
    _samples(voice, [b"1", b"2"])
    (voice / "notes.txt").write_text("not audio")
    extra = tmp_path / "extra.wav"
    extra.write_bytes(b"3")
    with pytest.raises(BackendUnavailable, match="'anna' has 2 reference sample\\(s\\), needs at least 3"):
        expand_reference_samples("anna", [str(voice)], 3)
    found = expand_reference_samples("anna", [str(voice), str(extra)], 3)
    assert [p.name for p in found] == ["sample0.wav", "sample1.wav", "extra.wav"]
    with pytest.raises(BackendUnavailable, match="does not exist"):
        expand_reference_samples("anna", [str(tmp_path / "nope.wav")], 1)


def test_cache_files_are_replaced_atomically(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "voice", [b"1", b"2", b"3"])
    cache = SpeakerLatentsCache(tmp_path / "cache")
    key = samples_key(samples)
    cache.store(key, _latents(1))
    inode_before = os.stat(tmp_path / "cache" / f"{key}.gpt.npy").st_ino
    cache.store(key, _latents(2))
    assert os.stat(tmp_path / "cache" / f"{key}.gpt.npy").st_ino != inode_before  # a new file renamed over the old
    assert np.array_equal(cache.load(key).gpt_cond_latent, _latents(2).gpt_cond_latent)  # type: ignore[union-attr]
