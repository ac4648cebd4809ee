"""A mosquitto that wants a username, a password and TLS: a CA and a server certificate made with openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from daemon.tools.private_broker import BrokerUnavailable, MosquittoBroker, free_port, wait_listening


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    if shutil.which("openssl") is None:
        raise BrokerUnavailable("openssl is not installed")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
         cwd=workdir)
    _run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=workdir)
    (workdir / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "2", "-extfile", "san.cnf", cwd=workdir)
    return workdir / "ca.pem", workdir / "server.pem", workdir / "server.key"


class SecureBroker:
    def __init__(self, workdir: Path, username: str, password: str) -> None:
        passwd = shutil.which("mosquitto_passwd")
        if passwd is None:
            raise BrokerUnavailable("mosquitto_passwd is not installed")
        self.binary = MosquittoBroker(workdir=workdir, secured=False).binary  # its binary only
        self.workdir = workdir
        self.port = free_port()
        self.ca_file, cert, key = make_certificates(workdir)
        _run(passwd, "-c", "-b", "passwd", username, password, cwd=workdir)
        self.log = workdir / "mosquitto.log"
        (workdir / "mosquitto.conf").write_text(
            "user root\n"  # read the key and password file as whoever started it (root in CI), no privilege drop
            "per_listener_settings false\nallow_anonymous false\n"
            f"password_file {workdir / 'passwd'}\n"
            f"listener {self.port} 127.0.0.1\n"
            f"cafile {self.ca_file}\ncertfile {cert}\nkeyfile {key}\n"
            "persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 5.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.workdir / "mosquitto.conf")],
                                            stdout=subprocess.DEVNULL, stderr=log)
        if not wait_listening(self.process, self.port, timeout_s,
                              lambda: f"mosquitto exited: {self.log.read_text(errors='replace')}"):
            self.stop()
            raise BrokerUnavailable(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> "SecureBroker":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
