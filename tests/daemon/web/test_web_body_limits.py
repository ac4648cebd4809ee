"""Oversized bodies against a real secretaryd process: eight concurrent 31 MB posts must not grow it.

Before the limits the app took 32 MB per request from anyone and ``POST /login``
read its body before the throttle: eight such posts grew the daemon from 468 to
1071 MB while its event loop (the 20 ms line clock's too) copied them in. Also
here: the first-boot password stays out of the journal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from daemon.tools.private_broker import MosquittoBroker
from daemon.web.auth import PasswordStore
from daemon.web.web_service import password_path
from tests.daemon.web.web_daemon import free_port
from tests.support.daemon_runner import write_config

pytestmark = pytest.mark.slow

OVERSIZED = 31 * 1024 * 1024
CONCURRENT = 8
MAX_GROWTH_BYTES = 24 * 1024 * 1024


@contextmanager
def running_daemon(config: Path, env: dict[str, str], stderr: Path, root: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """secretaryd as its own process (from ``root``, the repository by default), stopped with SIGTERM."""
    with stderr.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "daemon.main", "--config", str(config)],
                                   cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def wait_serving(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = await reader.read(4096)
            writer.close()
            if b" 200 " in answer.split(b"\r\n", 1)[0]:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("secretaryd's web page did not come up")


async def oversized_post(port: int, path: str, size: int = OVERSIZED) -> tuple[int, int]:
    """POST ``size`` bytes for real, as fast as the server takes them; (status, bytes sent when it answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {size}\r\n\r\n".encode())
    sent = 0
    chunk = b"password=" + b"x" * (256 * 1024 - 9)

    async def send() -> None:
        nonlocal sent
        try:
            while sent < size:
                piece = chunk[: size - sent]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except OSError:
            pass  # the server closed after answering

    sender = asyncio.create_task(send())
    try:
        line = await asyncio.wait_for(reader.readline(), 60)
        at_answer = sent
        await asyncio.wait_for(sender, 60)
    finally:
        sender.cancel()
        writer.close()
    return int(line.split(b" ", 2)[1]) if line else 0, at_answer


async def settled(pid: int, timeout_s: float = 60.0) -> None:
    """Wait until the daemon's RSS holds still (its engines done loading), so their growth is not counted."""
    process = psutil.Process(pid)
    steady_since = time.monotonic()
    last = process.memory_info().rss
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        rss = process.memory_info().rss
        if abs(rss - last) > 1024 * 1024:
            steady_since = time.monotonic()
            last = rss
        elif time.monotonic() - steady_since >= 3.0:
            return
    raise TimeoutError("secretaryd's memory never settled")


async def rss_under_attack(pid: int, port: int, path: str = "/login") -> tuple[int, int, list[tuple[int, int]]]:
    """(RSS before, peak RSS while eight 31 MB posts run, [(status, bytes sent at the answer)])."""
    process = psutil.Process(pid)
    before = process.memory_info().rss
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    results = await asyncio.gather(*(oversized_post(port, path) for _ in range(CONCURRENT)))
    await asyncio.sleep(0.5)
    done.set()
    await sampler
    return before, max(peak, process.memory_info().rss), list(results)


async def test_eight_concurrent_31_mb_posts_do_not_grow_the_daemon(broker: MosquittoBroker, tmp_path: Path,
                                                                   daemon_env: dict[str, str]) -> None:
    port = free_port()
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data",
                          extra=f"web:\n  listen: 127.0.0.1:{port}\n")
    await asyncio.to_thread(PasswordStore(password_path(tmp_path / "data")).set_password, "correct horse battery")
    with running_daemon(config, daemon_env, tmp_path / "stderr.log") as process:
        await wait_serving(port)
        await settled(process.pid)
        before, peak, results = await rss_under_attack(process.pid, port)
        print(f"\nsecretaryd RSS {before / 2**20:.0f} MB -> peak {peak / 2**20:.0f} MB under {CONCURRENT} "
              f"concurrent {OVERSIZED // 2**20} MB posts to /login")
        assert [status for status, _ in results] == [413] * CONCURRENT
        assert peak - before < MAX_GROWTH_BYTES, (before, peak)
        assert process.poll() is None


async def test_the_generated_password_stays_out_of_the_journal(broker: MosquittoBroker, tmp_path: Path,
                                                               daemon_env: dict[str, str]) -> None:
    """Under systemd (JOURNAL_STREAM names stderr) the password is not printed; on a terminal it would be."""
    port = free_port()
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data_dir, extra=f"web:\n  listen: 127.0.0.1:{port}\n")
    journal = tmp_path / "journal.log"
    journal.touch()
    info = os.stat(journal)
    env = {**daemon_env, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
    with running_daemon(config, env, journal):
        await wait_serving(port)
    text = journal.read_text()
    store = PasswordStore(password_path(data_dir))
    assert store.is_set() and store.generated is True
    assert "web page's password is" not in text
    assert "set your own with `secretary web password`" in text
