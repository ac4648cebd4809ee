"""The lock file: the repository's own loads and pins real revisions; a wrong one says which entry and field."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from config.engines_schema import VllmConfig, XttsConfig
from daemon.gpu.models.model_lock import (
    LOCK_NAME,
    LockError,
    default_lock_path,
    load_lock,
    parse_lock,
    repository_file,
    write_lock,
)

REPO = Path(__file__).resolve().parents[3]
HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_the_repository_lock_loads_and_every_pin_is_real_hex() -> None:
    assert default_lock_path() == REPO / LOCK_NAME == repository_file(LOCK_NAME)
    lock = load_lock()
    assert {e.role for e in lock.models} >= {"llm", "tts", "stt"}
    for entry in lock.models:
        assert entry.revision is not None and HEX40.match(entry.revision), entry.name
        if entry.pinned:
            assert all(isinstance(f.size, int) and f.size > 0 and HEX64.match(f.sha256 or "") for f in entry.files)
        else:
            assert entry.unknowns() and entry.approx_bytes, entry.name  # says what is missing, and an estimate
    pinned = {e.name for e in lock.models if e.pinned}
    assert {"xtts-v2", "whisper-large-v3-turbo"} <= pinned
    assert lock.total_bytes == sum(e.total_bytes for e in lock.models) > 9_000_000_000


def test_the_lock_targets_are_where_the_engines_look() -> None:
    lock = load_lock()
    by_role = {e.role: e for e in lock.models}
    assert by_role["llm"].target == VllmConfig(kind="vllm").model  # the vllm backend's default, under models_dir
    assert Path(by_role["tts"].target) == XttsConfig().model_dir
    assert {"config.json", "model.pth", "vocab.json"} <= {f.path for f in by_role["tts"].files}
    assert {"model.bin", "config.json", "tokenizer.json"} <= {f.path for f in by_role["stt"].files}
    assert by_role["stt"].repo == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"


GOOD: dict[str, Any] = {
    "schema": 1,
    "models": [{
        "name": "voice", "role": "tts", "repo": "acme/voice", "revision": "a" * 40, "target": "xtts_v2",
        "state": "pinned", "files": [{"path": "model.pth", "size": 3, "sha256": "b" * 64}],
    }],
}


def broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    entry = data["models"][0]
    if change == "revision":
        entry["revision"] = "main"
    elif change == "sha":
        entry["files"][0]["sha256"] = "XYZ"
    elif change == "pinned-without-hash":
        entry["files"][0]["sha256"] = None
    elif change == "twice":
        data["models"].append(copy.deepcopy(entry))
    elif change == "dotdot":
        entry["target"] = "../etc"
    elif change == "typo":
        entry["sha"] = "x"
    elif change == "schema":
        data["schema"] = 2
    elif change == "role":
        entry["role"] = "vision"
    elif change == "size":
        entry["files"][0]["size"] = -1
    elif change == "nested":
        data["models"].append({**copy.deepcopy(entry), "name": "inner", "target": "xtts_v2/inner"})
    return data


@pytest.mark.parametrize(("change", "message"), [
    ("revision", r"models\[0\] \(voice\)\.revision: 'main' must be a 40-hex commit id"),
    ("sha", r"models\[0\] \(voice\)\.files\[0\]\.sha256: 'XYZ' must be 64 lower-case hex digits"),
    ("pinned-without-hash", r"models\[0\] \(voice\): state is pinned but model\.pth sha256 is missing"),
    ("twice", r"the model name 'voice' appears twice"),
    ("dotdot", r"models\[0\] \(voice\)\.target: '\.\./etc' must be a plain relative path"),
    ("typo", r"models\[0\] \(voice\): unknown field 'sha'"),
    ("schema", r"schema is 2; this version reads schema 1"),
    ("role", r"models\[0\] \(voice\)\.role: 'vision' is not one of llm, tts, stt, lora"),
    ("size", r"files\[0\]\.size: -1 must be a whole number of bytes"),
    ("nested", r"the target 'xtts_v2/inner' is used by two entries"),
])
def test_a_wrong_lock_names_the_entry_and_field(change: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(LockError, match=message):
        parse_lock(broken(change), tmp_path / LOCK_NAME)


def test_an_unreadable_lock_says_why(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="the lock file does not exist"):
        load_lock(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"schema": 1,\n "models": [}')
    with pytest.raises(LockError, match=r"bad.json: not valid JSON at line 2 column"):
        load_lock(tmp_path / "bad.json")


def test_write_lock_round_trips_and_leaves_no_temporary(tmp_path: Path) -> None:
    lock = parse_lock(GOOD, tmp_path / LOCK_NAME)
    write_lock(lock, tmp_path / LOCK_NAME)
    assert load_lock(tmp_path / LOCK_NAME) == lock
    assert json.loads((tmp_path / LOCK_NAME).read_text())["models"][0]["files"] == GOOD["models"][0]["files"]
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME]


def test_select_names_unknown_models(tmp_path: Path) -> None:
    lock = parse_lock(GOOD, tmp_path / LOCK_NAME)
    assert lock.select(["voice"]).models == lock.models
    with pytest.raises(LockError, match=r"no model named 'llm' \(known: voice\)"):
        lock.select(["llm"])
