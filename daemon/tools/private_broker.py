"""A private mosquitto broker on a loopback port, for `secretary demo` and tests.

It is the real Debian broker, started as a child process with a generated
config; ``restart`` brings it back on the same port (for broker-outage tests).
Secured by default, as on the box: its workdir gets the broker users of
``daemon/tools/broker_users.py`` for one box (``allow_anonymous false``, the
password and ACL files) and ``max_packet_size``; ``mqtt_yaml`` /
``mqtt_fields`` are the config's ``mqtt`` section that logs each client in as
its role, ``login(role)`` a client's user and password. ``secured=False`` is an
open broker (an outside one, e.g. a remote bridge's far end).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.bus_contract.clients import ANONYMOUS, MAX_PACKET_BYTES, BusLogin, Role
from channels.bus_contract.topics import Topics
from daemon.tools.broker_users import BrokerUsers, write_broker_users

CREDENTIALS_FILE = "credentials.env"


class BrokerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(process: subprocess.Popen[bytes], port: int, timeout_s: float, exited: Callable[[], str]) -> bool:
    """Wait until a just-started broker accepts connections on loopback ``port``; False on timeout.

    Raises ``BrokerUnavailable`` with ``exited()`` (what the process said) if it exits first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerUnavailable(exited())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class MosquittoBroker:
    def __init__(
        self, port: int | None = None, workdir: Path | None = None, persistent: bool = False, *,
        secured: bool = True, box_id: str = "test-box", topic_prefix: str = "secretary",
    ) -> None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            raise BrokerUnavailable("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.port = port or free_port()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="secretary-mqtt-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.persistent = persistent  # keep sessions and queued messages across a graceful restart
        self.topics = Topics(topic_prefix, box_id)
        self.users: BrokerUsers | None = (
            write_broker_users(self.workdir, self.topics, self.workdir / CREDENTIALS_FILE) if secured else None
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def secured(self) -> bool:
        return self.users is not None

    def login(self, role: Role) -> BusLogin:
        """The user and password ``role`` connects with (nothing on an open broker)."""
        return BusLogin(role.username, self.users.password(role)) if self.users is not None else ANONYMOUS

    def mqtt_fields(self) -> dict[str, Any]:
        """The config's ``mqtt`` keys for this broker: its URL and, when secured, the credentials file."""
        fields: dict[str, Any] = {"url": self.url}
        if self.users is not None:
            fields["credentials_file"] = str(self.users.credentials_file)
        return fields

    def mqtt_yaml(self, indent: str = "  ") -> str:
        """``mqtt_fields`` as YAML lines under ``mqtt:``."""
        return "".join(f"{indent}{key}: {value}\n" for key, value in self.mqtt_fields().items())

    def start(self, timeout_s: float = 5.0) -> None:
        if self.process is not None and self.process.poll() is None:
            raise BrokerUnavailable(f"this broker is already running (pid {self.process.pid})")
        conf = self.workdir / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if self.users is not None:
            access = (f"allow_anonymous false\npassword_file {self.users.password_file}\n"
                      f"acl_file {self.users.acl_file}\n")
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{access}max_packet_size {MAX_PACKET_BYTES}\nset_tcp_nodelay true\n"
            # Run as whoever started it: started by root, mosquitto would become user mosquitto, who cannot
            # read this private workdir.
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
            + (f"persistence true\npersistence_location {self.workdir}/\n" if self.persistent else "persistence false\n")
            + "log_dest stderr\nlog_type error\nlog_type warning\n",
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        process = self.process

        def exited() -> str:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            return f"mosquitto exited with {process.returncode}: {err.strip()}"

        if not wait_listening(process, self.port, timeout_s, exited):
            self.stop()
            raise BrokerUnavailable(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self, graceful: bool = False) -> None:
        """Stop the broker: SIGKILL by default, SIGTERM (saves persistence) if graceful."""
        if self.process is not None and self.process.poll() is None:
            if graceful:
                self.process.terminate()
            else:
                self.process.kill()
            self.process.wait(timeout=5)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def restart(self, graceful: bool = False) -> None:
        self.stop(graceful)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "MosquittoBroker":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
