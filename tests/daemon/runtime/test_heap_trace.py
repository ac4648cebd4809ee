"""``SECRETARY_TRACEMALLOC``: off by default; on, each SIGUSR2 writes a heap snapshot that shows what grew.

The traced runs happen in a child process, so this test process is never traced. ``tests/faults/test_soak_short.py``
does the same through a real ``secretaryd``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from daemon.runtime.heap_trace import ENV, MAX_FRAMES, frames_from_env, snapshot_path, trace_heap_from_env

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys, time
    from pathlib import Path
    from daemon.runtime.heap_trace import snapshot_path, trace_heap_from_env

    kept = []

    def grow():
        kept.extend(bytes(1000) + bytes([i % 256]) for i in range(5000))  # about 5 MB that stays

    async def snapshot(directory, number):
        os.kill(os.getpid(), signal.SIGUSR2)
        path = snapshot_path(directory, os.getpid(), number)
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline, "no snapshot"
            await asyncio.sleep(0.02)
        print(path, flush=True)

    async def main(directory):
        trace = trace_heap_from_env(directory, {"SECRETARY_TRACEMALLOC": "4"})
        assert trace is not None
        await snapshot(directory, 1)
        grow()
        await snapshot(directory, 2)
        assert trace.taken == 2

    asyncio.run(main(Path(sys.argv[1])))
""")


@pytest.mark.parametrize("raw, frames", [("", 0), ("0", 0), (" 1 ", 1), ("8", 8), (str(MAX_FRAMES), MAX_FRAMES)])
def test_the_variable_is_a_frame_count_or_off(raw: str, frames: int) -> None:
    assert frames_from_env({ENV: raw}) == frames
    assert frames_from_env({}) == 0


@pytest.mark.parametrize("raw", ["yes", "-1", "1.5", str(MAX_FRAMES + 1)])
def test_a_bad_value_says_what_is_allowed(raw: str) -> None:
    with pytest.raises(ValueError, match=rf"{ENV}=.*set 1\.\.{MAX_FRAMES}.*0 / unset for no tracing"):
        frames_from_env({ENV: raw})


@pytest.mark.parametrize("environ", [{}, {ENV: "0"}, {ENV: "lots"}])
async def test_off_or_bad_nothing_is_traced_and_sigusr2_is_left_alone(
    environ: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "secretary.heap_trace")
    assert trace_heap_from_env(tmp_path, environ, asyncio.get_running_loop()) is None
    assert not tracemalloc.is_tracing()
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    assert list(tmp_path.iterdir()) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ([f"{ENV}='lots' is not a frame count: set 1..{MAX_FRAMES} (traceback frames kept per "
                       "allocation), or 0 / unset for no tracing; the daemon runs without tracing"]
                      if environ.get(ENV) == "lots" else [])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_each_sigusr2_writes_a_snapshot_whose_difference_shows_the_growth(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], cwd=REPO, capture_output=True,
                          text=True, timeout=150, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    early, late = (Path(line) for line in done.stdout.split())
    pid = int(early.name.split("-")[1])
    assert (early, late) == (snapshot_path(tmp_path / "run", pid, 1), snapshot_path(tmp_path / "run", pid, 2))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [early.name, late.name]  # no .tmp left behind

    before, after = tracemalloc.Snapshot.load(str(early)), tracemalloc.Snapshot.load(str(late))
    assert after.traceback_limit == 4
    top = after.compare_to(before, "lineno")[0]
    frame = top.traceback[0]
    assert (Path(frame.filename).name, frame.lineno) == ("child.py", 9), top  # the line in grow() that keeps bytes
    assert 5_000_000 <= top.size_diff <= 6_500_000 and top.count_diff >= 5000, top
