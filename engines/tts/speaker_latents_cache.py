"""On-disk cache of XTTS speaker latents, keyed by the SHA-256 of the voice's reference samples.

Computing a voice's conditioning latents (GPT conditioning latent + speaker
embedding) from its reference recordings takes seconds on a GPU; they depend
only on the recordings' bytes and the model. So they are computed once per
voice and stored as two ``.npy`` arrays plus a JSON record:

    <key>.gpt.npy      gpt_cond_latent   (float32, e.g. [1, 32, 1024])
    <key>.speaker.npy  speaker_embedding (float32, e.g. [1, 512, 1])
    <key>.json         format, key, voice, samples (name, size, sha256), arrays (shape, dtype, sha256)

The key is a SHA-256 over the samples' own SHA-256s, in order, salted with a
model identity: changing a sample (or the checkpoint) changes the key, and
renaming a file does not. Every file is written to a temporary name, fsynced
and renamed into place, the JSON last: an entry without its JSON was never
finished. Reading checks the JSON against the arrays (shape, dtype, hash); an
entry that does not check out is reported, deleted and recomputed.

Needs numpy only (no torch): the worker converts tensors at the edges.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("secretary.engines.tts.latents")

FORMAT_VERSION = 1
_ARRAYS = ("gpt", "speaker")


@dataclass(frozen=True, eq=False)
class SpeakerLatents:
    gpt_cond_latent: np.ndarray
    speaker_embedding: np.ndarray

    def array(self, which: str) -> np.ndarray:
        return self.gpt_cond_latent if which == "gpt" else self.speaker_embedding


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def samples_key(samples: Sequence[Path], salt: str = "") -> str:
    """The cache key of a voice: SHA-256 over its samples' SHA-256s (in order) and ``salt``."""
    if not samples:
        raise ValueError("a voice needs at least one reference sample")
    digest = hashlib.sha256(f"xtts-speaker-latents/{FORMAT_VERSION}/{salt}\n".encode())
    for path in samples:
        digest.update(file_sha256(path).encode() + b"\n")
    return digest.hexdigest()


class SpeakerLatentsCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _paths(self, key: str) -> dict[str, Path]:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"cache key must be a SHA-256 hex digest, got {key!r}")
        return {
            "gpt": self.directory / f"{key}.gpt.npy",
            "speaker": self.directory / f"{key}.speaker.npy",
            "meta": self.directory / f"{key}.json",
        }

    def load(self, key: str) -> SpeakerLatents | None:
        """The cached latents, or ``None`` when absent or corrupt (a corrupt entry is deleted)."""
        paths = self._paths(key)
        if not paths["meta"].exists():
            return None
        try:
            meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
                raise ValueError("record does not match this key or format")
            arrays: dict[str, np.ndarray] = {}
            for which in _ARRAYS:
                expected = meta["arrays"][which]
                raw = paths[which].read_bytes()
                if hashlib.sha256(raw).hexdigest() != expected["sha256"]:
                    raise ValueError(f"{paths[which].name} does not match its recorded SHA-256")
                array = np.load(BytesIO(raw), allow_pickle=False)
                if list(array.shape) != expected["shape"] or str(array.dtype) != expected["dtype"]:
                    raise ValueError(f"{paths[which].name} has shape {array.shape} {array.dtype}, recorded {expected}")
                arrays[which] = array
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("speaker latents cache entry %s is corrupt (%s): deleting it", key[:12], exc)
            self.delete(key)
            return None
        return SpeakerLatents(gpt_cond_latent=arrays["gpt"], speaker_embedding=arrays["speaker"])

    def store(self, key: str, latents: SpeakerLatents, meta: dict[str, Any] | None = None) -> None:
        paths = self._paths(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"format": FORMAT_VERSION, "key": key, "created": time.time(), **(meta or {})}
        record["arrays"] = {}
        for which in _ARRAYS:
            array = np.ascontiguousarray(latents.array(which), dtype=np.float32)
            buffer = BytesIO()
            np.save(buffer, array, allow_pickle=False)
            raw = buffer.getvalue()
            _write_atomic(paths[which], raw)
            record["arrays"][which] = {
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
        _write_atomic(paths["meta"], json.dumps(record, indent=1, sort_keys=True).encode("utf-8"))

    def delete(self, key: str) -> None:
        for path in self._paths(key).values():
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot delete %s: %s", path, exc)

    def get_or_compute(
        self,
        samples: Sequence[Path],
        compute: Callable[[list[Path]], SpeakerLatents],
        *,
        salt: str = "",
        voice: str = "",
    ) -> tuple[SpeakerLatents, bool]:
        """(latents, came_from_cache) for the voice recorded in ``samples``."""
        key = samples_key(samples, salt)
        cached = self.load(key)
        if cached is not None:
            return cached, True
        started = time.monotonic()
        latents = compute(list(samples))
        meta = {
            "voice": voice,
            "salt": salt,
            "compute_s": round(time.monotonic() - started, 3),
            "samples": [{"name": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in samples],
        }
        try:
            self.store(key, latents, meta)
        except OSError as exc:  # a read-only or full disk costs time, not the voice
            log.warning("cannot cache speaker latents for %r in %s: %s", voice, self.directory, exc)
        return latents, False


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

