"""sd_notify on a real unix datagram socket: READY, STATUS, WATCHDOG only while the loop is healthy, STOPPING."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.runtime.service import ServiceReport, ServiceState, ServiceStatus
from daemon.runtime.systemd_notify import SystemdNotifier, WatchdogService
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import secretaryd_command, write_config


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


def receive_all(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def collect_until(sock: socket.socket, predicate, timeout: float) -> list[str]:  # type: ignore[no-untyped-def]
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += receive_all(sock)
        if predicate(got):
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"not seen within {timeout} s; got {got}")


async def test_daemon_speaks_notify_protocol(broker: MosquittoBroker, tmp_path: Path, daemon_env: dict[str, str], notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    env = {**daemon_env, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen(secretaryd_command(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got = await collect_until(sock, lambda g: any(m.startswith("READY=1") for m in g) and sum(m == "WATCHDOG=1" for m in g) >= 3, 30)  # the engines load first: slow on a loaded machine
        ready = next(m for m in got if m.startswith("READY=1"))
        assert "STATUS=" in ready and "bus running" in ready
        assert any(m.startswith("STATUS=") for m in got)
        proc.send_signal(signal.SIGTERM)
        got = await collect_until(sock, lambda g: "STOPPING=1" in g, 5)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


async def test_abstract_socket_address() -> None:
    name = f"secretary-test-{time.time_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": "@" + name})
        assert notifier.enabled
        notifier.ready("all good")
        assert receive_all(sock) == ["READY=1\nSTATUS=all good"]
    finally:
        sock.close()


def test_no_socket_is_a_no_op() -> None:
    notifier = SystemdNotifier(environ={})
    assert not notifier.enabled and notifier.notify("READY=1") is False and notifier.watchdog_s is None


def test_watchdog_for_another_pid_is_ignored() -> None:
    assert SystemdNotifier(environ={"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None


async def test_watchdog_withheld_while_loop_blocked(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})  # ping every 50 ms
    reports: list[tuple[ServiceState, str]] = []
    report = ServiceReport("watchdog")
    status = ServiceStatus(report, lambda r: reports.append((r.state, r.detail)))
    service = WatchdogService(notifier, max_lag_s=0.1)
    task = asyncio.create_task(service.run(status))
    await collect_until(sock, lambda g: g.count("WATCHDOG=1") >= 2, 3)
    time.sleep(0.6)  # the event loop is blocked: no ping may be sent for this period
    got = receive_all(sock)
    assert got == [], got
    await asyncio.sleep(0.03)
    # The first wake-up after the block is late: no ping for it, the service says why.
    assert service.last_lag_s > 0.4 or any("lagged" in d for _, d in reports)
    assert any(state is ServiceState.DEGRADED and "lagged" in detail for state, detail in reports)
    await collect_until(sock, lambda g: "WATCHDOG=1" in g, 3)  # healthy again: pings resume
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notifier.close()


async def test_watchdog_withheld_when_unhealthy(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    healthy = [True]
    service = WatchdogService(notifier, healthy=lambda: healthy[0])
    task = asyncio.create_task(service.run(ServiceStatus(ServiceReport("watchdog"), lambda r: None)))
    await collect_until(sock, lambda g: "WATCHDOG=1" in g, 3)
    healthy[0] = False
    await asyncio.sleep(0.06)
    receive_all(sock)
    await asyncio.sleep(0.3)
    assert receive_all(sock) == []
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    notifier.close()
