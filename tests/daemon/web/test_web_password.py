"""The web password: printed once at first start, set with `secretary web password`, which signs sessions out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from daemon.web.auth import PasswordStore
from daemon.web.web_service import password_path
from tests.daemon.web.web_daemon import PASSWORD, free_port, web_daemon
from tests.support.daemon_runner import write_config

pytestmark = pytest.mark.slow


def _set_password(config: Path, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "web", "password", "--config", str(config)],
                          input=password + "\n", capture_output=True, text=True, timeout=60)


async def test_first_start_prints_a_password_once(broker: MosquittoBroker, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data",
                          extra=f"web:\n  listen: 127.0.0.1:{free_port()}\n")
    for run in range(2):
        app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
        task = asyncio.create_task(app.run())
        store = PasswordStore(password_path(tmp_path / "data"))
        for _ in range(100):
            if store.is_set():
                break
            await asyncio.sleep(0.05)
        app.stop()
        await asyncio.wait_for(task, 10)
        printed = [line for line in capsys.readouterr().err.splitlines() if "web page's password is" in line]
        if run == 0:
            assert len(printed) == 1
            assert store.verify(printed[0].rsplit(" ", 1)[1])
        else:
            assert printed == []  # only ever once
    assert oct(password_path(tmp_path / "data").stat().st_mode & 0o777) == "0o600"


async def test_cli_sets_the_password_and_open_sessions_end(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with web_daemon(broker, tmp_path) as box, box.client() as http:
        await box.login(http)
        async with http.get(f"{box.url}/api/state") as response:
            assert response.status == 200
        short = await asyncio.to_thread(_set_password, box.config_path, "short")
        assert short.returncode == 1 and "Not changed" in short.stderr
        done = await asyncio.to_thread(_set_password, box.config_path, "a much better passphrase")
        assert done.returncode == 0, done.stderr
        for _ in range(60):
            async with http.get(f"{box.url}/api/state") as response:
                if response.status == 401:
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the old session still works after the password changed")
        async with http.post(f"{box.url}/login", data={"password": PASSWORD}, allow_redirects=False) as response:
            assert response.status == 401
        await box.login(http, "a much better passphrase")
