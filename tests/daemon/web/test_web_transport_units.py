"""The web page's transport pieces on their own: certificates, the throttle's keys and caps, the config's rules."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from config.loader import load_config
from config.schema import SecretaryConfig, WebConfig
from daemon.web.auth import LoginLimiter, PasswordStore
from daemon.web.transport.certificate import (
    CertificateError,
    check_pair,
    ensure_certificate,
    install_pair,
    make_self_signed,
    read_certificate,
)
from daemon.web.transport.client_address import OVERALL_FREE_ATTEMPTS, LoginThrottle, bucket
from daemon.web.transport.host_check import HostGuard, normalize_host


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def issued_pair(days: float = 90, start_days: float = -1, key_type: str = "ec") -> tuple[bytes, bytes]:
    """A certificate as a CA would issue it (not the box's own), with its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secretary.example.org")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=start_days)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("secretary.example.org")]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _settings(tmp_path: Path, web: dict[str, object] | None = None) -> SecretaryConfig:
    return SecretaryConfig.model_validate({"box_id": "t", "data_dir": str(tmp_path / "data"), "web": web or {}})


# --- certificates --------------------------------------------------------------


def test_the_box_makes_its_own_certificate_with_a_private_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    info = make_self_signed(cert, key, ["secretary", "secretary.local"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert info.self_signed and "secretary.local" in info.names and "127.0.0.1" in info.names
    assert read_certificate(cert) == info
    assert len(info.fingerprint.split(":")) == 32
    openssl = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
                             capture_output=True, text=True, check=True)
    assert openssl.stdout.strip().endswith("=" + info.fingerprint)  # the same fingerprint openssl shows
    assert 800 < info.days_left() < 826


def test_ensure_certificate_makes_one_keeps_it_and_renews_only_its_own(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    cert, key = settings.web.tls_files(settings.data_dir)
    first = ensure_certificate(settings)
    assert cert.exists() and key.exists()
    assert ensure_certificate(settings) == first  # kept
    # An uploaded certificate is the owner's: kept even when it nears its end (doctor warns instead).
    install_pair(cert, key, *issued_pair(days=10))
    uploaded = ensure_certificate(settings)
    assert not uploaded.self_signed and uploaded.fingerprint != first.fingerprint
    # Without its key the pair is useless: the box makes its own again.
    key.unlink()
    assert ensure_certificate(settings).self_signed


def test_configured_files_are_never_made_up(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"tls": {"cert_file": str(tmp_path / "mine.pem"), "key_file": str(tmp_path / "mine.key")}})
    with pytest.raises(CertificateError, match="mine.pem does not exist"):
        ensure_certificate(settings)
    assert not (tmp_path / "mine.pem").exists()


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_a_good_pair_passes(key_type: str) -> None:
    info = check_pair(*issued_pair(key_type=key_type))
    assert info.subject == "CN=secretary.example.org" and not info.self_signed


def test_a_bad_pair_says_what_is_wrong(tmp_path: Path) -> None:
    cert, key = issued_pair()
    other_cert, other_key = issued_pair()
    with pytest.raises(CertificateError, match="does not belong to the certificate"):
        check_pair(cert, other_key)
    with pytest.raises(CertificateError, match="expired on"):
        check_pair(*issued_pair(days=-1, start_days=-30))
    with pytest.raises(CertificateError, match="valid only from"):
        check_pair(*issued_pair(start_days=2))
    with pytest.raises(CertificateError, match="no PEM certificate"):
        check_pair(b"hello", key)
    with pytest.raises(CertificateError, match="no PEM private key"):
        check_pair(cert, b"")
    secret = serialization.load_pem_private_key(key, None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(CertificateError, match="passphrase"):
        check_pair(cert, secret)
    with pytest.raises(CertificateError, match="not a readable PEM certificate"):
        check_pair(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key)
    # Nothing is replaced by a refused pair.
    served_cert, served_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(served_cert, served_key, ["box"])
    before = served_cert.read_bytes(), served_key.read_bytes()
    with pytest.raises(CertificateError):
        install_pair(served_cert, served_key, cert, other_key)
    assert (served_cert.read_bytes(), served_key.read_bytes()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch left behind


# --- who a client is -------------------------------------------------------------


def test_buckets_are_ipv4_addresses_and_ipv6_64s() -> None:
    assert bucket("192.0.2.7") == "192.0.2.7"
    assert bucket("2001:db8:1:2::a") == bucket("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert bucket("2001:db8:1:3::a") != bucket("2001:db8:1:2::a")
    assert bucket("::ffff:192.0.2.7") == "192.0.2.7"  # an IPv4 client on a dual-stack socket
    assert bucket("[2001:db8::1]:443") == "2001:db8::/64"


def test_the_overall_cap_stops_a_guesser_spread_over_many_addresses() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(per_client=LoginLimiter(clock=clock),
                             overall=LoginLimiter(free_attempts=OVERALL_FREE_ATTEMPTS, base_delay_s=1.0,
                                                  max_delay_s=30.0, clock=clock))
    for n in range(OVERALL_FREE_ATTEMPTS):
        key = f"198.51.100.{n % 250}" if n < 250 else f"x{n}"
        assert throttle.retry_after(key) is None
        throttle.failed(key)
    assert throttle.retry_after("203.0.113.1") == pytest.approx(1.0)  # a fresh address still waits
    clock.now += 1.0
    assert throttle.retry_after("203.0.113.1") is None
    for _ in range(10):
        throttle.failed("203.0.113.1")
        clock.now += 0.1
    assert throttle.retry_after("203.0.113.2") == pytest.approx(30.0 - 0.1)  # doubling up to the cap


def test_a_successful_login_does_not_use_up_the_overall_allowance() -> None:
    throttle = LoginThrottle()
    for _ in range(OVERALL_FREE_ATTEMPTS * 2):
        throttle.failed("192.0.2.1")  # counted before the check...
        throttle.succeeded("192.0.2.1")  # ...which passed
    assert throttle.retry_after("192.0.2.9") is None


# --- names --------------------------------------------------------------------------


async def test_host_guard_knows_the_box_and_nothing_else() -> None:
    reads = []

    def addresses() -> frozenset[str]:
        reads.append(1)
        return frozenset({"192.0.2.10", "2001:db8::10"})

    clock = FakeClock()
    guard = HostGuard(WebConfig(listen="0.0.0.0:8443", allowed_hosts=["Secretary.Example.org", "[2001:db8::99]"]),
                      addresses=addresses, clock=clock)
    import socket
    short = socket.gethostname().split(".")[0]
    for ok in ["localhost:8443", "127.0.0.1", "[::1]:8443", f"{short}.local:8443", short.upper(), "app.localhost",
               "secretary.example.org", "SECRETARY.EXAMPLE.ORG.:8443", "[2001:db8::99]", "192.0.2.10:8443",
               "[2001:db8:0::10]:8443", "127.0.0.2"]:
        assert await guard.allows(ok), ok
    for bad in ["evil.example", "evil.example:8443", "192.0.2.11", "0.0.0.0:8443", "localhost.evil.example",
                f"{short}.evil.example", "[::]:8443"]:
        assert not await guard.allows(bad), bad
    assert len(reads) == 1  # unknown addresses read the interfaces again at most every few seconds
    clock.now += 10
    assert not await guard.allows("192.0.2.12")
    assert len(reads) == 2
    assert not await guard.allows("evil.example")  # a name never triggers a read
    assert len(reads) == 2
    assert normalize_host("[FE80::1%25eth0]:80") == "fe80::1"


# --- the config --------------------------------------------------------------------


def test_plain_http_on_the_lan_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="reachable from the network"):
        WebConfig(listen="0.0.0.0:8080", tls={"mode": "off"})
    assert WebConfig(listen="127.0.0.1:8080", tls={"mode": "off"}).tls_enabled is False
    assert WebConfig(listen="[::1]:8080").tls_enabled is False  # auto: loopback stays plain
    assert WebConfig(listen="0.0.0.0:8080").tls_enabled is True  # auto: the LAN gets HTTPS
    assert WebConfig(listen="127.0.0.1:8080", tls={"mode": "on"}).tls_enabled is True
    config = tmp_path / "c.yaml"
    config.write_text("box_id: t\nweb:\n  listen: 0.0.0.0:8080\n  tls:\n    mode: off\n")  # YAML's off is false
    from config.errors import ConfigError
    with pytest.raises(ConfigError) as caught:
        load_config(config, {})
    assert "would cross it in clear" in caught.value.render()
    config.write_text("box_id: t\nweb:\n  listen: 127.0.0.1:8080\n  tls:\n    mode: on\n")
    assert load_config(config, {}).settings.web.tls.mode == "on"


def test_example_and_default_configs_serve_https_on_the_lan() -> None:
    repo = Path(__file__).resolve().parents[3]
    for name in ("example.yaml", "default.yaml"):
        web = load_config(repo / "config" / name, {}).settings.web
        assert web.tls.mode == "auto" and web.allowed_hosts == [] and web.trusted_proxies == []


# --- the password's origin -----------------------------------------------------------


def test_the_generated_flag_is_set_at_first_boot_and_cleared_by_the_owner(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path / "web" / "password.json")
    assert store.generated is None
    assert store.ensure_initial() is not None
    assert store.generated is True
    store.set_password("the owner's own one")
    assert store.generated is False
    record = json.loads((tmp_path / "web" / "password.json").read_text())
    assert record["generated"] is False
    del record["generated"]  # a file from before the flag existed: the owner's
    (tmp_path / "web" / "password.json").write_text(json.dumps(record))
    assert store.generated is False and store.verify("the owner's own one")


def test_cli_marks_a_password_generated(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"box_id: t\ndata_dir: {tmp_path / 'data'}\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    command = [sys.executable, "-m", "daemon.cli", "web", "password", "--config", str(config)]
    done = subprocess.run([*command, "--generated"], input="a generated one 123\n", capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    store = PasswordStore(tmp_path / "data" / "web" / "password.json")
    assert store.generated is True
    subprocess.run(command, input="the owner's choice\n", capture_output=True, text=True, env=env, timeout=60,
                   check=True)
    assert store.generated is False
