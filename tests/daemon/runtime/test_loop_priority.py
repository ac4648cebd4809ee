"""``audio.realtime_priority``: the daemon's loop thread goes SCHED_FIFO on request, nothing else does.

Each daemon run happens in its own thread, so the test process's own thread never changes policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import daemon.app
import daemon.main as daemon_main
import daemon.runtime.logging_setup
from config.errors import ConfigError
from config.loader import parse_config_text
from daemon.runtime.loop_priority import WORKER_THREAD_PREFIX, apply_loop_priority
from drivers.audio.thread_priority import current_policy

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux per-thread scheduling")

RESET_ON_FORK = getattr(os, "SCHED_RESET_ON_FORK", 0)


def in_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    t = threading.Thread(target=run, name="test-daemon-main")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


def thread_state() -> dict[str, Any]:
    """The calling thread: name, policy (without the reset-on-fork flag), priority, nice."""
    policy = os.sched_getscheduler(0)
    return {
        "name": threading.current_thread().name,
        "policy": policy & ~RESET_ON_FORK,
        "reset_on_fork": bool(policy & RESET_ON_FORK),
        "priority": os.sched_getparam(0).sched_priority,
        "nice": os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
        "named_policy": current_policy(),
    }


def child_process_policy() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


class ProbeApp:
    """Stands in for SecretaryApp: records what scheduling its loop, workers and children got."""

    seen: dict[str, Any] = {}

    def __init__(self, loaded: Any, config_path: Path | None = None) -> None:
        self.loaded = loaded

    async def run(self) -> None:
        seen = ProbeApp.seen
        seen["loop"] = thread_state()
        seen["executor"] = await asyncio.to_thread(thread_state)
        direct: list[dict[str, Any]] = []
        plain = threading.Thread(target=lambda: direct.append(thread_state()), name="plain-thread")
        plain.start()
        plain.join()
        seen["plain_thread"] = direct[0]
        seen["child_process_policy"] = child_process_policy()


@pytest.fixture
def probe_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], tuple[int, dict[str, Any]]]:
    """Run ``secretaryd --config`` with ``audio_yaml`` in a fresh thread, the app replaced by ProbeApp."""
    # daemon.main imports these when it runs (so `secretaryd --version` stays light): patch them at their source
    monkeypatch.setattr(daemon.app, "SecretaryApp", ProbeApp)
    monkeypatch.setattr(daemon.runtime.logging_setup, "configure_logging", lambda config: None)  # keep caplog's handler

    def run(audio_yaml: str) -> tuple[int, dict[str, Any]]:
        config = tmp_path / "config.yaml"
        config.write_text(f"box_id: b\ndata_dir: {tmp_path / 'data'}\n{audio_yaml}", encoding="utf-8")
        ProbeApp.seen = {}
        rc = in_thread(lambda: daemon_main.main(["--config", str(config)]))
        return rc, ProbeApp.seen

    return run


def audio_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "secretary.audio" and r.levelno >= logging.WARNING]


def test_unset_changes_nothing(probe_daemon: Callable[[str], tuple[int, dict[str, Any]]],
                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="secretary")
    before = thread_state()
    rc, seen = probe_daemon("")
    assert rc == 0
    for where in ("loop", "executor", "plain_thread"):
        assert seen[where]["named_policy"] == "other"
        assert seen[where]["nice"] == before["nice"]
    assert not seen["executor"]["name"].startswith(WORKER_THREAD_PREFIX)  # asyncio's own executor
    assert not [r for r in caplog.records if r.name == "secretary.audio"]


def test_unset_leaves_the_loop_alone() -> None:
    async def check() -> tuple[bool, object]:
        loop = asyncio.get_running_loop()
        return apply_loop_priority(None), getattr(loop, "_default_executor", None)

    applied, executor = in_thread(lambda: asyncio.run(check()))
    assert applied is False and executor is None


def test_refused_logs_one_warning_and_runs_normally(
    probe_daemon: Callable[[str], tuple[int, dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(pid: int, policy: int, param: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    caplog.set_level(logging.INFO, logger="secretary")
    rc, seen = probe_daemon("audio:\n  realtime_priority: 7\n")
    assert rc == 0 and "child_process_policy" in seen  # the app ran to the end
    warnings = audio_warnings(caplog)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "realtime_priority 7 refused" in message and "normal scheduling" in message
    assert "LimitRTPRIO" in message
    for where in ("loop", "executor", "plain_thread"):
        assert seen[where]["named_policy"] == "other"
    assert seen["child_process_policy"] == os.SCHED_OTHER


def test_granted_loop_is_fifo_and_workers_stay_normal(
    probe_daemon: Callable[[str], tuple[int, dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="secretary")
    before = thread_state()
    rc, seen = probe_daemon("audio:\n  realtime_priority: 7\n")
    assert rc == 0
    if seen["loop"]["policy"] != os.SCHED_FIFO:
        assert len(audio_warnings(caplog)) == 1  # no privilege here: the refusal path
        pytest.skip("SCHED_FIFO not permitted for this user (needs CAP_SYS_NICE or RLIMIT_RTPRIO)")
    assert seen["loop"]["priority"] == 7
    assert seen["loop"]["reset_on_fork"] == bool(RESET_ON_FORK)
    assert not audio_warnings(caplog)
    # the loop's default executor: our pool, its initializer put the workers back on SCHED_OTHER
    executor = seen["executor"]
    assert executor["name"].startswith(WORKER_THREAD_PREFIX)
    assert executor["named_policy"] == "other" and executor["priority"] == 0
    assert executor["nice"] == before["nice"]
    if RESET_ON_FORK:
        # threads the loop starts itself (engines.thread_stream) and child processes do not inherit FIFO
        assert seen["plain_thread"]["named_policy"] == "other"
        assert seen["child_process_policy"] == os.SCHED_OTHER
    assert thread_state()["named_policy"] == "other"  # the test's own thread untouched


def test_granted_without_running_the_daemon() -> None:
    """The helper alone, on a private loop: True only when the thread really is SCHED_FIFO."""

    async def check() -> tuple[bool, dict[str, Any], dict[str, Any]]:
        applied = apply_loop_priority(3)
        return applied, thread_state(), await asyncio.to_thread(thread_state)

    applied, loop_state, worker = in_thread(lambda: asyncio.run(check()))
    assert applied == (loop_state["policy"] == os.SCHED_FIFO)
    assert worker["named_policy"] == "other"


def config_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "test.yaml", {})
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize("value", ["0", "100", "-1", "fast", "5.5"])
def test_config_rejects_out_of_range_priority(value: str) -> None:
    found = config_problems(f"box_id: b\naudio:\n  realtime_priority: {value}\n")
    assert len(found) == 1
    problem = found[0]
    assert problem.startswith("audio.realtime_priority: must be null")
    assert "from 1 to 99" in problem and "(line 3)" in problem


@pytest.mark.parametrize(("text", "expected"), [
    ("box_id: b\n", None),
    ("box_id: b\naudio:\n  realtime_priority: null\n", None),
    ("box_id: b\naudio:\n  realtime_priority: 1\n", 1),
    ("box_id: b\naudio:\n  realtime_priority: 99\n", 99),
])
def test_config_accepts_null_and_1_to_99(text: str, expected: int | None) -> None:
    assert parse_config_text(text, "test.yaml", {}).settings.audio.realtime_priority == expected
