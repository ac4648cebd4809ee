"""`secretary doctor` on the web page's posture: HTTPS and its certificate, and the first-boot password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config.loader import load_config
from daemon.tools.private_broker import MosquittoBroker
from daemon.web.auth import PasswordStore
from daemon.web.transport.certificate import ensure_certificate, install_pair
from daemon.web.web_service import password_path
from tests.daemon.web.test_web_transport_units import issued_pair
from tests.support.daemon_runner import write_config

REPO = Path(__file__).resolve().parents[3]


def _web_lines(config: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "doctor", "--config", str(config)],
                            capture_output=True, text=True, env=env, timeout=60)
    return [line for line in result.stdout.splitlines() if line[5:].startswith(("web tls", "web login", "web "))]


def test_doctor_reports_tls_its_certificate_and_the_generated_password(broker: MosquittoBroker, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", broker, data_dir, extra="web:\n  listen: 0.0.0.0:18443\n")
    lines = _web_lines(config)
    assert lines[0].startswith("WARN web tls    HTTPS on 0.0.0.0:18443, but ") and "secretaryd makes it" in lines[0]
    assert lines[1].startswith("WARN web login  no web password yet")

    settings = load_config(config, {}).settings
    info = ensure_certificate(settings)
    PasswordStore(password_path(data_dir)).ensure_initial()
    tls, login = _web_lines(config)
    assert tls == (f"OK   web tls    HTTPS on 0.0.0.0:18443; self-signed certificate, SHA-256 {info.fingerprint}, "
                   f"valid until {info.not_after:%Y-%m-%d} ({int(info.days_left())} days)")
    assert login.startswith("WARN web login  the web password is still the one generated at first boot")

    PasswordStore(password_path(data_dir)).set_password("the owner's own password")
    cert, key = settings.web.tls_files(data_dir)
    install_pair(cert, key, *issued_pair(days=10))
    tls, login = _web_lines(config)
    assert tls.startswith("WARN web tls    HTTPS on 0.0.0.0:18443; CN=secretary.example.org certificate")
    assert "(9 days): upload a new one" in tls
    assert login == "OK   web login  the web password was set by the owner"

    expired_cert, expired_key = issued_pair(days=-1, start_days=-30)
    cert.write_bytes(expired_cert)
    key.write_bytes(expired_key)
    assert _web_lines(config)[0].startswith("FAIL web tls ")


def test_doctor_on_a_loopback_page_says_plain_http_is_local(broker: MosquittoBroker, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data", extra="web:\n  listen: 127.0.0.1:18080\n")
    assert _web_lines(config)[0] == "OK   web tls    plain HTTP on 127.0.0.1:18080, this machine only (web.tls.mode auto)"
