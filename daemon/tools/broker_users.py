"""The box's broker users: mosquitto's password and ACL files and the box's own credentials file, from the roles.

``write_broker_users`` (``secretary mqtt users``, first boot, the private
broker of demo and tests) gives every role of
``channels/bus_contract/clients.py`` a mosquitto user ``secretary-<role>``::

    out/passwd          mosquitto's password_file: one $7$ (PBKDF2-SHA512) hash per user   0640
    out/acl             mosquitto's acl_file: each user's exact topics on this box           0640
    credentials file    SECRETARY_MQTT_PASSWORD_<ROLE>=... for the box's own processes      0600
                        (mqtt.credentials_file; read with the secrets loader)

Passwords are random; a role that has one keeps it (and its hash) unless
``rotate``. The ACL names this box's topics (``<prefix>/<box_id>/...``): run it
again after changing ``box_id`` or ``mqtt.topic_prefix``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from channels.bus_contract.clients import ROLES, Role
from channels.bus_contract.topics import Topics
from config.secrets import read_env_file

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
HASH_ITERATIONS = 101  # mosquitto_passwd's own; the passwords are random, so the hash need not be slow
SALT_BYTES = 12
BROKER_FILE_MODE = 0o640  # root:mosquitto on the box: the broker reads them after dropping root
CREDENTIALS_MODE = 0o600


class BrokerUsersError(RuntimeError):
    """The files cannot be written, or an existing credentials file cannot be read."""


@dataclass(frozen=True)
class BrokerUsers:
    password_file: Path
    acl_file: Path
    credentials_file: Path
    created: tuple[str, ...]  # the roles that got a new password this time
    passwords: dict[str, str] = field(repr=False)  # role name -> password

    def password(self, role: Role) -> str:
        return self.passwords[role.name]


def password_hash(password: str, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    """mosquitto's ``$7$<iterations>$<salt>$<hash>`` (PBKDF2-SHA512, base64), as ``mosquitto_passwd`` writes it."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def hash_matches(hashed: str, password: str) -> bool:
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(password_hash(password, salt, int(parts[2])), hashed)


def acl_text(topics: Topics, roles: tuple[Role, ...] = ROLES) -> str:
    """mosquitto's ACL: every role's user, with the exact topics it may read and write on this box."""
    lines = [
        "# The AI Secretary box's MQTT users and their rights, written by `secretary mqtt users`",
        f"# from channels/bus_contract/clients.py for {topics.base}/. Anything not listed is refused.",
    ]
    for role in roles:
        lines += ["", f"user {role.username}"]
        lines += [f"topic read {topics(suffix)}" for suffix in role.may_read()]
        if not role.serves_commands:
            lines.append(f"topic read {role.reply_topic(topics)}")
        lines += [f"topic write {topics(suffix)}" for suffix in role.may_write()]
    return "\n".join(lines) + "\n"


def write_broker_users(
    out_dir: Path, topics: Topics, credentials_file: Path, *, rotate: bool = False, roles: tuple[Role, ...] = ROLES,
) -> BrokerUsers:
    """Write (or bring up to date) the password, ACL and credentials files; see the module's docstring."""
    known = {} if rotate else _known_passwords(credentials_file, roles)
    passwords = {role.name: known.get(role.name) or secrets.token_urlsafe(24) for role in roles}
    created = tuple(role.name for role in roles if role.name not in known)
    hashes = _known_hashes(out_dir / PASSWORD_FILE)
    entries = []
    for role in roles:
        kept = hashes.get(role.username)
        entries.append(f"{role.username}:{kept if kept and hash_matches(kept, passwords[role.name]) else password_hash(passwords[role.name])}")
    credentials = ["# The box's own MQTT passwords, one per client role: written by `secretary mqtt users`.",
                   "# Keep private (0600, the daemon's user); mqtt.credentials_file names this file."]
    credentials += [f"{role.password_env}={passwords[role.name]}" for role in roles]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write(out_dir / PASSWORD_FILE, "\n".join(entries) + "\n", BROKER_FILE_MODE)
        _write(out_dir / ACL_FILE, acl_text(topics, roles), BROKER_FILE_MODE)
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        _write(credentials_file, "\n".join(credentials) + "\n", CREDENTIALS_MODE)
    except OSError as exc:
        raise BrokerUsersError(f"cannot write the broker users: {exc}") from None
    return BrokerUsers(out_dir / PASSWORD_FILE, out_dir / ACL_FILE, credentials_file, created, passwords)


def _known_passwords(credentials_file: Path, roles: tuple[Role, ...]) -> dict[str, str]:
    if not credentials_file.exists():
        return {}
    values, issues = read_env_file(credentials_file)
    if issues:
        raise BrokerUsersError("; ".join(issue.message for issue in issues))
    return {role.name: values[role.password_env] for role in roles if values.get(role.password_env)}


def _known_hashes(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    except OSError as exc:
        raise BrokerUsersError(f"cannot read {path}: {exc}") from None
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _write(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` atomically; the new file has ``mode`` from its first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)  # whatever the umask took away
        with contextlib.suppress(FileNotFoundError, PermissionError):  # keep root:mosquitto, secretary:secretary
            old = path.stat()
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
