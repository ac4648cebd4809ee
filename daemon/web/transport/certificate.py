"""The web page's TLS certificate: the box's own self-signed one, an uploaded one checked, the server's context.

The box makes an ECDSA P-256 key and a self-signed certificate for its names
when none is there (the daemon at start, ``secretary-firstboot`` on the first
boot); the owner can replace it with a cert+key PEM pair from the settings,
which is checked first (both parse, the key is the certificate's, the dates
hold, OpenSSL loads them). The key file is 0600. Everything here blocks on
files and crypto: call it from a thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from config.schema import SecretaryConfig
from daemon.web.auth import write_private

log = logging.getLogger("secretary.web")

SELF_SIGNED_ORG = "AI Secretary box (self-signed)"
SELF_SIGNED_DAYS = 825  # the longest validity Apple platforms accept for a certificate an owner trusts by hand
RENEW_BEFORE_DAYS = 30  # the box's own certificate is made anew when it has less left than this
MAX_PEM_BYTES = 32 * 1024  # a certificate chain and its key; anything larger is not a PEM pair


class CertificateError(ValueError):
    """A certificate or key that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class CertificateInfo:
    fingerprint: str  # SHA-256 of the leaf certificate's DER, as AB:CD:...
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool  # made by this box (not an uploaded one)
    names: tuple[str, ...]

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _info(cert: x509.Certificate) -> CertificateInfo:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n.value) for n in sans)
    except x509.ExtensionNotFound:
        names = ()
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return CertificateInfo(
        fingerprint=fingerprint(cert),
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=bool(orgs) and orgs[0].value == SELF_SIGNED_ORG and cert.issuer == cert.subject,
        names=names,
    )


def _load_chain(pem: bytes, source: str) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CertificateError(f"{source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertificateError(f"{source} is not a readable PEM certificate: {exc}") from None


def read_certificate(cert_path: Path) -> CertificateInfo:
    """The leaf certificate of a PEM file; CertificateError when it is missing or unreadable."""
    try:
        pem = cert_path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{cert_path} does not exist") from None
    except OSError as exc:
        raise CertificateError(f"cannot read {cert_path}: {exc.strerror}") from None
    return _info(_load_chain(pem, str(cert_path))[0])


def box_names(settings: SecretaryConfig) -> list[str]:
    """The DNS names of the box: its hostname, hostname.local, localhost and web.allowed_hosts' names."""
    host = socket.gethostname().split(".")[0].lower()
    names = [host, f"{host}.local", "localhost", *(h.lower().strip("[]") for h in settings.web.allowed_hosts)]
    return list(dict.fromkeys(n for n in names if n))


def make_self_signed(cert_path: Path, key_path: Path, names: list[str]) -> CertificateInfo:
    """A new P-256 key (0600) and a self-signed certificate for ``names`` (DNS names or IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    sans: list[x509.GeneralName] = []
    for name in [*names, "127.0.0.1", "::1"]:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "secretary"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORG),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(sans))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_private(key_path, key_pem)
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    info = _info(cert)
    log.info("made a self-signed TLS certificate for the web page",
             extra={"fingerprint": info.fingerprint, "not_after": info.not_after.isoformat(), "file": str(cert_path)})
    return info


def ensure_certificate(settings: SecretaryConfig) -> CertificateInfo:
    """The certificate the page serves: the configured files as they are, or the box's own, made when missing.

    With the default paths (inside data_dir) a missing or unreadable pair, or
    the box's own certificate near its end, is made anew. Files the owner
    configured are never touched: a missing one is a CertificateError.
    """
    cert_path, key_path = settings.web.tls_files(settings.data_dir)
    if settings.web.tls.cert_file is not None:
        info = read_certificate(cert_path)
        if not key_path.exists():
            raise CertificateError(f"web.tls.key_file {key_path} does not exist")
        return info
    try:
        info = read_certificate(cert_path)
    except CertificateError as exc:
        if cert_path.exists():
            log.warning("the web page's certificate is unreadable; making a new one", extra={"reason": str(exc)})
        return make_self_signed(cert_path, key_path, box_names(settings))
    if not key_path.exists() or (info.self_signed and info.days_left() < RENEW_BEFORE_DAYS):
        return make_self_signed(cert_path, key_path, box_names(settings))
    return info


def check_pair(cert_pem: bytes, key_pem: bytes, now: dt.datetime | None = None) -> CertificateInfo:
    """Check an uploaded PEM pair: both parse, the key is the certificate's, its dates hold; CertificateError if not."""
    if len(cert_pem) > MAX_PEM_BYTES or len(key_pem) > MAX_PEM_BYTES:
        raise CertificateError(f"a certificate or key file is over {MAX_PEM_BYTES // 1024} KB: upload PEM text only")
    chain = _load_chain(cert_pem, "the certificate")
    if b"PRIVATE KEY-----" not in key_pem:
        raise CertificateError("the key holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
    if b"ENCRYPTED" in key_pem:
        raise CertificateError("the key is protected by a passphrase: upload it without one "
                               "(openssl pkey -in key.pem -out plain.pem)")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"the key is not a readable PEM private key: {exc}") from None
    leaf = chain[0]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise CertificateError("the key does not belong to the certificate (their public keys differ); "
                               "upload the key the certificate was issued for")
    now = now or dt.datetime.now(dt.timezone.utc)
    if leaf.not_valid_after_utc <= now:
        raise CertificateError(f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}: renew it first")
    if leaf.not_valid_before_utc > now:
        raise CertificateError(f"the certificate is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                               "(or the box's clock is wrong)")
    return _info(leaf)


def install_pair(cert_path: Path, key_path: Path, cert_pem: bytes, key_pem: bytes) -> CertificateInfo:
    """Check the pair, prove OpenSSL loads it, then put it in place of the served one (key 0600)."""
    info = check_pair(cert_pem, key_pem)
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=key_path.parent, prefix=".upload-") as scratch:
        trial_cert, trial_key = Path(scratch) / "cert.pem", Path(scratch) / "key.pem"
        write_private(trial_key, key_pem)
        _write_public(trial_cert, cert_pem)
        try:
            server_context(trial_cert, trial_key)
        except (ssl.SSLError, OSError) as exc:
            raise CertificateError(f"OpenSSL refuses the pair: {exc}") from None
    write_private(key_path, key_pem)
    _write_public(cert_path, cert_pem)
    log.warning("the web page's TLS certificate was replaced by an uploaded one",
                extra={"fingerprint": info.fingerprint, "subject": info.subject})
    return info


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The server side of TLS: 1.2 or newer, the pair loaded (ssl.SSLError when OpenSSL refuses it)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def _write_public(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0644 (a certificate is not a secret)."""
    write_private(path, data)
    os.chmod(path, 0o644)
