"""Run one channel as its own process (``python -m channels.<name> --config PATH``), talking to the box over the bus.

Like ``secretaryd``, a channel started by hand (not by systemd, whose units
say ``UMask=0027``) first tightens the process umask (``private_umask``): what
it writes (an outbox, spooled voice notes, secrets) is never world-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from config.errors import ConfigError
from config.loader import LoadedConfig, load_config

PRIVATE_UMASK = 0o027  # no write for the group, nothing for others: systemd's UMask=0027 for hand-started processes


def private_umask() -> int:
    """Add ``PRIVATE_UMASK`` to the process umask (a stricter one stays); returns the umask now in force."""
    tightened = os.umask(0o777) | PRIVATE_UMASK  # os.umask only reads by writing
    os.umask(tightened)
    return tightened


class _LoggedStatus:
    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"secretary.channels.{name}")
        self._name = name

    def ready(self, detail: str = "") -> None:
        self._log.info("%s channel ready: %s", self._name, detail)

    def degraded(self, detail: str) -> None:
        self._log.warning("%s channel degraded: %s", self._name, detail)


class StandaloneChannel(Protocol):
    def run(self, status: Any) -> Coroutine[Any, Any, None]: ...


def run_standalone(
    name: str, description: str, argv: list[str] | None,
    build: Callable[[LoadedConfig], StandaloneChannel | str],
) -> int:
    """Load the config, ``build`` the channel (or get the reason there is nothing to run), run it until Ctrl-C."""
    parser = argparse.ArgumentParser(prog=f"python -m channels.{name}", description=description)
    parser.add_argument("--config", type=Path, required=True, help="the box's config file")
    args = parser.parse_args(argv)
    private_umask()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue)
        return 2
    channel = build(loaded)
    if isinstance(channel, str):
        print(f"{args.config}: {channel}")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(channel.run(_LoggedStatus(name)))
    return 0
